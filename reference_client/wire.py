"""The client's HTTP: one ``httpx.Client`` that gives each request its own ``X-Request-Id`` and,
with ``--trace``, writes one JSON line per request sent, secrets redacted."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

BODY_EXCERPT_CHARS = 16000  # an ITI-65 Bundle of a small document, whole
REDACTED = "[REDACTED]"
# Form and query fields that are credentials. The random ones keep a short digest, enough to see
# that a value was sent twice (a reused verifier or refresh token) and useless to replay. A client
# assertion keeps its header and claims (what a reader debugs) and loses its signature.
RANDOM_SECRETS = {"code", "code_verifier", "refresh_token", "access_token", "csrf"}
CHOSEN_SECRETS = {"password", "client_secret"}  # perhaps guessable from a digest: nothing kept
ASSERTION_FIELD = "client_assertion"
TIMEOUT_S = 30


def _redact_pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    def redact(key: str, value: str) -> str:
        if key in CHOSEN_SECRETS:
            return REDACTED
        if key in RANDOM_SECRETS:
            return f"[REDACTED sha256:{hashlib.sha256(value.encode()).hexdigest()[:12]}]"
        if key == ASSERTION_FIELD:
            return value.rsplit(".", 1)[0] + "." + REDACTED
        return value

    return [(key, redact(key, value)) for key, value in pairs]


def redacted_url(url: str) -> str:
    parts = urlsplit(url)
    query = urlencode(_redact_pairs(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit(parts._replace(query=query))


def redacted_body(request: httpx.Request) -> str:
    body = request.content.decode("utf-8", errors="replace")
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = urlencode(_redact_pairs(parse_qsl(body, keep_blank_values=True)))
    return body[:BODY_EXCERPT_CHARS]


def trace_line(request: httpx.Request) -> dict[str, Any]:
    headers = dict(request.headers)
    if "authorization" in headers:
        headers["authorization"] = "Bearer [REDACTED]"
    if "cookie" in headers:
        headers["cookie"] = REDACTED
    return {
        "time": time.time(),
        "method": request.method,
        "url": redacted_url(str(request.url)),
        "headers": headers,
        "body": redacted_body(request),
    }


class Wire:
    """The client's connection to the platform (cookies kept, like a browser's for the login pages)."""

    def __init__(self, trace: Path | None = None) -> None:
        self._trace: IO[str] | None = trace.open("a", encoding="utf-8") if trace else None
        self.http = httpx.Client(timeout=TIMEOUT_S, event_hooks={"request": [self._stamp]})

    def _stamp(self, request: httpx.Request) -> None:
        request.headers["X-Request-Id"] = str(uuid.uuid4())
        if self._trace:
            self._trace.write(json.dumps(trace_line(request)) + "\n")
            self._trace.flush()

    def close(self) -> None:
        self.http.close()
        if self._trace:
            self._trace.close()
