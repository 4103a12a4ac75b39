"""Bearer authentication of FHIR requests: the Authorization header -> the caller's Principal (or a 401)."""

from __future__ import annotations

from sqlalchemy import Connection

from reference_impl.auth.policy import unauthenticated
from reference_impl.auth.principal import Principal
from reference_impl.auth.service import AuthService
from reference_impl.auth.tokens import TokenInvalid
from reference_impl.faults import FaultSwitches, declare
from reference_impl.fhir.errors import FhirError, Issue

CHALLENGE_ECHOES_TOKEN = declare(
    "challenge-echoes-token",
    "the WWW-Authenticate challenge of a refused token quotes the token's alg unescaped",
    ("auth@39",),
)


def bearer_token(authorization: str | None) -> str | None:
    """The access token of an ``Authorization`` header (None: no header; 401: another scheme or none)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("the Authorization header must be 'Bearer <access token>'")
    return token.strip()


def authenticate(
    service: AuthService, faults: FaultSwitches, conn: Connection, authorization: str | None, base_url: str
) -> Principal | None:
    token = bearer_token(authorization)
    if token is None:
        return None
    try:
        return service.authenticate(conn, token, base_url)
    except TokenInvalid as exc:
        if faults.on(CHALLENGE_ECHOES_TOKEN):
            challenge = f'Bearer error="invalid_token", error_description="{exc.reason}"'
            raise FhirError(401, [Issue(exc.reason, "login")], {"WWW-Authenticate": challenge}) from None
        raise unauthenticated(exc.reason) from None
