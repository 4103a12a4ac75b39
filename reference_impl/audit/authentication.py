"""The AuditRecords of the authorization server: one per refused attempt, and one per successful login.

Like the AuditEvent it becomes, the log line of each never holds a secret: only the client id,
the username and why (both names cut to the length of real ones: anyone can send them).
"""

from __future__ import annotations

import logging

from reference_impl.audit.balp import REFUSED, SUCCESS, AuditRecord, Outcome

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 128


def _record(
    subtype: str,
    outcome: Outcome,
    description: str,
    client_id: str | None,
    username: str | None,
    network_address: str | None,
    request_id: str | None,
) -> AuditRecord:
    return AuditRecord(
        action="E",
        subtype=subtype,
        outcome=outcome,
        description=description,
        client_id=client_id[:MAX_NAME_CHARS] if client_id else None,
        username=username[:MAX_NAME_CHARS] if username else None,
        network_address=network_address,
        request_id=request_id,
        event_type="login",
    )


def refusal_record(
    subtype: str,
    description: str,
    client_id: str | None,
    username: str | None,
    network_address: str | None,
    request_id: str | None,
) -> AuditRecord:
    """A refused attempt at ``subtype`` (token, authorize, login, introspect, revoke...)."""
    client, user = (client_id or "-")[:MAX_NAME_CHARS], (username or "-")[:MAX_NAME_CHARS]
    log.info("refused %s (client %r, user %r): %s", subtype, client, user, description)
    return _record(subtype, REFUSED, description, client_id, username, network_address, request_id)


def login_record(username: str, client_id: str, network_address: str | None, request_id: str | None) -> AuditRecord:
    """A successful login: written with the session it opens."""
    log.info("login of %s for client %s", username, client_id)
    return _record(
        "login", SUCCESS, f"{username} logged in for {client_id}", client_id, username, network_address, request_id
    )
