"""The authorization request (RFC 6749 §4.1.1, PKCE S256, SMART ``aud``), checked alike at every step.

The login and consent forms carry the request's query string and each step checks it again from
scratch, so no step trusts what a browser sent back, and no server-side state is needed between
steps beyond the session.

Until the client and its redirect URI are known to belong together (exact string comparison with
a registered URI: no prefix, no pattern, no normalisation), nothing is sent to the redirect URI:
the refusal is an error page. After that, errors go back to the client (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Connection

from reference_impl.auth.codes import CHALLENGE, VERIFIER
from reference_impl.auth.registry import Client, User, find_client
from reference_impl.auth.scopes import Scopes, is_valid, within
from reference_impl.auth.service import audience_for
from reference_impl.auth.web import Refused, params_from
from reference_impl.faults import FaultSwitches, declare

PKCE_PLAIN_ACCEPTED = declare(
    "pkce-plain-accepted",
    "the authorization server also accepts code_challenge_method=plain (verifier = challenge)",
    ("auth@5",),
)
REDIRECT_PREFIX_MATCH = declare(
    "redirect-prefix-match",
    "a redirect URI is accepted when it starts with a registered one (an open redirector for codes)",
    ("auth@10",),
)

MAX_STATE_CHARS = 1024
MAX_NONCE_CHARS = 256  # the column that keeps it
LAUNCH_PATIENT = "launch/patient"
_PRINTABLE = re.compile(r"^[\x20-\x7e]*\Z")


@dataclass(eq=False)
class AuthorizeRefused(Refused):
    """A refused authorization request: sent back to ``redirect_uri`` when set, else shown as a page."""

    redirect_uri: str | None = None
    state: str | None = None


@dataclass(frozen=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    state: str
    scope: str
    code_challenge: str
    nonce: str | None
    query: str  # the accepted parameters, re-encoded: what the login and consent forms carry


def _single(items: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in items if key == name]
    if len(values) > 1:
        raise AuthorizeRefused("invalid_request", f"{name} is given more than once")
    return values[0] if values and values[0] else None


def parse(
    conn: Connection, items: list[tuple[str, str]], base: str, faults: FaultSwitches | None = None
) -> AuthorizationRequest:
    faults = faults or FaultSwitches()
    client_id = _single(items, "client_id")
    if client_id is None:
        raise AuthorizeRefused("invalid_request", "client_id is required")
    client = find_client(conn, client_id)
    if client is None or not client.active:
        raise AuthorizeRefused("invalid_client", "unknown or inactive client", client_id=client_id)
    redirect_uri = _single(items, "redirect_uri")
    if redirect_uri is None:
        raise AuthorizeRefused("invalid_request", "redirect_uri is required", client_id=client_id)
    prefixed = faults.on(REDIRECT_PREFIX_MATCH) and any(redirect_uri.startswith(u) for u in client.redirect_uris)
    if redirect_uri not in client.redirect_uris and not prefixed:
        raise AuthorizeRefused(
            "invalid_request",
            "redirect_uri is not registered for this client (exact match required)",
            client_id=client_id,
        )
    state: str | None = None

    def back(error: str, why: str) -> AuthorizeRefused:
        return AuthorizeRefused(error, why, client_id=client_id, redirect_uri=redirect_uri, state=state)

    try:
        params = params_from(items)
    except Refused as refused:
        raise back("invalid_request", refused.description) from None
    given_state = params.get("state")
    if given_state is not None and len(given_state) <= MAX_STATE_CHARS and _PRINTABLE.match(given_state):
        state = given_state
    if given_state is None:
        raise back("invalid_request", "state is required")
    if state is None:
        raise back("invalid_request", f"state must be at most {MAX_STATE_CHARS} printable ASCII characters")
    if "request" in params or "request_uri" in params:
        raise back("request_not_supported", "request objects are not supported")
    if params.get("response_type") != "code":
        raise back("unsupported_response_type", "response_type must be code")
    plain = faults.on(PKCE_PLAIN_ACCEPTED) and params.get("code_challenge_method") == "plain"
    if params.get("code_challenge_method") != "S256" and not plain:
        raise back("invalid_request", "PKCE is required with code_challenge_method=S256 (plain is refused)")
    challenge = params.get("code_challenge")
    if challenge is None or not (CHALLENGE.match(challenge) or (plain and VERIFIER.match(challenge))):
        raise back("invalid_request", "code_challenge must be the base64url SHA-256 of the code verifier (43 chars)")
    if params.get("aud", "").rstrip("/") != audience_for(base):
        raise back("invalid_request", f"aud must be the FHIR base URL {audience_for(base)}")
    nonce = params.get("nonce")
    if nonce is not None and (len(nonce) > MAX_NONCE_CHARS or not _PRINTABLE.match(nonce)):
        raise back("invalid_request", f"nonce must be at most {MAX_NONCE_CHARS} printable ASCII characters")
    scope = params.get("scope")
    if scope is None:
        raise back("invalid_scope", "scope is required")
    unknown = [s for s in scope.split() if not is_valid(s)]
    if unknown:
        raise back("invalid_scope", f"unknown scope(s): {' '.join(unknown)[:200]}")
    if not within(Scopes.parse(scope), client.scopes):
        raise back("invalid_scope", "the requested scope exceeds what this client may ask for")
    return AuthorizationRequest(client, redirect_uri, state, scope, challenge, nonce, urlencode(list(params.items())))


def redirect_to(redirect_uri: str, params: dict[str, str]) -> str:
    """``redirect_uri`` with ``params`` added to its query (a registered URI may have one already)."""
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{separator}{urlencode(params)}"


def scope_for_user(user: User, requested: str) -> str:
    """What of ``requested`` the user can hold: patients get patient/ scopes (their own record),
    professionals and auditors user/ scopes; ``launch/patient`` only makes sense for a patient here
    (there is no patient picker)."""
    context = "patient" if user.role == "patient" else "user"
    kept = []
    for scope in requested.split():
        resource = Scopes.parse(scope).resource
        if resource and resource[0].context != context:
            continue
        if scope == LAUNCH_PATIENT and context != "patient":
            continue
        kept.append(scope)
    return " ".join(kept)


def purposes_for(user: User) -> tuple[str, ...]:
    """The purposes of use a user may choose (the first is the default)."""
    if user.role == "patient":
        return ("PATRQT",)
    if user.role == "auditor":
        return ()  # an auditor does not access data for care: no IUA purpose applies
    return ("TREAT", "EMERGENCY")
