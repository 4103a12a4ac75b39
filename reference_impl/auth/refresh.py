"""Refresh tokens: opaque, stored hashed, rotated at every use, revoked by family on reuse.

All refresh tokens descending from one authorization code form a family (named by the code's
hash, like the access tokens issued from it). Each use marks the token used and issues its
successor; a used token presented again means two parties hold it (OAuth 2.1 §4.3.1,
RFC 9700 §4.14.2), so the whole family and its access tokens are revoked.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from reference_impl.auth.codes import digest
from reference_impl.auth.schema import refresh_tokens
from reference_impl.auth.scopes import Scopes, within
from reference_impl.auth.service import AuthService
from reference_impl.auth.web import Refused
from reference_impl.faults import declare

REFRESH_NOT_ROTATED = declare(
    "refresh-not-rotated",
    "a used refresh token stays valid: each refresh issues a new one but never burns the old",
    ("auth@12", "auth@13"),
)
REFRESH_SCOPE_ESCALATION = declare(
    "refresh-scope-escalation", "a refresh may ask for more scope than the original grant", ("auth@14",)
)

PREFIX = "rt."  # tells a refresh token from a JWT access token at a glance (introspection, revocation)


@dataclass(frozen=True)
class RefreshGrant:
    family: str
    client_id: str
    username: str
    scope: str  # of the access token to issue now (narrowed, perhaps)
    refresh_scope: str  # of the successor refresh token: always the grant's own (RFC 6749 §6)
    purpose_of_use: str | None


def issue(
    conn: Connection,
    *,
    family: str,
    client_id: str,
    username: str,
    scope: str,
    purpose_of_use: str | None,
    lifetime_s: int,
    now: int | None = None,
) -> str:
    now = now or int(time.time())
    # Expired tokens of finished families are of no further use; a family's live rows stay.
    conn.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_at < now - lifetime_s))
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(refresh_tokens).values(
            token_hash=digest(token),
            family=family,
            client_id=client_id,
            username=username,
            scope=scope,
            purpose_of_use=purpose_of_use,
            expires_at=now + lifetime_s,
            used_at=None,
            revoked_at=None,
        )
    )
    return token


def find(conn: Connection, token: str) -> Any:
    return conn.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == digest(token))).first()


def is_active(row: Any, now: int | None = None) -> bool:
    now = now or int(time.time())
    return row.used_at is None and row.revoked_at is None and row.expires_at > now


def revoke_family(conn: Connection, service: AuthService, family: str, now: int | None = None) -> None:
    """Revoke every refresh token of ``family`` and every access token issued from it."""
    now = now or int(time.time())
    conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family == family, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    service.revoke(conn, family=family)


class RefreshReplayed(Refused):
    """A used refresh token came back: the caller's transaction must commit the family's revocation."""


def use(
    conn: Connection,
    service: AuthService,
    token: str,
    client_id: str,
    requested_scope: str | None = None,
    now: int | None = None,
) -> RefreshGrant:
    """Mark ``token`` used and return its grant (its scope narrowed to ``requested_scope``), or refuse.

    A reused token revokes its family (``RefreshReplayed``); a scope wider than the grant's is
    refused before the token is burnt, so the attempt costs the legitimate holder nothing.
    """
    now = now or int(time.time())

    def refuse(why: str, error: str = "invalid_grant") -> Refused:
        return Refused(error, why, client_id=client_id, username=row.username if row is not None else None)

    row = find(conn, token) if token.startswith(PREFIX) else None
    if row is None:
        raise refuse("unknown refresh token")
    if row.client_id != client_id:
        raise refuse("the refresh token was issued to another client")
    if row.revoked_at is not None:
        raise refuse("the refresh token was revoked")
    if row.used_at is None and row.expires_at <= now:
        raise refuse("the refresh token has expired")
    escalating_allowed = service.faults.on(REFRESH_SCOPE_ESCALATION)
    narrowing = requested_scope is not None and row.used_at is None and not escalating_allowed
    if narrowing and not within(Scopes.parse(requested_scope or ""), Scopes.parse(row.scope)):
        raise refuse(f"the requested scope exceeds the grant ({row.scope})", "invalid_scope")
    # The update decides between two concurrent uses: only one finds used_at empty.
    burnt = conn.execute(
        update(refresh_tokens)
        .where(
            refresh_tokens.c.token_hash == row.token_hash,
            refresh_tokens.c.used_at.is_(None),
            refresh_tokens.c.revoked_at.is_(None),
        )
        .values(used_at=None if service.faults.on(REFRESH_NOT_ROTATED) else now)
    ).rowcount
    if not burnt:
        revoke_family(conn, service, row.family, now)
        raise RefreshReplayed(
            "invalid_grant",
            "the refresh token was already used: every token of its grant is now revoked",
            client_id=client_id,
            username=row.username,
        )
    scope = requested_scope if requested_scope is not None else row.scope
    return RefreshGrant(row.family, row.client_id, row.username, scope, row.scope, row.purpose_of_use)
