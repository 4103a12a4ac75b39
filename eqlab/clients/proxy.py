"""The recording reverse proxy a client under test talks to, in front of the simulated platform.

Every request is forwarded as it came, ``Host`` included: the platform builds its URLs (discovery,
paging links, the tokens' audience) from the origin the client called, so the client never leaves
the proxy. What the client sent and what it got back goes to the ``Journal`` twice over: sealed for
the checks (``sealing``) and redacted as evidence for the reports (``EvidenceRecorder``). A request
matching an armed ``Injection`` is answered by the proxy instead of the platform.

Bounded like the lab's own client: a request body over ``MAX_REQUEST_BODY`` gets 413 without
reaching the platform, an answer over ``MAX_RESPONSE_BODY`` or slower than ``UPSTREAM_TIMEOUT_S``
becomes a 502 that says so. No cookie jar and no redirects are followed: the client's own
``Cookie`` headers pass through, each response goes back as it is.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn

from eqlab.clients import sealing
from eqlab.clients.captured import ClientRequest
from eqlab.clients.journal import Journal
from eqlab.evidence import redaction
from eqlab.evidence.recorder import EvidenceRecorder, EvidenceStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_REQUEST_BODY = 11 * 1024 * 1024  # above the platform's own 10 MiB limit, so it still answers 413 itself
MAX_RESPONSE_BODY = 20 * 1024 * 1024
MAX_JUDGED_JSON = 1024 * 1024  # a body's JSON kept whole for the checks up to this size
UPSTREAM_TIMEOUT_S = 30.0
START_TIMEOUT_S = 30
# RFC 9110 §7.6.1: connection-specific fields are not forwarded; lengths and encodings are the proxy's own.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "accept-encoding",
    }
)


class RecordingProxy:
    """An ASGI application forwarding to ``upstream`` (an origin: ``http://127.0.0.1:8080``)."""

    def __init__(self, upstream: str, journal: Journal, store: EvidenceStore | None = None) -> None:
        parts = urlsplit(upstream)
        if not parts.scheme or not parts.netloc:
            raise ValueError(
                f"the platform behind the recorder needs an origin such as http://host:port, not {upstream!r}"
            )
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self.journal = journal
        self.evidence = EvidenceRecorder(store)
        self._transport: httpx.AsyncHTTPTransport | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: the platform has none
        await self._exchange(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._transport = httpx.AsyncHTTPTransport(retries=0)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._transport is not None:
                    await self._transport.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _exchange(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrival = self.journal.arrive()
        began = time.perf_counter()
        body, too_large = await _read_body(receive)
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1") + (f"?{query}" if query else "")
        request = httpx.Request(
            scope["method"],
            self.upstream + target,
            headers=[(k, v) for k, v in raw_headers if k.lower() not in HOP_BY_HOP],
            content=body,
        )
        self.evidence.on_request(request)
        seen = _as_seen(request, body, arrival.n, arrival.scenario, arrival.step, arrival.at)
        injection = self.journal.injection_for(seen)
        if too_large:
            response = _plain(request, 413, f"the request body is over the recorder's {MAX_REQUEST_BODY} bytes")
        elif injection is not None:
            response = httpx.Response(
                injection.status, headers=injection.headers, content=injection.body.encode(), request=request
            )
        else:
            response = await self._forward(request)
        self.evidence.on_response(response)
        exchange = self.evidence.exchanges.pop()  # kept once, in the journal (which bounds how many)
        self.journal.add(
            seen.model_copy(
                update={
                    "injected": injection is not None,
                    "status": response.status_code,
                    "response_headers": sealing.headers(dict(response.headers)),
                    "response_json": _json_or_none(response.content, response.headers.get("content-type")),
                    "exchange": exchange.model_copy(
                        update={
                            "id": f"x{arrival.n}",
                            "url": redaction.url(_called(scope, target)),
                            "elapsed_ms": round((time.perf_counter() - began) * 1000, 3),
                        }
                    ),
                }
            )
        )
        await _reply(send, response)

    async def _forward(self, request: httpx.Request) -> httpx.Response:
        assert self._transport is not None, "the proxy forwards only once its lifespan started"
        try:
            return await _bounded(self._transport, request)
        except httpx.HTTPError as exc:
            return _plain(request, 502, f"the platform behind the recorder failed: {type(exc).__name__}: {exc}")


async def _bounded(transport: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
    request.extensions["timeout"] = httpx.Timeout(UPSTREAM_TIMEOUT_S).as_dict()
    response = await transport.handle_async_request(request)
    chunks, size = [], 0
    try:
        async for chunk in response.aiter_bytes():  # decoded: evidence and client see plain bytes
            size += len(chunk)
            if size > MAX_RESPONSE_BODY:
                return _plain(request, 502, f"the platform's answer is over the recorder's {MAX_RESPONSE_BODY} bytes")
            chunks.append(chunk)
    finally:
        await response.aclose()
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP]
    return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=request)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, up to the cap; past it the rest is read and dropped (the client still gets 413)."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_REQUEST_BODY:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks), size > MAX_REQUEST_BODY


def _called(scope: Scope, target: str) -> str:
    """The URL as the client called it (the proxy's origin), not as it was forwarded."""
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    server = scope.get("server") or ("127.0.0.1", 0)
    return f"{scope.get('scheme', 'http')}://{host or f'{server[0]}:{server[1]}'}{target}"


def _plain(request: httpx.Request, status: int, text: str) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "text/plain; charset=utf-8"}, text=text, request=request)


async def _reply(send: Send, response: httpx.Response) -> None:
    headers = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers.multi_items()
        if k.lower() not in HOP_BY_HOP
    ]
    headers.append((b"content-length", str(len(response.content)).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


def _as_seen(request: httpx.Request, body: bytes, n: int, scenario: str, step: str, at: float) -> ClientRequest:
    content_type = request.headers.get("content-type", "")
    is_form = content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded"
    return ClientRequest(
        n=n,
        scenario=scenario,
        step=step,
        method=request.method,
        path=request.url.path,
        query=sealing.query(request.url.query.decode("latin-1")),
        headers=sealing.headers(dict(request.headers)),
        form=sealing.form(body) if is_form else None,
        json_body=None if is_form else _json_or_none(body, content_type),
        arrived=at,
    )


def _json_or_none(raw: bytes, content_type: str | None) -> Any:
    """The JSON body as the checks see it; past ``MAX_JUDGED_JSON`` only what a Bundle says of
    itself (type, total, links) is kept, so a flood of large bodies cannot fill the journal."""
    if not raw or "json" not in (content_type or "").lower():
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    if len(raw) > MAX_JUDGED_JSON:
        if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
            return None
        document = {k: document[k] for k in ("resourceType", "type", "total", "link") if k in document}
    return sealing.json_body(document)


@contextmanager
def serve_on_loopback(app: RecordingProxy) -> Iterator[str]:
    """Serve the proxy with uvicorn from a thread on a free loopback port; yields its origin."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True, name="eqlab-recorder")
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the recorder did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
