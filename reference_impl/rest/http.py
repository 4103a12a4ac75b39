"""HTTP adapter: turns Starlette requests into FhirRequests and FhirResponses into HTTP.

Here, before anything runs: the 406 check (so no write happens for a client that cannot read
the answer), the body size limit (413, also for chunked bodies), and the request id.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from dataclasses import replace
from typing import Any

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reference_impl.faults import declare
from reference_impl.fhir.errors import FhirError, Issue, error, operation_outcome
from reference_impl.rest import negotiation
from reference_impl.rest.handler import FhirResponse
from reference_impl.rest.routing import FhirRequest

NO_ETAG = declare("no-etag", "responses carry no ETag header", ("fhir@15",))
PLAIN_TEXT_ERRORS = declare(
    "plain-text-errors", "errors are answered as text/plain diagnostics, not OperationOutcomes", ("fhir@24",)
)
WRONG_CONTENT_TYPE = declare(
    "wrong-content-type", "answers are labelled application/json instead of application/fhir+json", ("fhir@26",)
)
ACCEPT_IGNORED = declare("accept-ignored", "the Accept header and _format are ignored: never 406", ("fhir@27",))
BODY_LIMIT_IGNORED = declare("body-limit-ignored", "bodies over 10 MiB are accepted (no 413)", ("fhir@45",))
EMPTY_JSON_ARRAYS = declare(
    "empty-json-arrays",
    "JSON answers keep empty arrays and objects (a batch response's link: [], searchInclude: [])",
    ("fhir@50",),
)

log = logging.getLogger(__name__)
FHIR_PREFIX = "/fhir"
# An oversized body is read and dropped up to this much beyond the limit before the 413 is sent, so clients that
# send the whole body before reading (urllib, http.client) get the OperationOutcome instead of a connection reset.
DISCARD_BEYOND_LIMIT_BYTES = 16 * 1024 * 1024


REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}\Z")


class RequestIdMiddleware:
    """Echo a well-formed ``X-Request-Id`` (or make one) on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if _SAFE_REQUEST_ID.match(given) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


async def fhir_endpoint(request: Request) -> Response:
    server = request.app.state.fhir
    method = "GET" if request.method == "HEAD" else request.method
    path = request.path_params.get("path", "")
    scope = request.scope
    headers = _joined_headers(scope["headers"])
    fhir_request = FhirRequest(
        method=method,
        path=path,
        query=tuple(request.query_params.multi_items()) if scope["query_string"] else (),
        headers=headers,
        base_url=_base_url(scope.get("scheme", "http"), _first_host(scope["headers"]), _address(scope.get("server"))),
        request_id=scope.get("state", {}).get("request_id", ""),
        client_address=request.client.host if request.client else None,
    )
    media = negotiation.FHIR_JSON
    try:
        raw_binary_read = method == "GET" and path.startswith("Binary/") and negotiation.wants_raw_binary(fhir_request)
        if not raw_binary_read and not server.faults.on(ACCEPT_IGNORED):
            media = negotiation.response_type(fhir_request)
        if server.faults.on(WRONG_CONTENT_TYPE):
            media = "application/json"
        limit = server.settings.max_body_bytes if not server.faults.on(BODY_LIMIT_IGNORED) else 1 << 40
        body = await _read_body(request, limit, headers.get("content-length"))
        if body:
            fhir_request = replace(fhir_request, body=body)
        response = await server.handle(fhir_request)
        if isinstance(response.body, dict) and not server.faults.on(EMPTY_JSON_ARRAYS):
            response = replace(response, body=without_empty(response.body))
    except FhirError as exc:
        if server.faults.on(PLAIN_TEXT_ERRORS):
            return Response(str(exc), exc.status, exc.headers, media_type="text/plain")
        return _json(exc.status, exc.outcome, media, exc.headers)
    except Exception:
        log.exception("unexpected error handling %s %s", method, request.url.path)
        outcome = operation_outcome(
            [Issue("internal server error; the request id identifies it in the log", "exception", "fatal")]
        )
        return _json(500, outcome, media, {})
    if server.faults.on(NO_ETAG):
        response.headers.pop("ETag", None)
    return _render(response, media)


class FhirEndpoint:
    """The FHIR API as an ASGI endpoint (``app.PlatformApp`` sends it every method, so even PROPFIND
    gets its answer, a 405 OperationOutcome, from the FHIR router)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await fhir_endpoint(Request(scope, receive))
        await response(scope, receive, send)


async def _read_body(request: Request, limit: int, declared: str | None) -> bytes:
    declared_size = int(declared) if declared is not None and declared.isdigit() else None
    if declared_size is not None and declared_size > limit + DISCARD_BEYOND_LIMIT_BYTES:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + DISCARD_BEYOND_LIMIT_BYTES:
            raise _too_large(limit)
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise _too_large(limit)  # read to the end first: a client still sending would see a reset, not the 413
    return b"".join(chunks)


def _too_large(limit: int) -> FhirError:
    return error(413, f"the body exceeds the limit of {limit} bytes", "too-costly")


def _joined_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's headers by lower-case name, a repeated header's values joined by ", " (RFC 9110 5.3)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _first_host(raw: list[tuple[bytes, bytes]]) -> bytes | None:
    return next((value for name, value in raw if name == b"host"), None)


def _address(server: Any) -> tuple[str, int | None] | None:
    return (server[0], server[1]) if server else None


@functools.lru_cache(maxsize=256)
def _base_url(scheme: str, host: bytes | None, server: tuple[str, int | None] | None) -> str:
    """The FHIR base as the client addressed it: Starlette's reading of the Host header (or of the address
    served), remembered per distinct value, as a client names the same on every request."""
    headers = [(b"host", host)] if host is not None else []
    scope = {"type": "http", "scheme": scheme, "server": server, "path": "", "query_string": b"", "headers": headers}
    return f"{scheme}://{URL(scope=scope).netloc}{FHIR_PREFIX}"


def without_empty(value: Any) -> Any:
    """The JSON value with every empty array and object left out (FHIR JSON forbids them), recursively.

    Most answers have none: those are looked through and returned as they are, and only a value that
    has one is rebuilt. A searchset of 20 AuditEvents (the FHIR example's) took 726 µs when every
    answer was copied whole; 188 µs looked through, 280 µs more when it has an empty to leave out.
    """
    return _pruned(value) if _has_empty(value) else value


def _has_empty(value: Any) -> bool:
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return False
    if not value:
        return True
    # A loop, not any() over a generator: 188 against 332 µs for a bundle of 20 AuditEvents.
    for item in items:  # noqa: SIM110
        if isinstance(item, (dict, list)) and _has_empty(item):
            return True
    return False


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(item, (dict, list)):
                kept[key] = item
            elif pruned := _pruned(item):
                kept[key] = pruned
        return kept
    if isinstance(value, list):
        kept_items: list[Any] = []
        for item in value:
            if not isinstance(item, (dict, list)):
                kept_items.append(item)
            elif pruned := _pruned(item):
                kept_items.append(pruned)
        return kept_items
    return value


def _render(response: FhirResponse, media: str) -> Response:
    if response.raw_media_type is not None:
        assert isinstance(response.body, bytes)
        return Response(response.body, response.status, response.headers, media_type=response.raw_media_type)
    if response.body is None:
        return Response(b"", response.status, response.headers)
    return Response(response.json_bytes(), response.status, response.headers, media_type=_content_type(media))


def _json(status: int, body: dict[str, Any], media: str, headers: dict[str, str]) -> Response:
    return _render(FhirResponse(status, body, dict(headers)), media)


def _content_type(media: str) -> str:
    return f"{media}; charset=utf-8"
