"""The authorization service as the FHIR layer and the endpoints see it: issue, validate, revoke.

The issuer is ``<origin>/auth`` and an access token's audience is the FHIR base ``<origin>/fhir``,
both for the origin the client called (so one server answers on any loopback address or behind a
proxy that keeps the Host header).

Who may act is not the authorization server's knowledge alone: a national service adds login rules
(``Service.login_rules``, e.g. the directory's "only active practitioners"), each answering why a user
may not act; the login page, the code exchange and the refresh ask them all (``refusal``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from reference_impl.auth import tokens
from reference_impl.auth.keys import SigningKeys
from reference_impl.auth.principal import Principal
from reference_impl.auth.registry import User
from reference_impl.auth.revocations import RevocationWatch, channel_for, notify_payloads
from reference_impl.auth.schema import issued_tokens
from reference_impl.faults import FaultSwitches, declare
from reference_impl.settings import Settings
from reference_impl.store.database import Database
from reference_impl.store.driver import DriverStatement

ALG_NONE_ACCEPTED = declare(
    "alg-none-accepted",
    "access tokens with alg none are accepted without a signature (the JWT library's classic misuse)",
    ("auth@26", "auth@33", "auth@35"),
)
REVOCATION_IGNORED = declare(
    "revocation-ignored",
    "revoked access tokens are still accepted: validation checks only that the server issued the jti",
    ("auth@29", "auth@34", "auth@13", "auth@33"),
)

# Why ``user`` may not sign in or be issued tokens, in words the user is shown; None: no objection.
LoginRule = Callable[[Connection, User, FaultSwitches], str | None]

AUTH_PREFIX = "/auth"
# Asked on every authenticated request.
_REVOCATION_OF = DriverStatement(f"SELECT revoked_at, expires_at FROM {issued_tokens.name} WHERE jti = ?")
FHIR_PREFIX = "/fhir"


def issuer_for(origin: str) -> str:
    return origin.rstrip("/") + AUTH_PREFIX


def audience_for(origin: str) -> str:
    return origin.rstrip("/") + FHIR_PREFIX


def origin_of(fhir_base: str) -> str:
    return fhir_base.rstrip("/").removesuffix(FHIR_PREFIX)


@dataclass
class AuthService:
    settings: Settings
    keys: SigningKeys
    login_rules: list[LoginRule] = field(default_factory=list)  # the services' (Service.install adds them)
    verified: tokens.VerifiedTokens = field(default_factory=tokens.VerifiedTokens)
    revocations: RevocationWatch | None = None  # on PostgreSQL (``watch_revocations``)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthService:
        keys = SigningKeys(settings.master(), settings.access_token_seconds, int(settings.key_rotation_hours * 3600))
        return cls(settings, keys)

    def watch_revocations(self, db: Database) -> None:
        """Answer remembered tokens' revocation from memory, told of revocations by the store (PostgreSQL)."""
        if db.dialect == "postgresql":
            self.revocations = RevocationWatch(db.dedicated_connection, channel_for(db.schema), self.verified.capacity)

    @cached_property
    def faults(self) -> FaultSwitches:
        return FaultSwitches(self.settings.faults)

    def refusal(self, conn: Connection, user: User) -> str | None:
        """Why ``user`` may not act now (the first login rule that objects), or None."""
        for rule in self.login_rules:
            why = rule(conn, user, self.faults)
            if why is not None:
                return why
        return None

    def issue_access_token(
        self, conn: Connection, origin: str, claims: dict[str, Any], family: str | None
    ) -> tuple[str, dict[str, Any]]:
        """Sign an access token for ``origin`` and record its ``jti`` (for revocation)."""
        full_claims = {"iss": issuer_for(origin), "aud": audience_for(origin), **claims}
        token, issued = tokens.issue(self.keys.active(conn), full_claims, self.settings.access_token_seconds)
        conn.execute(
            insert(issued_tokens).values(
                jti=issued["jti"],
                family=family,
                client_id=claims["client_id"],
                expires_at=issued["exp"],
                revoked_at=None,
            )
        )
        return token, issued

    def authenticate(self, conn: Connection, token: str, fhir_base: str) -> Principal:
        """The principal of a valid bearer token for this FHIR base, else ``TokenInvalid``."""
        origin = origin_of(fhir_base)
        return tokens.validate(
            token,
            lambda kid: self.keys.find(conn, kid),
            issuer_for(origin),
            audience_for(origin),
            lambda jti: self.is_revoked(conn, jti),
            accept_unsigned=self.faults.on(ALG_NONE_ACCEPTED),
            verified=self.verified,
        )

    def is_revoked(self, conn: Connection, jti: str) -> bool:
        watch = self.revocations
        if watch is not None and watch.knows_unrevoked(jti):
            return False
        generation = watch.generation if watch is not None else 0
        row = _REVOCATION_OF.first(conn, (jti,))
        if self.faults.on(REVOCATION_IGNORED):
            return row is None
        if row is None or row[0] is not None:  # unknown to this server: not one it issued
            return True
        if watch is not None:
            watch.remember_unrevoked(jti, int(row[1]), generation)
        return False

    def revoke(self, conn: Connection, jti: str | None = None, family: str | None = None) -> int:
        """Revoke one access token, or every one issued from a grant (``family``), and tell every
        server process on the store (on PostgreSQL, when the transaction commits)."""
        condition = issued_tokens.c.jti == jti if jti else issued_tokens.c.family == family
        revoked = (
            conn.execute(
                update(issued_tokens)
                .where(condition, issued_tokens.c.revoked_at.is_(None))
                .values(revoked_at=int(time.time()))
                .returning(issued_tokens.c.jti)
            )
            .scalars()
            .all()
        )
        if self.revocations is not None:
            self.revocations.revoked(revoked)
        if revoked and conn.dialect.name == "postgresql":  # whether this process watches or not (a command)
            channel = channel_for(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
            for payload in notify_payloads(revoked):
                conn.execute(select(func.pg_notify(channel, payload)))
        return len(revoked)
