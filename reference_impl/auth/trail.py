"""The authorization server's audit trail: its refusals and logins, as audit/authentication.py describes them.

A refusal is written in a transaction of its own, after the work that led to it has committed or
rolled back: recording it can neither undo that work (a code burnt by a failed redemption stays
burnt) nor be undone by it.
"""

from __future__ import annotations

from sqlalchemy import Connection
from starlette.requests import Request

from reference_impl.audit import authentication
from reference_impl.audit import balp as audit
from reference_impl.auth.web import Refused, client_address, platform, request_id


async def refusal(request: Request, subtype: str, refused: Refused) -> None:
    """Audit a refused attempt at ``subtype`` (token, authorize, login, introspect, revoke...)."""
    record = authentication.refusal_record(
        subtype,
        f"{refused.error}: {refused.description}",
        refused.client_id,
        refused.username,
        client_address(request),
        request_id(request),
    )
    parts = platform(request)

    def write(conn: Connection) -> None:
        audit.write(conn, parts.registry, record)

    await parts.db.run_async(write, write=True)


def login_record(request: Request, username: str, client_id: str) -> audit.AuditRecord:
    """The AuditEvent of a successful login: written with the session it opens."""
    return authentication.login_record(username, client_id, client_address(request), request_id(request))
