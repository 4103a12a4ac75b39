"""Authorization codes: random, stored hashed, valid 60 seconds, redeemable once, bound to PKCE.

A code is burnt by its first presentation, whatever comes of it: a wrong verifier cannot be
retried with another guess. A second presentation means the code leaked (RFC 6749 §4.1.2):
every token issued from it is revoked. The code's hash names that token family.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from reference_impl.auth.schema import codes
from reference_impl.auth.web import Refused

CODE_LIFETIME_S = 60
KEEP_USED_S = 86400  # a used code is kept this long so that its replay still revokes its tokens
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}\Z")  # RFC 7636 §4.1
CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}\Z")  # base64url of a SHA-256 digest, unpadded


def digest(value: str) -> str:
    """How codes, refresh tokens and session ids are stored: a SHA-256 hex digest (they are random
    and long, so a plain hash suffices; a slow KDF is for human-chosen secrets)."""
    return hashlib.sha256(value.encode()).hexdigest()


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class RedeemedCode:
    family: str  # the tokens issued from this code
    client_id: str
    username: str
    scope: str
    purpose_of_use: str | None
    nonce: str | None


def issue(
    conn: Connection,
    *,
    client_id: str,
    username: str,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    purpose_of_use: str | None,
    nonce: str | None,
    now: int | None = None,
) -> str:
    now = now or int(time.time())
    conn.execute(delete(codes).where(codes.c.expires_at < now - KEEP_USED_S))
    code = secrets.token_urlsafe(32)
    conn.execute(
        insert(codes).values(
            code_hash=digest(code),
            client_id=client_id,
            username=username,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            purpose_of_use=purpose_of_use,
            nonce=nonce,
            expires_at=now + CODE_LIFETIME_S,
            used_at=None,
        )
    )
    return code


class CodeReplayed(Refused):
    """The code was redeemed before: the caller must revoke the family (``family``)."""

    def __init__(self, family: str, client_id: str) -> None:
        super().__init__("invalid_grant", "the authorization code was already used", client_id=client_id)
        self.family = family


def redeem(
    conn: Connection,
    code: str,
    client_id: str,
    redirect_uri: str | None,
    verifier: str | None,
    now: int | None = None,
    *,
    plain_ok: bool = False,  # the fault pkce-plain-accepted only
    reusable: bool = False,  # the fault code-reusable only
) -> RedeemedCode:
    """Burn the code and check it against the token request; ``CodeReplayed`` on a second use."""
    now = now or int(time.time())

    def refuse(why: str) -> Refused:
        return Refused("invalid_grant", why, client_id=client_id)

    family = digest(code)
    row = conn.execute(select(codes).where(codes.c.code_hash == family)).first()
    if row is None:
        raise refuse("unknown authorization code")
    if row.client_id != client_id:
        raise refuse("the authorization code was issued to another client")
    # The update is the arbiter between two concurrent redemptions: only one sees used_at empty.
    burnt = conn.execute(
        update(codes).where(codes.c.code_hash == family, codes.c.used_at.is_(None)).values(used_at=now)
    ).rowcount
    if not burnt and not reusable:
        raise CodeReplayed(family, client_id)
    if row.expires_at < now:
        raise refuse("the authorization code has expired")
    if redirect_uri != row.redirect_uri:
        raise refuse("redirect_uri differs from the one of the authorization request")
    if verifier is None:
        raise refuse("code_verifier is required (PKCE)")
    if not VERIFIER.match(verifier):
        raise refuse("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
    plain_match = plain_ok and hmac.compare_digest(verifier, row.code_challenge)
    if not hmac.compare_digest(s256(verifier), row.code_challenge) and not plain_match:
        raise refuse("code_verifier does not match the code_challenge")
    return RedeemedCode(family, row.client_id, row.username, row.scope, row.purpose_of_use, row.nonce)
