"""The HTTP/1.1 client of the lab's load scenarios: one keep-alive connection per simulated user, on
gevent sockets, responses parsed by ``httptools`` (llhttp, the parser uvicorn uses).

Written here rather than taken from a library because speed measured it: locust's ``FastHttpUser``
(geventhttpclient) cost ~110 µs of CPU per request on a hello endpoint, 0.14 of ``wrk`` per core,
so the lab's generator saturated before the systems it loads; with this client a request costs
about a quarter of that, locust's own bookkeeping included (``benchmarks/load_generator.py``).

The lab's rules hold for every request (scenarios cannot turn them off):

* no redirect is followed: a 3xx is a failed request naming where it pointed, so the lab never
  re-sends a request, its body or its token to another host; a scenario can only address its target
  (a relative path, or an absolute URL on the target's own scheme, host and port);
* the response is read within ``RESPONSE_SECONDS`` and up to ``load_answers.MAX_RESPONSE_BYTES``: a
  response that trickles or never ends is cut off (its connection closed) and fails, and memory stays
  bounded;
* the response time covers the whole body, not only the headers;
* one request at a time per connection, and nothing may arrive between answers: an answer sent ahead
  of its request (it would be timed as instant; looked for on plain connections, where the socket
  shows it) or a second answer to one request fails the request and ends the connection;
* HTTPS is verified as the contract checks verify it (httpx's defaults: ``SSL_CERT_FILE`` or
  ``SSL_CERT_DIR`` when set, else certifi's bundle).

Each request is reported to locust's ``request`` event, as locust's own clients report theirs: a
status of 400 or more, a redirect, a broken connection or a cut-off response is a failure.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import certifi
import gevent
import gevent.monkey
import httptools
import orjson
from gevent import get_hub, socket
from gevent import ssl as gevent_ssl

from eqlab.runner.load_answers import (
    Exchange,
    LoadResponse,
    RequestFailed,
    Unanswered,
    failure,
    status_phrase,
    until_close,
)

RESPONSE_SECONDS = 30.0
CONNECT_SECONDS = 10.0
CHUNK = 64 * 1024
USER_AGENT = "eqlab-load"
REMEMBERED = 4096  # request targets and header sets a client keeps rendered
_POLL = gevent.monkey.get_original("select", "poll")  # the operating system's: gevent's would wait
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def ssl_context() -> gevent_ssl.SSLContext:
    """The trust the contract checks have (httpx's defaults), for gevent sockets."""
    if os.environ.get("SSL_CERT_FILE"):
        return gevent_ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return gevent_ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return gevent_ssl.create_default_context(cafile=certifi.where())


class LabHttpClient:
    """The ``client`` of a ``LabHttpUser``: ``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``
    and ``request``, each with ``name`` (the statistics' label), ``headers``, ``params``, ``json`` or
    ``data``. Returns a ``LoadResponse`` whatever happened (``error`` says why it failed)."""

    def __init__(
        self,
        base_url: str,
        request_event: Any,
        user: Any = None,
        response_seconds: float = RESPONSE_SECONDS,
        connect_seconds: float = CONNECT_SECONDS,
    ) -> None:
        self.base = urlsplit(base_url if base_url.endswith("/") else base_url + "/")
        if self.base.scheme not in ("http", "https") or not self.base.hostname:
            raise ValueError(f"a load target is an http(s) URL, not {base_url!r}")
        self.base_url = self.base.geturl()
        self.request_event = request_event
        self.user = user
        self.response_seconds = response_seconds
        self.connect_seconds = connect_seconds
        self._origin = f"{self.base.scheme}://{self.base.netloc}"
        self._address = (self.base.hostname, self.base.port or (443 if self.base.scheme == "https" else 80))
        self._fixed_headers = f"Host: {self.base.netloc.rpartition('@')[2]}\r\nUser-Agent: {USER_AGENT}\r\n"
        self._tls = ssl_context() if self.base.scheme == "https" else None
        self._sock: Any = None
        self._hub = get_hub()  # the event loop of the user's thread (a load process has one)
        self._readable: Any = None  # a libev watcher of the plain socket's readability
        self._idle: Any = None  # a poll of the plain socket between answers (_check_idle)
        self._timer = gevent.Timeout(response_seconds)  # started anew for each request
        self._targets: dict[str, tuple[str, str]] = {}  # what a URL resolves to, per URL
        self._header_blocks: dict[tuple[tuple[str, str], ...], tuple[str, frozenset[str]]] = {}

    def get(self, url: str, **kwargs: Any) -> LoadResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> LoadResponse:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> LoadResponse:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> LoadResponse:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> LoadResponse:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> LoadResponse:
        return self.request("HEAD", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        catch_response: bool = False,
    ) -> LoadResponse:
        if catch_response:
            raise ValueError("the lab's load scenarios do not judge responses themselves (catch_response)")
        started_at = time.time()
        started = time.perf_counter()
        target, full_url = self._target(url, params)
        payload, content_type = _payload(json, data)
        message = self._message(method, target, headers, payload, content_type)
        try:
            response = self._exchange(method, message, full_url)
            if 300 <= response.status_code < 400:
                where = str(response.headers.get("location", "nowhere"))[:200]
                response.error = RequestFailed(
                    f"redirected ({response.status_code}) to {where}: the lab follows no redirect"
                )
            elif response.status_code >= 400:
                response.error = RequestFailed(f"{response.status_code} {status_phrase(response.status_code)}")
        except RequestFailed as failed:
            response = LoadResponse(full_url, 0, [], b"")
            response.error = failed
        self.request_event.fire(
            request_type=method,
            name=name or url,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(response.content),
            exception=response.error,
            context=self.user.context() if self.user is not None else {},
            response=response,
            url=full_url,
            start_time=started_at,
        )
        return response

    def _target(self, url: str, params: Mapping[str, Any] | None) -> tuple[str, str]:
        """The request target (path and query) and the full URL, for a path relative to the base or an
        absolute URL on the base's own origin."""
        if not params:
            known = self._targets.get(url)
            if known is None:
                known = self._targets[url] = self._resolve(url, None)
                if len(self._targets) > REMEMBERED:
                    self._targets.clear()
            return known
        return self._resolve(url, params)

    def _resolve(self, url: str, params: Mapping[str, Any] | None) -> tuple[str, str]:
        if "://" in url:
            given = urlsplit(url)
            if (given.scheme, given.netloc) != (self.base.scheme, self.base.netloc):
                raise ValueError(f"a load scenario addresses only its target {self.base_url}, not {url}")
            path = given.path or "/"
            query = given.query
        else:
            path, _, query = (self.base.path + url.lstrip("/")).partition("?")
        if params:
            query = f"{query}&{urlencode(params, doseq=True)}" if query else urlencode(params, doseq=True)
        target = f"{path}?{query}" if query else path
        if not target.isascii():  # as browsers and requests send it: UTF-8, percent-encoded
            target = quote(target, safe="!#$%&'()*+,/:;=?@[]~")
        if " " in target or "\r" in target or "\n" in target:
            raise ValueError(f"a request target has no spaces or line breaks: {target!r}")
        return target, f"{self._origin}{target}"

    def _message(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | None,
        payload: bytes | None,
        content_type: str | None,
    ) -> bytes:
        key = tuple(headers.items()) if headers else ()
        known = self._header_blocks.get(key)
        if known is None:
            known = self._header_blocks[key] = _header_block(key)
            if len(self._header_blocks) > REMEMBERED:
                self._header_blocks.clear()
        block, given = known
        if content_type and "content-type" not in given:
            block += f"Content-Type: {content_type}\r\n"
        if payload is not None:
            block += f"Content-Length: {len(payload)}\r\n"
        head = f"{method} {target} HTTP/1.1\r\n{self._fixed_headers}{block}\r\n".encode("latin-1")
        return head + payload if payload else head

    def _exchange(self, method: str, message: bytes, url: str) -> LoadResponse:
        if self._idle is not None:
            self._check_idle()
        reused = self._sock is not None
        try:
            return self._send(method, message, url)
        except Unanswered:
            if not (reused and method in IDEMPOTENT):
                raise
        return self._send(method, message, url)  # once more, on a new connection

    def _check_idle(self) -> None:
        """A kept-alive plain connection has nothing to read between answers. Its end (the server closed
        it) means a new connection; bytes mean an answer sent before its request, which the next
        request would take for its own and time as instant: the lab refuses the connection instead."""
        if not self._idle.poll(0):  # the usual case: one system call, no exception
            return
        sock = self._sock
        sock.settimeout(0.0)
        try:
            waiting = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            waiting = b""
        finally:
            sock.settimeout(None)
        self.close()
        if waiting:
            raise RequestFailed("an answer came before its request")

    def _send(self, method: str, message: bytes, url: str) -> LoadResponse:
        exchange = Exchange(head_only=method == "HEAD")
        parser = exchange.parser
        assert parser is not None  # a new exchange
        received = False
        timer = self._timer
        timer.start()
        try:
            sock = self._sock or self._connect()
            sent = sock.send(message)  # one call sends a request this small; sendall costs more per call
            if sent < len(message):
                sock.sendall(message[sent:])
            while not exchange.complete:
                if self._readable is not None:
                    self._hub.wait(self._readable)
                data = sock.recv(CHUNK)
                if not data:
                    if not received:
                        raise Unanswered("the connection closed before an answer")
                    if exchange.headers_done and until_close(exchange.headers):
                        break  # a body delimited by the connection's end
                    raise RequestFailed("the connection closed in the middle of the answer")
                received = True
                parser.feed_data(data)
        except gevent.Timeout as fired:
            if fired is not timer:
                raise
            self.close()
            raise RequestFailed(
                f"the response was still arriving after {self.response_seconds:.0f} s; the lab stopped reading it"
            ) from None
        except (OSError, httptools.HttpParserError, RequestFailed) as problem:
            self.close()
            raise failure(problem, received) from None
        finally:
            timer.cancel()
            exchange.parser = None  # no reference cycle left for the garbage collector
        if not exchange.keep_alive:
            self.close()
        return LoadResponse(url, exchange.status, exchange.headers, b"".join(exchange.chunks))

    def _connect(self) -> Any:
        sock = socket.create_connection(self._address, timeout=self.connect_seconds)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)  # the request's own timer bounds every wait from here
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self.base.hostname)
        else:
            # Waiting for the socket to be readable before reading it spares the read that would find
            # nothing yet (a system call and an exception per request: 7% of the client's CPU). Not
            # for TLS, whose socket may hold decrypted bytes the file descriptor does not show.
            self._readable = self._hub.loop.io(sock.fileno(), 1)
            self._idle = _POLL()
            self._idle.register(sock.fileno(), select.POLLIN)
        self._sock = sock
        return sock

    def close(self) -> None:
        if self._readable is not None:
            self._readable.close()
            self._readable = self._idle = None
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


def _payload(json: Any, data: bytes | str | Mapping[str, Any] | None) -> tuple[bytes | None, str | None]:
    if data is not None:
        if isinstance(data, Mapping):
            return urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"
        return (data.encode() if isinstance(data, str) else data), None
    if json is not None:
        return orjson.dumps(json), "application/json"
    return None, None


def _header_block(headers: tuple[tuple[str, str], ...]) -> tuple[str, frozenset[str]]:
    """A scenario's headers as lines of the request, with the names it gave (lower case)."""
    given = frozenset(k.lower() for k, _ in headers)
    lines = [] if "accept-encoding" in given else ["Accept-Encoding: identity\r\n"]  # measure the body as sent
    for key, value in headers:
        if "\r" in key or "\n" in key or "\r" in value or "\n" in value or ":" in key:
            raise ValueError(f"a header name or value has a line break or colon: {key!r}")
        if key.lower() not in ("host", "content-length", "transfer-encoding", "connection"):
            lines.append(f"{key}: {value}\r\n")
    return "".join(lines), given
