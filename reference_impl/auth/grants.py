"""The three grants of the token endpoint, each one unit of work on one connection.

A refusal raised here must not undo what led to it (a burnt code, a remembered assertion jti, a
revoked family): the token endpoint commits the unit and only then answers with the error.
"""

from __future__ import annotations

from sqlalchemy import Connection

from reference_impl.auth import codes, refresh
from reference_impl.auth.authrequest import PKCE_PLAIN_ACCEPTED
from reference_impl.auth.clientauth import AuthenticatedClient
from reference_impl.auth.issuance import Grant, token_answer
from reference_impl.auth.registry import User, find_user
from reference_impl.auth.scopes import Scopes, within
from reference_impl.auth.service import AuthService
from reference_impl.auth.web import Refused, invalid_request
from reference_impl.faults import declare

CODE_REUSABLE = declare("code-reusable", "an authorization code can be redeemed again and again", ("auth@8",))

OFFLINE = "offline_access"
USER_GRANTS = ("public", "confidential")


def _require(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if value is None:
        raise invalid_request(f"the parameter {name} is required")
    return value


def _client_may(authed: AuthenticatedClient, kinds: tuple[str, ...], grant_type: str) -> None:
    client = authed.client
    if client.kind not in kinds:
        raise Refused(
            "unauthorized_client", f"a {client.kind} client may not use {grant_type}", client_id=client.client_id
        )


def _active_user(conn: Connection, service: AuthService, username: str, client_id: str) -> User:
    """The grant's user, if they may still act: an account that is gone or inactive, or that a login
    rule objects to now (an inactive practitioner), gets no token."""
    user = find_user(conn, username)
    if user is None or not user.active:
        raise Refused("invalid_grant", "the user of this grant is no longer active", client_id=client_id)
    why = service.refusal(conn, user)
    if why is not None:
        raise Refused("invalid_grant", why, client_id=client_id, username=username)
    return user


def authorization_code(
    conn: Connection, service: AuthService, origin: str, authed: AuthenticatedClient, form: dict[str, str]
) -> dict[str, object]:
    _client_may(authed, USER_GRANTS, "authorization_code")
    cid = authed.client.client_id
    code = _require(form, "code")
    try:
        faults = service.faults
        redeemed = codes.redeem(
            conn,
            code,
            cid,
            form.get("redirect_uri"),
            form.get("code_verifier"),
            plain_ok=faults.on(PKCE_PLAIN_ACCEPTED),
            reusable=faults.on(CODE_REUSABLE),
        )
    except codes.CodeReplayed as replay:
        refresh.revoke_family(conn, service, replay.family)
        raise
    user = _active_user(conn, service, redeemed.username, cid)
    grant = Grant(cid, redeemed.scope, redeemed.family, user, redeemed.purpose_of_use, redeemed.nonce)
    refresh_scope = redeemed.scope if OFFLINE in redeemed.scope.split() else None
    return token_answer(conn, service, origin, grant, with_id_token=True, refresh_scope=refresh_scope)


def refresh_token(
    conn: Connection, service: AuthService, origin: str, authed: AuthenticatedClient, form: dict[str, str]
) -> dict[str, object]:
    _client_may(authed, USER_GRANTS, "refresh_token")
    cid = authed.client.client_id
    used = refresh.use(conn, service, _require(form, "refresh_token"), cid, form.get("scope"))
    user = _active_user(conn, service, used.username, cid)
    grant = Grant(cid, used.scope, used.family, user, used.purpose_of_use)
    # No ID token on refresh: there was no new authentication, and its nonce belongs to the first one.
    return token_answer(conn, service, origin, grant, with_id_token=False, refresh_scope=used.refresh_scope)


def client_credentials(
    conn: Connection, service: AuthService, origin: str, authed: AuthenticatedClient, form: dict[str, str]
) -> dict[str, object]:
    _client_may(authed, ("system",), "client_credentials")
    client = authed.client
    scope = form.get("scope")
    if scope is None:
        raise Refused("invalid_scope", "scope is required (system/... scopes)", client_id=client.client_id)
    requested = Scopes.parse(scope)
    if len(requested.resource) != len(requested.raw) or requested.contexts() != {"system"}:
        raise Refused("invalid_scope", "a system client asks for system/... scopes only", client_id=client.client_id)
    if not within(requested, client.scopes):
        raise Refused(
            "invalid_scope", f"the requested scope exceeds the client's ({client.scopes})", client_id=client.client_id
        )
    grant = Grant(client.client_id, " ".join(requested.raw), family=None)
    return token_answer(conn, service, origin, grant, with_id_token=False)


GRANTS = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
}
