"""Access tokens for tests of the FHIR layer, minted with the server's own signing key.

``mint`` goes through AuthService.issue_access_token (the jti is recorded, as for a token from the
token endpoint). ``forge`` signs arbitrary claims and headers with the server's key and records
the jti too, so an attack token fails only for the reason under test (expiry, audience...).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from joserfc import jwt
from sqlalchemy import Connection, insert

from reference_impl.auth.schema import issued_tokens

SYSTEM = {"sub": "eqlab-tests", "client_id": "eqlab-tests", "scope": "system/*.cruds", "subject_role": "system"}


def mint(app: FastAPI, origin: str, **claims: Any) -> str:
    server = app.state.fhir

    def work(conn: Connection) -> str:
        token, _ = server.auth.issue_access_token(conn, origin, {**SYSTEM, **claims}, family=None)
        return str(token)

    return str(server.db.run(work, write=True))


def forge(
    app: FastAPI,
    origin: str,
    lifetime: int = 300,
    now: int | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    server = app.state.fhir
    now = now or int(time.time())

    def work(conn: Connection) -> str:
        key = server.auth.keys.active(conn)
        body = {
            "iss": f"{origin}/auth",
            "aud": f"{origin}/fhir",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": f"forged-{time.monotonic_ns()}",
            **SYSTEM,
            **claims,
        }
        conn.execute(
            insert(issued_tokens).values(
                jti=body["jti"], family=None, client_id=body["client_id"], expires_at=body["exp"], revoked_at=None
            )
        )
        return jwt.encode({"alg": "ES256", "kid": key.kid, **(header or {})}, body, key, algorithms=["ES256"])

    return str(server.db.run(work, write=True))


def mint_for_store(db_url: str, origin: str, **claims: Any) -> str:
    """A system token for a server running elsewhere (another process) on the store at ``db_url``."""
    from reference_impl.auth.service import AuthService
    from reference_impl.platform import migrate_platform
    from reference_impl.settings import Settings
    from reference_impl.store.database import Database

    settings = Settings(db_url=db_url)
    db = Database(db_url)
    try:
        migrate_platform(db)
        auth = AuthService.from_settings(settings)
        return str(
            db.run(lambda conn: auth.issue_access_token(conn, origin, {**SYSTEM, **claims}, family=None)[0], write=True)
        )
    finally:
        db.dispose()
