"""What a successful token request returns: the access token's claims, the ID token, the JSON answer.

Access tokens carry the SPEC section 2 claims (IUA: ``subject_role``, ``person_id``,
``purpose_of_use``) and SMART's ``patient`` and ``fhirUser``. A refresh token comes with a grant
that includes ``offline_access``: the scope a client may be given is set at its registration,
so "refresh-capable" is simply "allowed offline_access" (the demo portal and web app are).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from sqlalchemy import Connection

from reference_impl.auth import refresh
from reference_impl.auth.keys import ALGORITHM
from reference_impl.auth.registry import User
from reference_impl.auth.service import AuthService, issuer_for
from reference_impl.faults import declare

IUA_CLAIMS_MISSING = declare(
    "iua-claims-missing", "access tokens of users carry neither person_id nor purpose_of_use", ("auth@21",)
)

SYSTEM_ROLE = "system"


@dataclass(frozen=True)
class Grant:
    """What tokens are issued for: a user (code and refresh grants) or the client itself."""

    client_id: str
    scope: str
    family: str | None
    user: User | None = None
    purpose_of_use: str | None = None
    nonce: str | None = None


def access_claims(grant: Grant) -> dict[str, Any]:
    claims: dict[str, Any] = {"client_id": grant.client_id, "scope": grant.scope}
    user = grant.user
    if user is None:
        return {**claims, "sub": grant.client_id, "subject_role": SYSTEM_ROLE}
    claims |= {"sub": user.username, "subject_role": user.role}
    optional = {
        "person_id": user.person_id,
        "purpose_of_use": grant.purpose_of_use,
        "fhirUser": user.fhir_user,
        "patient": user.patient_id,
    }
    return claims | {name: value for name, value in optional.items() if value}


def id_token(conn: Connection, service: AuthService, origin: str, grant: Grant, now: int) -> str:
    """OpenID Connect ID token: ES256 like the access tokens, for the client (``aud``), with its nonce."""
    user = grant.user
    assert user is not None
    scopes = grant.scope.split()
    claims: dict[str, Any] = {
        "iss": issuer_for(origin),
        "sub": user.username,
        "aud": grant.client_id,
        "iat": now,
        "exp": now + service.settings.access_token_seconds,
    }
    if grant.nonce:
        claims["nonce"] = grant.nonce
    if "fhirUser" in scopes and user.fhir_user:
        claims["fhirUser"] = user.fhir_user
    if "profile" in scopes:
        claims["name"] = user.display_name
    key = service.keys.active(conn, now)
    return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[ALGORITHM])


def token_answer(
    conn: Connection,
    service: AuthService,
    origin: str,
    grant: Grant,
    *,
    with_id_token: bool,
    refresh_scope: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Issue the tokens of ``grant`` and the JSON body of the token response (RFC 6749 §5.1).

    ``refresh_scope``: the scope of the refresh token to issue (a rotated one keeps the scope of
    its predecessor even when this access token's scope was narrowed, RFC 6749 §6), or None.
    """
    now = now or int(time.time())
    wanted = access_claims(grant)
    if service.faults.on(IUA_CLAIMS_MISSING):
        wanted = {k: v for k, v in wanted.items() if k not in ("person_id", "purpose_of_use")}
    token, claims = service.issue_access_token(conn, origin, wanted, grant.family)
    answer: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": int(claims["exp"]) - int(claims["iat"]),
        "scope": grant.scope,
    }
    user = grant.user
    if refresh_scope is not None and user is not None and grant.family is not None:
        answer["refresh_token"] = refresh.issue(
            conn,
            family=grant.family,
            client_id=grant.client_id,
            username=user.username,
            scope=refresh_scope,
            purpose_of_use=grant.purpose_of_use,
            lifetime_s=service.settings.refresh_token_seconds,
            now=now,
        )
    if with_id_token and user is not None and "openid" in grant.scope.split():
        answer["id_token"] = id_token(conn, service, origin, grant, now)
    if user is not None and user.patient_id:
        answer["patient"] = user.patient_id  # SMART launch context (the ID token carries fhirUser)
    return answer
