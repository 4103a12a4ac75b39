"""HTTP plumbing shared by the authorization server's endpoints: forms, origins, OAuth error answers.

Parameters follow RFC 6749 §3.1: one value each (a repeated parameter is an ``invalid_request``,
never silently "the first one wins", which is how parameter-pollution attacks slip through) and a
parameter sent empty counts as absent. Every answer that carries or refuses credentials is
``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reference_impl.auth.service import AuthService
from reference_impl.faults import FaultSwitches
from reference_impl.fhir.searchparams import SearchParamRegistry
from reference_impl.store.database import Database

FORM_LIMIT_BYTES = 64 * 1024  # the largest legitimate form (a client assertion with a certificate chain) fits
MAX_FIELDS = 64
FORM_TYPE = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Browser apps call these JSON endpoints from their own origin; no cookies are involved, so any origin may.
CORS = {"Access-Control-Allow-Origin": "*"}
CORS_PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


@dataclass(eq=False)  # exceptions stay hashable
class Refused(Exception):
    """A request the authorization server turns down: the OAuth error, and what to audit about it.

    ``description`` is shown to the caller and written to the audit trail, so it never quotes a
    secret, a code or a token the caller sent.
    """

    error: str
    description: str
    status: int = 400
    client_id: str | None = None
    username: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.description)


def invalid_request(description: str) -> Refused:
    return Refused("invalid_request", description)


def params_from(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Single-valued parameters; empty ones dropped; a repeated one refused."""
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in items:
        if name in seen:
            raise invalid_request(f"the parameter {name!r} is given more than once")
        seen.add(name)
        if value != "":
            params[name] = value
    return params


def parse_query(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise invalid_request(f"too many parameters (at most {MAX_FIELDS})") from None


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body of a POST (RFC 6749 §4.1.3 and friends), size-limited."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise invalid_request(f"the body must be {FORM_TYPE}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > FORM_LIMIT_BYTES:
            raise invalid_request(f"the body exceeds {FORM_LIMIT_BYTES} bytes")
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_request("the body is not UTF-8") from None
    return params_from(parse_query(text))


def origin(request: Request) -> str:
    """scheme://host[:port] as the client called it: every URL the server hands out starts with it."""
    return f"{request.url.scheme}://{request.url.netloc}"


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return str(value) if value else None


class Platform(Protocol):
    """The parts of the platform the authorization server's endpoints use (the FHIR server holds them)."""

    db: Database
    registry: SearchParamRegistry
    faults: FaultSwitches


def platform(request: Request) -> Platform:
    parts: Platform = request.app.state.fhir
    return parts


def auth_service(request: Request) -> AuthService:
    return service_for(request.app)


def service_for(app: Any) -> AuthService:
    """The one AuthService of ``app``: the FHIR server's when it has one (its key cache must be the
    one a rotation resets), else made once from the settings and kept on the app."""
    found = getattr(app.state.fhir, "auth", None)
    if isinstance(found, AuthService):
        return found
    kept = getattr(app.state, "auth", None)
    if isinstance(kept, AuthService):
        return kept
    service = AuthService.from_settings(app.state.fhir.settings)
    app.state.auth = service
    return service


def json_answer(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status, {**NO_STORE, **CORS, **(headers or {})})


def oauth_error(refused: Refused) -> JSONResponse:
    """RFC 6749 §5.2: a JSON error object, 400 (401 for a client that failed to authenticate)."""
    return json_answer(
        {"error": refused.error, "error_description": refused.description}, refused.status, refused.headers
    )


def preflight() -> Response:
    return Response(status_code=204, headers=CORS_PREFLIGHT)
