"""Who the client is, at the token, introspection and revocation endpoints.

Each client has exactly one method (``registry.AUTH_METHODS``): public clients name themselves
(``none``), confidential web apps use HTTP Basic (``client_secret_basic``), systems sign an
assertion (``private_key_jwt``). A client presenting another method than its own is refused:
accepting "any method that works" would let a confidential client fall back to no secret at all.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote_plus

import anyio.to_thread
from sqlalchemy import Connection
from starlette.requests import Request

from reference_impl.auth import assertions
from reference_impl.auth.assertions import ASSERTION_TYPE, VerifiedAssertion, invalid_client
from reference_impl.auth.registry import Client, check_secret, find_client, hash_secret
from reference_impl.auth.web import Refused, invalid_request, platform
from reference_impl.faults import declare

ASSERTION_REPLAY_ACCEPTED = declare(
    "assertion-replay-accepted", "client assertion jti values are not remembered: replays pass", ("auth@16",)
)
ASSERTION_LIFETIME_UNCHECKED = declare(
    "assertion-lifetime-unchecked", "client assertions valid for longer than five minutes are accepted", ("auth@17",)
)

BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="eqlab"'}


@dataclass(frozen=True)
class Credentials:
    method: str  # none | client_secret_basic | private_key_jwt
    client_id: str
    secret: str | None = None
    assertion: str | None = None


@dataclass(frozen=True)
class AuthenticatedClient:
    client: Client
    assertion: VerifiedAssertion | None  # its jti is remembered inside the unit of work that uses it


@cache
def dummy_hash() -> str:
    # Checking a secret of an unknown client (or a password of an unknown user) against this costs
    # what a real check costs, so the answer time does not tell which ids exist.
    return hash_secret("no client has this secret")


def credentials_of(request: Request, form: dict[str, str]) -> Credentials:
    header = request.headers.get("authorization")
    has_assertion = "client_assertion" in form or "client_assertion_type" in form
    if "client_secret" in form:
        raise invalid_client("client_secret_post is not supported: send the secret with HTTP Basic")
    if header is not None and has_assertion:
        raise invalid_request("use one client authentication method, not several")
    if header is not None:
        return _basic(header, form)
    if has_assertion:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion", "")
        _, claims = assertions.unverified(assertion)
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise invalid_client("the client assertion names no issuer (iss)")
        if form.get("client_id", issuer) != issuer:
            raise invalid_client("client_id and the assertion's iss differ", issuer)
        return Credentials("private_key_jwt", issuer, assertion=assertion)
    client_id = form.get("client_id")
    if not client_id:
        raise invalid_client("the client did not identify itself (client_id or client authentication)")
    return Credentials("none", client_id)


def _basic(header: str, form: dict[str, str]) -> Credentials:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Refused("invalid_client", "client authentication uses HTTP Basic", 401, headers=BASIC_CHALLENGE)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused("invalid_client", "malformed HTTP Basic credentials", 401, headers=BASIC_CHALLENGE) from None
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep:
        raise Refused("invalid_client", "malformed HTTP Basic credentials", 401, headers=BASIC_CHALLENGE)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if form.get("client_id", client_id) != client_id:
        raise invalid_request("client_id differs from the authenticated client")
    return Credentials("client_secret_basic", client_id, secret=secret)


async def authenticate(request: Request, form: dict[str, str], audiences: tuple[str, ...]) -> AuthenticatedClient:
    """The client of this request, its credentials checked (the assertion's jti not yet remembered)."""
    credentials = credentials_of(request, form)
    cid = credentials.client_id

    def lookup(conn: Connection) -> Client | None:
        return find_client(conn, cid)

    client = await platform(request).db.run_async(lookup, write=False)
    usable = client is not None and client.active
    if credentials.method == "client_secret_basic":
        stored = client.secret_hash if usable and client and client.auth_method == credentials.method else None
        matches = await anyio.to_thread.run_sync(check_secret, credentials.secret or "", stored or dummy_hash())
        if not (usable and stored and matches):
            raise Refused(
                "invalid_client", "unknown client or wrong client secret", 401, client_id=cid, headers=BASIC_CHALLENGE
            )
    if client is None or not client.active:
        raise invalid_client("unknown or inactive client", cid)
    if client.auth_method != credentials.method:
        raise invalid_client(f"this client must authenticate with {client.auth_method}", cid)
    verified = None
    faults = platform(request).faults
    if credentials.method == "private_key_jwt":
        unbounded = faults.on(ASSERTION_LIFETIME_UNCHECKED)
        max_ahead = 10**9 if unbounded else assertions.MAX_AHEAD_S
        verified = assertions.verify(credentials.assertion or "", client, audiences, max_ahead_s=max_ahead)
    if faults.on(ASSERTION_REPLAY_ACCEPTED):
        verified = None  # its jti is never remembered
    return AuthenticatedClient(client, verified)
