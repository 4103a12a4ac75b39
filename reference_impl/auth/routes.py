"""The authorization server's routes, mounted by ``create_app``.

``/fhir/.well-known/smart-configuration`` must be answered here: ``create_app`` sends every other
path under ``/fhir`` to the FHIR endpoint. The OpenID metadata is served both at the root (where
clients of this platform look) and under the issuer path, where OpenID Connect Discovery §4 puts it
for an issuer with a path (``<origin>/auth``).
"""

from __future__ import annotations

from starlette.routing import Route

from reference_impl.auth import authorize, discovery, endpoints, token_endpoint


def auth_routes() -> list[Route]:
    smart = discovery.smart_configuration_endpoint
    openid = discovery.openid_configuration_endpoint
    return [
        Route("/.well-known/smart-configuration", smart, methods=["GET"]),
        Route("/fhir/.well-known/smart-configuration", smart, methods=["GET"]),
        Route("/.well-known/openid-configuration", openid, methods=["GET"]),
        Route("/auth/.well-known/openid-configuration", openid, methods=["GET"]),
        Route("/auth/jwks", discovery.jwks_endpoint, methods=["GET"]),
        Route("/auth/authorize", authorize.authorize, methods=["GET"]),
        Route("/auth/login", authorize.login, methods=["POST"]),
        Route("/auth/consent", authorize.consent, methods=["POST"]),
        Route("/auth/token", token_endpoint.token, methods=["POST", "OPTIONS"]),
        Route("/auth/introspect", endpoints.introspect, methods=["POST"]),
        Route("/auth/revoke", endpoints.revoke, methods=["POST", "OPTIONS"]),
        Route("/auth/userinfo", endpoints.userinfo, methods=["GET", "POST", "OPTIONS"]),
    ]
