"""The browser side: ``GET /auth/authorize``, ``POST /auth/login``, ``POST /auth/consent``.

authorize -> (no session) login page -> POST login -> 303 back to authorize -> consent page ->
POST consent -> 303 to the client's redirect URI with ``code``, ``state`` and ``iss``. Every step
checks the authorization request again (``authrequest.parse``) and every form post its session's
CSRF token. 303 (not 302) after a POST: the browser must follow with a GET and never re-post the
form, credentials included, to the client (RFC 9700 §4.11).
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from reference_impl.audit import balp as audit
from reference_impl.auth import codes, pages, sessions, trail
from reference_impl.auth.authrequest import (
    AuthorizationRequest,
    AuthorizeRefused,
    parse,
    purposes_for,
    redirect_to,
    scope_for_user,
)
from reference_impl.auth.clientauth import dummy_hash
from reference_impl.auth.registry import User, check_secret, find_user
from reference_impl.auth.service import issuer_for
from reference_impl.auth.sessions import Session
from reference_impl.auth.web import Refused, auth_service, origin, parse_query, platform, read_form

PURPOSE_LABELS = {"TREAT": "treatment", "EMERGENCY": "emergency treatment", "PATRQT": "my own request as the patient"}
MAX_USERNAME_CHARS = 128
MAX_PASSWORD_CHARS = 1024
WRONG_CREDENTIALS = "Wrong username or password."


@dataclass(frozen=True)
class Step:
    """What a step knows once the request is checked: the request, the session, its user."""

    request: AuthorizationRequest
    session: Session | None
    user: User | None


async def _step(request: Request, query: str, username: str | None = None) -> Step:
    base, raw_session = origin(request), sessions.cookie_of(request)
    try:
        items = parse_query(query)
    except Refused as refused:
        raise AuthorizeRefused(refused.error, refused.description) from None

    def work(conn: Connection) -> Step:
        checked = parse(conn, items, base, platform(request).faults)
        session = sessions.find(conn, raw_session)
        name = username if username is not None else (session.username if session and session.logged_in else None)
        user = find_user(conn, name) if name else None
        return Step(checked, session, user if user is not None and user.active else None)

    return await platform(request).db.run_async(work, write=False)


async def _refuse(request: Request, subtype: str, refused: Refused) -> Response:
    await trail.refusal(request, subtype, refused)
    if not isinstance(refused, AuthorizeRefused) or refused.redirect_uri is None:
        return pages.error_page(refused.error, refused.description, 400)
    params = {"error": refused.error, "error_description": refused.description, "iss": issuer_for(origin(request))}
    if refused.state is not None:
        params["state"] = refused.state
    return pages.redirect(redirect_to(refused.redirect_uri, params), 302 if request.method == "GET" else 303)


def _login_page(
    request: Request, step: Step, session: Session, message: str | None, username: str = "", status: int = 401
) -> Response:
    client = step.request.client
    return pages.render(
        "login.html",
        status if message else 200,
        client_name=client.name,
        client_id=client.client_id,
        message=message,
        action=f"{issuer_for(origin(request))}/login",
        csrf=session.csrf(),
        request_query=step.request.query,
        username=username,
    )


def _consent_page(request: Request, step: Step, session: Session, user: User) -> Response:
    checked = step.request
    granted = scope_for_user(user, checked.scope).split()
    return pages.render(
        "consent.html",
        client_name=checked.client.name,
        client_id=checked.client.client_id,
        display_name=user.display_name,
        username=user.username,
        scopes=[(scope, pages.describe_scope(scope)) for scope in granted],
        dropped=[scope for scope in checked.scope.split() if scope not in granted],
        purposes=[(code, PURPOSE_LABELS[code]) for code in purposes_for(user)],
        redirect_uri=checked.redirect_uri,
        action=f"{issuer_for(origin(request))}/consent",
        csrf=session.csrf(),
        request_query=checked.query,
        redirects_to=checked.redirect_uri,
    )


async def authorize(request: Request) -> Response:
    try:
        step = await _step(request, request.url.query)
    except AuthorizeRefused as refused:
        return await _refuse(request, "authorize", refused)
    session = step.session
    if session is not None and step.user is not None:
        return _consent_page(request, step, session, step.user)
    if session is not None and not session.logged_in:
        return _login_page(request, step, session, None)
    fresh = await platform(request).db.run_async(lambda conn: sessions.start(conn, sessions.ANONYMOUS), write=True)
    response = _login_page(request, step, fresh, None)
    sessions.set_cookie(response, request, fresh)
    return response


async def login(request: Request) -> Response:
    try:
        form = await read_form(request)
        username = form.get("username", "")[:MAX_USERNAME_CHARS]
        step = await _step(request, form.get("request", ""), username)
        session = step.session
        if session is None or session.logged_in or not session.csrf_ok(form.get("csrf")):
            raise Refused("invalid_request", "the sign-in form expired or was not sent from this server's page")
    except Refused as refused:
        return await _refuse(request, "login", refused)
    password = form.get("password", "")[:MAX_PASSWORD_CHARS]
    user = step.user
    stored = user.password_hash if user is not None else dummy_hash()
    if not await anyio.to_thread.run_sync(check_secret, password, stored) or user is None:
        why = "wrong password" if user is not None else "unknown or inactive username"
        failed = Refused("access_denied", why, 401, step.request.client.client_id, username or None)
        await trail.refusal(request, "login", failed)
        return _login_page(request, step, session, WRONG_CREDENTIALS, username)
    server, client_id, service = platform(request), step.request.client.client_id, auth_service(request)

    def open_session(conn: Connection) -> Session | str:
        why = service.refusal(conn, user)  # the right password, but a login rule objects: say why
        if why is not None:
            return why
        audit.write(conn, server.registry, trail.login_record(request, user.username, client_id))
        return sessions.start(conn, user.username, replaces=session.raw_id)

    logged_in = await server.db.run_async(open_session, write=True)
    if isinstance(logged_in, str):
        await trail.refusal(request, "login", Refused("access_denied", logged_in, 403, client_id, user.username))
        return _login_page(request, step, session, logged_in, username, status=403)
    response = pages.redirect(f"{issuer_for(origin(request))}/authorize?{step.request.query}", 303)
    sessions.set_cookie(response, request, logged_in)
    return response


async def consent(request: Request) -> Response:
    try:
        form = await read_form(request)
        step = await _step(request, form.get("request", ""))
        session, user, checked = step.session, step.user, step.request
        if session is None or user is None or not session.csrf_ok(form.get("csrf")):
            raise Refused("invalid_request", "the consent form expired or was not sent from this server's page")
        refusal = AuthorizeRefused(
            "access_denied",
            "",
            client_id=checked.client.client_id,
            username=user.username,
            redirect_uri=checked.redirect_uri,
            state=checked.state,
        )
        if form.get("decision") != "allow":
            refusal.description = "the user denied access"
            raise refusal
        purposes = purposes_for(user)
        purpose = (purposes[0] if len(purposes) == 1 else form.get("purpose_of_use")) if purposes else None
        if purposes and purpose not in purposes:
            refusal.error, refusal.description = "invalid_request", f"purpose_of_use must be one of {purposes}"
            raise refusal
    except Refused as refused:
        return await _refuse(request, "consent", refused)

    def issue(conn: Connection) -> str:
        return codes.issue(
            conn,
            client_id=checked.client.client_id,
            username=user.username,
            redirect_uri=checked.redirect_uri,
            scope=scope_for_user(user, checked.scope),
            code_challenge=checked.code_challenge,
            purpose_of_use=purpose,
            nonce=checked.nonce,
        )

    code = await platform(request).db.run_async(issue, write=True)
    params = {"code": code, "state": checked.state, "iss": issuer_for(origin(request))}
    return pages.redirect(redirect_to(checked.redirect_uri, params), 303)
