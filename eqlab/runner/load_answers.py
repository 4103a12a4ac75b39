"""What the lab's load client makes of an answer: the response a scenario gets, the parser's callbacks
for one answer (bounded in size, one answer per request), and the failures in words that are the
same each time they happen (locust groups failures by them). The client is ``load_http``.
"""

from __future__ import annotations

from functools import cached_property
from http import HTTPStatus
from typing import Any

import httptools
import httpx
import orjson
from gevent import ssl as gevent_ssl

MAX_RESPONSE_BYTES = 20 * 1024 * 1024


class RequestFailed(Exception):
    """Why the lab counts a request as failed: one sentence, the same for every request it happened to
    (locust groups failures by it)."""


class Unanswered(RequestFailed):
    """The connection ended before the first byte of an answer: a kept-alive connection the server had
    closed meanwhile, on which an idempotent request is sent once more on a new connection."""


class LoadResponse:
    """What a scenario gets back: the status, the headers and the whole (bounded) body."""

    def __init__(self, url: str, status_code: int, raw_headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        self.url = url
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.content = content
        self.error: RequestFailed | None = None

    @cached_property
    def headers(self) -> httpx.Headers:
        """Case-insensitive, as httpx's (a repeated header's values joined with ", ")."""
        return httpx.Headers(self.raw_headers)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.content)


class Exchange:
    """httptools' callbacks for one response. A new parser for each request: after an answer to HEAD
    (no body, whatever its Content-Length says) the next answer is read by a parser that expects none."""

    __slots__ = (
        "chunks",
        "complete",
        "head_only",
        "headers",
        "headers_done",
        "informational",
        "keep_alive",
        "parser",
        "size",
        "status",
    )

    def __init__(self, head_only: bool) -> None:
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.headers_done = False
        self.informational = False
        self.complete = False
        self.head_only = head_only
        self.keep_alive = False
        self.status = 0

    def on_message_begin(self) -> None:
        if self.complete:  # a connection out of step would give the next request this answer
            raise RequestFailed("a second answer came to one request")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None  # parsing
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200 and self.status != 101:  # 103 Early Hints and the like: the answer follows
            self.informational = True
            return
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the message is complete
        if self.head_only:
            self.complete = True

    def on_body(self, body: bytes) -> None:
        if self.head_only:
            return
        self.size += len(body)
        if self.size > MAX_RESPONSE_BYTES:
            raise RequestFailed(f"the response exceeded {MAX_RESPONSE_BYTES} bytes; the lab stopped reading it")
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            self.headers = []
        else:
            self.complete = True


def until_close(headers: list[tuple[bytes, bytes]]) -> bool:
    """A response without Content-Length or chunked encoding: its body ends with the connection."""
    names = {name.lower() for name, _ in headers}
    return b"content-length" not in names and b"transfer-encoding" not in names


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(no standard reason)"


def failure(problem: Exception, received: bool) -> RequestFailed:
    """What went wrong, in words that are the same each time it happens (locust groups failures by
    them); a connection that ended before any answer is ``Unanswered``."""
    if isinstance(problem, httptools.HttpParserCallbackError) and isinstance(problem.__context__, RequestFailed):
        return problem.__context__  # raised by a callback: the body was too large
    if isinstance(problem, RequestFailed):
        return problem
    if isinstance(problem, httptools.HttpParserError):
        return RequestFailed(f"the answer is not HTTP/1.1: {problem}")
    if isinstance(problem, TimeoutError):
        return RequestFailed("the connection timed out")
    if isinstance(problem, gevent_ssl.SSLError):
        return RequestFailed(f"TLS failed: {problem.reason or problem}")
    assert isinstance(problem, OSError)
    reason = f"the connection failed: {problem.strerror or type(problem).__name__}"
    return RequestFailed(reason) if received else Unanswered(reason)
