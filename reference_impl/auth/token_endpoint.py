"""``POST /auth/token``: authenticate the client, run its grant, answer tokens or an RFC 6749 §5.2 error.

The grant runs as one write unit that *returns* its refusal rather than raising it, so that what
the refusal depends on is committed (the burnt code, the remembered assertion jti, the revoked
family); the AuditEvent of the refusal is then written in a transaction of its own.
"""

from __future__ import annotations

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from reference_impl.auth import assertions, clientauth, trail
from reference_impl.auth.grants import GRANTS
from reference_impl.auth.service import issuer_for
from reference_impl.auth.web import (
    Refused,
    auth_service,
    json_answer,
    oauth_error,
    origin,
    platform,
    preflight,
    read_form,
)


def assertion_audiences(base: str) -> tuple[str, ...]:
    """The ``aud`` a client assertion may name: the token endpoint (first: quoted in errors) or the issuer."""
    issuer = issuer_for(base)
    return (f"{issuer}/token", issuer)


async def token(request: Request) -> Response:
    if request.method == "OPTIONS":
        return preflight()
    base = origin(request)
    service = auth_service(request)
    form: dict[str, str] = {}
    try:
        form = await read_form(request)
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise Refused("invalid_request", "grant_type is required")
        handler = GRANTS.get(grant_type)
        if handler is None:
            raise Refused("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        authed = await clientauth.authenticate(request, form, assertion_audiences(base))

        def work(conn: Connection) -> dict[str, object] | Refused:
            try:
                if authed.assertion is not None:
                    assertions.remember(conn, authed.assertion)
                return handler(conn, service, base, authed, form)
            except Refused as refused:
                return refused

        answer = await platform(request).db.run_async(work, write=True)
        if isinstance(answer, Refused):
            raise answer
    except Refused as refused:
        refused.client_id = refused.client_id or form.get("client_id")
        await trail.refusal(request, "token", refused)
        return oauth_error(refused)
    return json_answer(answer)
