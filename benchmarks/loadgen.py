"""A small closed-loop HTTP/1.1 load generator for loopback benchmarks.

Each of ``connections`` keeps one keep-alive connection and sends the next request as soon as
the previous answer arrived. It is deliberately minimal (no TLS, Content-Length bodies only) so
the client costs little next to the server; the same client measures every figure, which is
what makes ratios between them fair. Only loopback targets are accepted.

A request unanswered after ``request_timeout`` seconds (its connection is aborted) or whose
connection breaks counts as a failure (no status), and its connection is opened again: a hung or
crashed server ends the run on time with its failures counted, never a wait forever or a traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")
Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int
    latencies_ms: list[float] = field(repr=False)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0  # requests with no answer: timed out, or their connection broke

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def unsuccessful(self) -> int:
        """Requests not answered 2xx: a benchmark of refusals, errors or silence measures nothing."""
        return self.failures + sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def line(self, label: str) -> str:
        latency = f"p50 {self.median_ms:6.2f} ms   p99 {self.percentile(0.99):7.2f} ms"
        return f"  {label:<46} {self.per_second:>9,.0f}/s   {latency}   not 2xx {self.unsuccessful}"


IDLE = float("inf")


@dataclass
class InFlight:
    """One connection's request in flight: since when (IDLE when none), and the connection."""

    writer: asyncio.StreamWriter
    since: float = IDLE


def cycling_gets(paths: list[str], headers: dict[str, str] | None = None) -> Iterator[Request]:
    """GETs of ``paths`` in a fixed pseudo-random order (the same in every run)."""
    rng = random.Random(1)
    while True:
        yield ("GET", rng.choice(paths), b"", {"Accept": "application/fhir+json", **(headers or {})})


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _reconnect(host: str, port: int, seconds: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A new connection, tried again for up to ``seconds`` (a server restarting); then a clear error."""
    deadline = time.perf_counter() + seconds
    while True:
        try:
            return await asyncio.open_connection(host, port)
        except OSError as exc:
            if time.perf_counter() > deadline:
                raise ConnectionError(f"{host}:{port} stopped accepting connections ({exc})") from None
            await asyncio.sleep(0.05)


def _encode(host: str, request: Request) -> bytes:
    method, path, body, headers = request
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run(
    base_url: str,
    requests: Callable[[], Iterator[Request]],
    connections: int = 16,
    seconds: float | None = 5.0,
    total: int | None = None,
    warmup: float = 0.5,
    request_timeout: float = 60.0,
) -> Result:
    """Drive the server for ``seconds`` (or until ``total`` requests); returns throughput and latency."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "", parts.port or 80
    if host not in LOOPBACK:
        raise ValueError(f"load is only ever sent to loopback addresses, not {host}")
    netloc = f"{host}:{port}"
    source = requests()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = failures = 0
    counter = itertools.count()
    measuring = False
    stop_at = float("inf")

    in_flight: list[InFlight] = []

    async def worker() -> None:
        nonlocal errors, failures
        reader, writer = await asyncio.open_connection(host, port)
        mine = InFlight(writer)
        in_flight.append(mine)
        try:
            while time.perf_counter() < stop_at:
                if total is not None and next(counter) >= total:
                    return
                request = next(source)
                started = mine.since = time.perf_counter()
                try:
                    writer.write(_encode(netloc, request))
                    status, _ = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError):  # broken, or aborted by the watchdog
                    failures += measuring
                    errors += measuring
                    writer.close()
                    reader, writer = await _reconnect(host, port, request_timeout)
                    mine.writer = writer
                    continue
                finally:
                    mine.since = IDLE
                if measuring:
                    latencies.append((time.perf_counter() - started) * 1000)
                    statuses[status] = statuses.get(status, 0) + 1
                    errors += status >= 500
        finally:
            in_flight.remove(mine)
            writer.close()

    async def watchdog() -> None:
        """Aborts the connection of a request unanswered after ``request_timeout``. A timer per request
        (``asyncio.timeout``) lowered this client's requests/s against a trivial server from 8,000-8,600
        to 6,000-6,400 in one comparison of two runs each (later runs were noisier); this costs nothing per request."""
        while True:
            await asyncio.sleep(min(1.0, request_timeout / 4))
            now = time.perf_counter()
            for request in in_flight:
                if now - request.since > request_timeout:
                    request.writer.transport.abort()

    async def workers() -> None:
        watching = asyncio.ensure_future(watchdog())
        try:
            await asyncio.gather(*(worker() for _ in range(connections)))
        finally:
            watching.cancel()

    if warmup and total is None:
        stop_at = time.perf_counter() + warmup
        await workers()
    measuring = True
    began = time.perf_counter()
    stop_at = began + seconds if seconds is not None and total is None else float("inf")
    await workers()
    elapsed = time.perf_counter() - began
    return Result(len(latencies), elapsed, errors, latencies, statuses, failures)
