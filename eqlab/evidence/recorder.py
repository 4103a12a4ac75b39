"""Capture HTTP exchanges as evidence, through httpx event hooks and a size-capping transport.

``EvidenceClient`` is the HTTP client checks use: every request and response it carries is
recorded (secrets redacted), bodies beyond an excerpt are stored as files named by their SHA-256,
and a response larger than the cap is cut off with ``ResponseTooLarge`` instead of filling memory.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from eqlab.evidence import redaction
from eqlab.results import Exchange, Message

FHIR_JSON = "application/fhir+json"
EXCERPT_CHARS = 4096
FILE_THRESHOLD = 64 * 1024
DEFAULT_MAX_RESPONSE = 20 * 1024 * 1024
_STARTED = "eqlab_started"


class ResponseTooLarge(httpx.TransportError):
    """The system under test sent more than the lab accepts for one response."""


class ResponseTooSlow(httpx.ReadTimeout):
    """The system under test was still sending one response when its deadline passed (a trickle)."""


class EvidenceStore:
    """Large bodies, as files named by their hash under ``<run>/evidence/``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.folder = run_dir / "evidence"

    def put(self, data: bytes) -> tuple[str, str]:
        digest = hashlib.sha256(data).hexdigest()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{digest}.bin"
        if not path.exists():
            tmp = path.with_suffix(f".{time.monotonic_ns()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return str(path.relative_to(self.run_dir)), digest


class EvidenceRecorder:
    """The exchanges and notes of one check."""

    def __init__(self, store: EvidenceStore | None = None) -> None:
        self.store = store
        self.exchanges: list[Exchange] = []
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        """Add a remark to the evidence (shown with the check in the detailed report)."""
        self.notes.append(redaction.text(text))

    def on_request(self, request: httpx.Request) -> None:
        request.extensions[_STARTED] = (time.perf_counter(), datetime.now(UTC).isoformat(timespec="milliseconds"))

    def on_response(self, response: httpx.Response) -> None:
        response.read()  # bounded by the capping transport
        request = response.request
        began, started = request.extensions.get(_STARTED, (time.perf_counter(), ""))
        self._add(request, started, (time.perf_counter() - began) * 1000, response=response)

    def on_failure(self, request: httpx.Request, exc: Exception) -> None:
        began, started = request.extensions.get(_STARTED, (time.perf_counter(), ""))
        self._add(request, started, (time.perf_counter() - began) * 1000, error=f"{type(exc).__name__}: {exc}")

    def _add(
        self,
        request: httpx.Request,
        started: str,
        elapsed: float,
        response: httpx.Response | None = None,
        error: str | None = None,
    ) -> None:
        exchange = Exchange(
            id=f"x{len(self.exchanges) + 1}",
            method=request.method,
            url=redaction.url(str(request.url)),
            request=self._message(request.headers, _request_body(request)),
            status=response.status_code if response is not None else None,
            response=self._message(response.headers, response.content) if response is not None else None,
            started=started,
            elapsed_ms=round(elapsed, 3),
            error=error,
        )
        self.exchanges.append(exchange)

    def _message(self, headers: httpx.Headers, raw: bytes) -> Message:
        content_type = headers.get("content-type")
        clean = redaction.body(raw, content_type) if raw else b""
        excerpt = redaction.printable(clean[:EXCERPT_CHARS].decode("utf-8", errors="replace")) if clean else None
        message = Message(
            headers=redaction.headers(headers),
            body_excerpt=excerpt,
            body_size=len(raw),
            truncated=len(clean) > EXCERPT_CHARS,
        )
        if len(clean) > FILE_THRESHOLD and self.store is not None:
            message.body_file, message.body_sha256 = self.store.put(clean)
        elif clean:
            message.body_sha256 = hashlib.sha256(clean).hexdigest()
        return message


def _request_body(request: httpx.Request) -> bytes:
    try:
        return request.content
    except httpx.RequestNotRead:
        return b""  # a streamed upload: its size is in the headers


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, limit: int, deadline: float, seconds: float) -> None:
        self.inner = inner
        self.limit = limit
        self.deadline = deadline  # time.monotonic() by which the whole response must have arrived
        self.seconds = seconds

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self.inner:
            received += len(chunk)
            if received > self.limit:
                self.inner.close()
                raise ResponseTooLarge(f"the response exceeded {self.limit} bytes; the lab stopped reading it")
            if time.monotonic() > self.deadline:
                self.inner.close()
                raise ResponseTooSlow(
                    f"the response was still arriving after {self.seconds:g} s ({received} bytes so far); "
                    "the lab stopped reading it"
                )
            yield chunk

    def close(self) -> None:
        self.inner.close()


class CappingTransport(httpx.BaseTransport):
    """Bounds each response: at most ``limit`` bytes, all of them within ``seconds`` of the request
    (a per-read timeout alone lets a server trickle a byte at a time for ever)."""

    def __init__(self, inner: httpx.BaseTransport, limit: int, seconds: float, owns_inner: bool = True) -> None:
        self.inner = inner
        self.limit = limit
        self.seconds = seconds
        self.owns_inner = owns_inner  # a shared connection pool outlives each client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.seconds
        response = self.inner.handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _CappedStream(response.stream, self.limit, deadline, self.seconds)
        return response

    def close(self) -> None:
        if self.owns_inner:
            self.inner.close()


def _json_bytes(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # integers beyond 64 bits are valid JSON: checks may send them on purpose
        return json.dumps(body, separators=(",", ":")).encode()


class EvidenceClient(httpx.Client):
    """An httpx client for checks: FHIR JSON by default, every exchange recorded, responses capped."""

    def __init__(
        self,
        base_url: str,
        recorder: EvidenceRecorder,
        timeout: float = 30.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
        shared_transport: bool = False,
    ) -> None:
        self.recorder = recorder
        super().__init__(
            base_url=base_url.rstrip("/") + "/",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=CappingTransport(
                transport or httpx.HTTPTransport(), max_response_bytes, timeout, owns_inner=not shared_transport
            ),
            event_hooks={"request": [recorder.on_request], "response": [recorder.on_response]},
            headers={"Accept": FHIR_JSON, **(headers or {})},
            follow_redirects=False,
        )

    def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx.Request:
        body = kwargs.pop("json", None)
        if body is not None:
            kwargs["content"] = _json_bytes(body)
            kwargs["headers"] = {"Content-Type": FHIR_JSON, **dict(kwargs.get("headers") or {})}
        return super().build_request(method, url, **kwargs)

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            return super().send(request, **kwargs)
        except httpx.TransportError as exc:  # no usable response: record what was attempted
            self.recorder.on_failure(request, exc)
            raise
