"""The benchmarks' load generator ends on time against a server that hangs or breaks connections,
counting those requests as failures, and refuses anything but loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from benchmarks.loadgen import Request, Result, run

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
TIMEOUT_S = 0.3


def _paths(*paths: str) -> Callable[[], Iterator[Request]]:
    def requests() -> Iterator[Request]:
        while True:
            yield from (("GET", path, b"", {}) for path in paths)

    return requests


async def _against(behaviour: Callable[[str], bytes | None], drive: Callable[[str], Awaitable[Result]]) -> Result:
    """``drive`` against a loopback server answering each request path as ``behaviour`` says: bytes to
    send, or None to close the connection without an answer; the path /hang is never answered."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                if path == "/hang":
                    await asyncio.sleep(3600)
                answer = behaviour(path)
                if answer is None:
                    break
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await drive(f"http://127.0.0.1:{port}")
    finally:
        server.close()


def test_a_hung_request_times_out_counts_as_a_failure_and_the_run_ends_on_time() -> None:
    def drive(base: str) -> Awaitable[Result]:
        return run(base, _paths("/a", "/hang"), connections=2, seconds=1.0, warmup=0, request_timeout=TIMEOUT_S)

    started = time.monotonic()
    result = asyncio.run(_against(lambda _path: OK, drive))
    assert time.monotonic() - started < 1.0 + 2 * TIMEOUT_S + 1
    assert result.failures >= 2  # each connection's first /hang, at least
    assert result.statuses.get(200, 0) >= 2
    assert result.unsuccessful == result.failures
    assert result.requests == sum(result.statuses.values())


def test_a_connection_closed_without_an_answer_is_a_failure_and_the_next_request_reconnects() -> None:
    def behaviour(path: str) -> bytes | None:
        return None if path == "/drop" else OK

    def drive(base: str) -> Awaitable[Result]:
        return run(base, _paths("/a", "/drop"), connections=1, seconds=None, total=10, request_timeout=TIMEOUT_S)

    result = asyncio.run(_against(behaviour, drive))
    assert result.failures == 5
    assert result.statuses == {200: 5}


def test_a_server_that_stopped_listening_is_a_clear_error_not_a_wait() -> None:
    with pytest.raises(ConnectionError, match="stopped accepting connections"):
        asyncio.run(_stopping_server())


async def _stopping_server() -> Result:
    """A server that closes the first connection without answering and stops listening meanwhile."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        server.close()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return await run(f"http://127.0.0.1:{port}", _paths("/a"), 1, None, 3, request_timeout=TIMEOUT_S)


def test_load_goes_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(run("http://192.0.2.1:80", _paths("/"), seconds=0.1))
