"""Introspection (RFC 7662), revocation (RFC 7009) and the OpenID Connect userinfo endpoint."""

from __future__ import annotations

import json
from typing import Any

from joserfc import jws
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from reference_impl.auth import assertions, clientauth, refresh, trail
from reference_impl.auth.clientauth import AuthenticatedClient
from reference_impl.auth.policy import bearer_challenge
from reference_impl.auth.principal import Principal
from reference_impl.auth.registry import find_user
from reference_impl.auth.service import AuthService, audience_for, issuer_for
from reference_impl.auth.token_endpoint import assertion_audiences
from reference_impl.auth.tokens import TokenInvalid
from reference_impl.auth.web import (
    CORS,
    NO_STORE,
    Refused,
    auth_service,
    json_answer,
    oauth_error,
    origin,
    platform,
    preflight,
    read_form,
)

INACTIVE = {"active": False}
# What an introspection answer repeats from an access token (RFC 7662 §2.2 plus SMART and IUA claims).
REGISTERED_CLAIMS = ("scope", "client_id", "sub", "exp", "iat", "nbf", "iss", "aud", "jti")
INTROSPECTED = (*REGISTERED_CLAIMS, "patient", "fhirUser", "subject_role", "person_id", "purpose_of_use")


def _valid_access_token(conn: Connection, service: AuthService, base: str, token: str) -> Principal | None:
    try:
        return service.authenticate(conn, token, audience_for(base))
    except TokenInvalid:
        return None


def describe(conn: Connection, service: AuthService, base: str, token: str, caller: str) -> dict[str, Any]:
    """The introspection answer: active with its claims, or just ``{"active": false}`` (no reason: RFC 7662 §2.2)."""
    if token.startswith(refresh.PREFIX):
        row = refresh.find(conn, token)
        # A refresh token is the business of the client holding it only.
        if row is None or row.client_id != caller or not refresh.is_active(row):
            return INACTIVE
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": row.client_id,
            "sub": row.username,
            "username": row.username,
            "scope": row.scope,
            "exp": row.expires_at,
            "iss": issuer_for(base),
        }
    principal = _valid_access_token(conn, service, base, token)
    if principal is None:
        return INACTIVE
    claims = json.loads(jws.extract_compact(token.encode("ascii")).payload)
    answer = {"active": True, "token_type": "Bearer", **{k: claims[k] for k in INTROSPECTED if k in claims}}
    if not principal.is_system:
        answer["username"] = principal.subject
    return answer


async def _authenticated_call(
    request: Request, subtype: str, kinds: tuple[str, ...]
) -> tuple[AuthenticatedClient, str]:
    form = await read_form(request)
    authed = await clientauth.authenticate(request, form, assertion_audiences(origin(request)))
    if authed.client.kind not in kinds:
        raise Refused(
            "invalid_client", f"a {authed.client.kind} client may not call {subtype}", 401, authed.client.client_id
        )
    token = form.get("token")
    if token is None:
        raise Refused("invalid_request", "the parameter token is required", client_id=authed.client.client_id)
    return authed, token


async def introspect(request: Request) -> Response:
    base, service = origin(request), auth_service(request)
    try:
        # Resource servers introspect: confidential or system clients, never a public one.
        authed, token = await _authenticated_call(request, "introspect", ("confidential", "system"))

        def work(conn: Connection) -> dict[str, Any] | Refused:
            try:
                if authed.assertion is not None:
                    assertions.remember(conn, authed.assertion)
                return describe(conn, service, base, token, authed.client.client_id)
            except Refused as refused:
                return refused

        answer = await platform(request).db.run_async(work, write=authed.assertion is not None)
        if isinstance(answer, Refused):
            raise answer
    except Refused as refused:
        await trail.refusal(request, "introspect", refused)
        return oauth_error(refused)
    return json_answer(answer)


async def revoke(request: Request) -> Response:
    """Revoke a refresh token (its whole family) or an access token of the calling client; always 200
    once the client is authenticated, whether or not the token meant anything (RFC 7009 §2.2)."""
    if request.method == "OPTIONS":
        return preflight()
    base, service = origin(request), auth_service(request)
    try:
        authed, token = await _authenticated_call(request, "revoke", ("public", "confidential", "system"))
        caller = authed.client.client_id

        def work(conn: Connection) -> Refused | None:
            try:
                if authed.assertion is not None:
                    assertions.remember(conn, authed.assertion)
            except Refused as refused:
                return refused
            if token.startswith(refresh.PREFIX):
                row = refresh.find(conn, token)
                if row is not None and row.client_id == caller:
                    refresh.revoke_family(conn, service, row.family)
                return None
            principal = _valid_access_token(conn, service, base, token)
            if principal is not None and principal.client_id == caller:
                service.revoke(conn, jti=principal.jti)
            return None

        refused = await platform(request).db.run_async(work, write=True)
        if refused is not None:
            raise refused
    except Refused as refused:
        await trail.refusal(request, "revoke", refused)
        return oauth_error(refused)
    return Response(status_code=200, headers={**NO_STORE, **CORS})


def _bearer_error(status: int, error: str, description: str) -> Response:
    body = {"error": error, "error_description": description}
    return json_answer(body, status, {"WWW-Authenticate": bearer_challenge(error, description)})


async def userinfo(request: Request) -> Response:
    if request.method == "OPTIONS":
        return preflight()
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _bearer_error(401, "invalid_token", "send the access token as 'Authorization: Bearer <token>'")
    base, service = origin(request), auth_service(request)

    def work(conn: Connection) -> dict[str, Any] | Response:
        try:
            principal = service.authenticate(conn, token.strip(), audience_for(base))
        except TokenInvalid as exc:
            return _bearer_error(401, "invalid_token", exc.reason)
        user = find_user(conn, principal.subject) if not principal.is_system else None
        if "openid" not in principal.scopes.raw or user is None:
            return _bearer_error(403, "insufficient_scope", "userinfo needs a user's token with the openid scope")
        claims: dict[str, Any] = {"sub": user.username, "subject_role": user.role}
        if "profile" in principal.scopes.raw:
            claims |= {"name": user.display_name, **({"person_id": user.person_id} if user.person_id else {})}
        if "fhirUser" in principal.scopes.raw and user.fhir_user:
            claims["fhirUser"] = user.fhir_user
        if user.patient_id:
            claims["patient"] = user.patient_id
        return claims

    answer = await platform(request).db.run_async(work, write=False)
    return answer if isinstance(answer, Response) else json_answer(answer)
