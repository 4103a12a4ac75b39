"""The base class of every load scenario: locust's ``FastHttpUser`` under the lab's rules.

A load suite sends thousands of requests; a hostile system under test must not be able to turn
them against the lab or anyone else. So, for every request a scenario makes:

* no redirect is followed (a 3xx counts as a failed request, naming where it pointed): the lab
  never re-sends a request, its body or its token to another host;
* the response is read within ``RESPONSE_SECONDS`` and up to ``MAX_RESPONSE_BYTES``, as the
  contract checks read theirs: a response that trickles or never ends is cut off and counts as a
  failed request, and the lab's memory stays bounded;
* the response time covers the whole body, not only the headers.

``eqlab.runner.load_worker`` runs only scenarios that derive from ``LabHttpUser``.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import FastHttpUser
from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager

MAX_RESPONSE_BYTES = 20 * 1024 * 1024
RESPONSE_SECONDS = 30.0
CHUNK = 64 * 1024


class LabSession(FastHttpSession):
    def request(  # type: ignore[override]
        self, method: str, url: str, name: str | None = None, catch_response: bool = False, **kwargs: Any
    ) -> ResponseContextManager:
        if catch_response:
            raise ValueError("the lab's load scenarios do not judge responses themselves (catch_response)")
        kwargs.pop("stream", None)
        kwargs["allow_redirects"] = False
        kwargs["headers"] = {"Accept-Encoding": "identity", **(kwargs.get("headers") or {})}
        started = time.perf_counter()
        answer: ResponseContextManager = super().request(
            method, url, name=name, catch_response=True, stream=True, **kwargs
        )
        with answer as response:
            body, problem = _read_bounded(response)
            response.request_meta["response_time"] = (time.perf_counter() - started) * 1000
            response.request_meta["response_length"] = len(body)
            response._cached_content = body
            if problem is None and 300 <= response.status_code < 400:
                where = str(response.headers.get("location", "nowhere"))[:200]
                problem = f"redirected ({response.status_code}) to {where}: the lab follows no redirect"
            if problem is not None:
                response.failure(problem)
        return answer


def _read_bounded(response: ResponseContextManager) -> tuple[bytes, str | None]:
    """The body, or what arrived of it and why the lab stopped reading."""
    chunks: list[bytes] = []
    size = 0
    problem = None
    with gevent.Timeout(RESPONSE_SECONDS, False):  # interrupts a read blocked on a trickle
        while True:
            chunk = response.read(CHUNK)
            if not chunk:
                return b"".join(chunks), None
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                problem = f"the response exceeded {MAX_RESPONSE_BYTES} bytes; the lab stopped reading it"
                break
            chunks.append(chunk)
    problem = problem or f"the response was still arriving after {RESPONSE_SECONDS:.0f} s; the lab stopped reading it"
    _abandon(response)
    return b"".join(chunks), problem


def _abandon(response: ResponseContextManager) -> None:
    """Close the connection of a response left half read (returned to the pool, the next request on it
    would read the rest). geventhttpclient has no public call for this: its pool's release_socket."""
    inner = response._response
    sock, pool = getattr(inner, "_sock", None), getattr(inner, "_pool", None)
    if inner is not None and sock is not None and pool is not None:
        pool.release_socket(sock)
        inner._sock = inner._pool = None


class LabHttpUser(FastHttpUser):
    """Derive load scenarios from this class instead of ``FastHttpUser``."""

    abstract = True
    max_redirects = 0
    network_timeout = RESPONSE_SECONDS
    connection_timeout = 10.0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.client = LabSession(
            base_url=self.host,
            request_event=environment.events.request,
            user=self,
            max_redirects=0,
            network_timeout=self.network_timeout,
            connection_timeout=self.connection_timeout,
            max_retries=self.max_retries,
            insecure=self.insecure,
            concurrency=self.concurrency,
            client_pool=self.client_pool,
            ssl_context_factory=self.ssl_context_factory,
            headers=self.default_headers,
        )
