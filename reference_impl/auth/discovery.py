"""Discovery: the SMART configuration, the OpenID Provider metadata and the JWKS.

Every URL is built from the origin the client called, like the issuer and the audience of the
tokens (``service.issuer_for``), so what a client discovers is what it will be checked against.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import JSONResponse

from reference_impl.auth.service import issuer_for
from reference_impl.auth.web import CORS, auth_service, origin, platform

GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "none"]
ASSERTION_ALGORITHMS = ["ES384", "RS384"]
SCOPES = [
    "openid",
    "fhirUser",
    "profile",
    "offline_access",
    "launch/patient",
    "patient/*.cruds",
    "patient/*.rs",
    "user/*.cruds",
    "user/*.rs",
    "system/*.cruds",
    "system/*.rs",
    "patient/*.read",
    "patient/*.write",
    "user/*.read",
    "user/*.write",
    "system/*.read",
    "system/*.write",
]
CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "permission-v1",
    "permission-v2",
    "permission-patient",
    "permission-user",
    "permission-offline",
    "context-standalone-patient",
    "sso-openid-connect",
]
CLAIMS = ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser", "name", "subject_role", "person_id", "patient"]
# Discovery rarely changes, but the JWKS does at rotation: verifiers must not keep it for long.
DISCOVERY_CACHE = "public, max-age=300"
JWKS_CACHE = "public, max-age=60"


def endpoints(base: str) -> dict[str, str]:
    issuer = issuer_for(base)
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint": f"{issuer}/revoke",
        "userinfo_endpoint": f"{issuer}/userinfo",
    }


def smart_configuration(base: str) -> dict[str, Any]:
    return {
        **endpoints(base),
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "scopes_supported": SCOPES,
        "capabilities": CAPABILITIES,
    }


def openid_configuration(base: str) -> dict[str, Any]:
    return {
        **smart_configuration(base),
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": CLAIMS,
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        # RFC 9207: the redirect carries iss, so a client can tell which server answered (mix-up attacks).
        "authorization_response_iss_parameter_supported": True,
    }


async def smart_configuration_endpoint(request: Request) -> JSONResponse:
    return JSONResponse(smart_configuration(origin(request)), headers={**CORS, "Cache-Control": DISCOVERY_CACHE})


async def openid_configuration_endpoint(request: Request) -> JSONResponse:
    return JSONResponse(openid_configuration(origin(request)), headers={**CORS, "Cache-Control": DISCOVERY_CACHE})


async def jwks_endpoint(request: Request) -> JSONResponse:
    service = auth_service(request)
    db = platform(request).db
    # The JWKS must already hold the key that will sign the next token; make it only when due, so
    # that a JWKS read is a read-only unit of work otherwise.
    if await db.run_async(service.keys.needs_rotation, write=False):

        def make_key(conn: Connection) -> None:
            service.keys.active(conn)

        await db.run_async(make_key, write=True)
    jwks = await db.run_async(service.keys.jwks, write=False)
    return JSONResponse(jwks, headers={**CORS, "Cache-Control": JWKS_CACHE})
