"""Audit of the authorization server: one AuditEvent per refused attempt, and per successful login.

A refusal is written in a transaction of its own, after the work that led to it has committed or
rolled back: recording it can neither undo that work (a code burnt by a failed redemption stays
burnt) nor be undone by it. The log line says the same as the AuditEvent and, like it, never holds
a secret: only the client id, the username and why.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection
from starlette.requests import Request

from reference_impl import audit
from reference_impl.auth.web import Refused, client_address, fhir_server, request_id

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 128  # a client id or username as sent by anyone: kept to the length of real ones


def _record(
    request: Request,
    subtype: str,
    outcome: audit.Outcome,
    description: str,
    client_id: str | None,
    username: str | None,
) -> audit.AuditRecord:
    return audit.AuditRecord(
        action="E",
        subtype=subtype,
        outcome=outcome,
        description=description,
        client_id=client_id[:MAX_NAME_CHARS] if client_id else None,
        username=username[:MAX_NAME_CHARS] if username else None,
        network_address=client_address(request),
        request_id=request_id(request),
        event_type="login",
    )


async def refusal(request: Request, subtype: str, refused: Refused) -> None:
    """Audit a refused attempt at ``subtype`` (token, authorize, login, introspect, revoke...)."""
    description = f"{refused.error}: {refused.description}"
    client, user = (refused.client_id or "-")[:MAX_NAME_CHARS], (refused.username or "-")[:MAX_NAME_CHARS]
    log.info("refused %s (client %r, user %r): %s", subtype, client, user, description)
    record = _record(request, subtype, audit.REFUSED, description, refused.client_id, refused.username)
    server = fhir_server(request)

    def write(conn: Connection) -> None:
        audit.write(conn, server.registry, record)

    await server.db.run_async(write, write=True)


def login_record(request: Request, username: str, client_id: str) -> audit.AuditRecord:
    """The AuditEvent of a successful login: written with the session it opens."""
    log.info("login of %s for client %s", username, client_id)
    return _record(request, "login", audit.SUCCESS, f"{username} logged in for {client_id}", client_id, username)
