"""Reads are answered only once their AuditEvent is durable: a server killed (SIGKILL) under a read
load has, after restart, the AuditEvent of every read it answered 200."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import drop_schema, new_schema_url
from tests.support.servers import ServerProcess, sqlite_url

READERS = 8
PATIENTS = [f"Patient/pat-{n:04d}" for n in range(1, 41)]


def _read_until_killed(server: ServerProcess) -> tuple[set[str], int]:
    """Readers read patients with request ids of their own until the server is killed under them:
    the ids answered 200, and how many reads got no answer (cut off by the kill)."""
    answered: set[str] = set()
    cut_off = 0
    headers = server.auth()
    stop = threading.Event()
    lock = threading.Lock()

    def reader(offset: int) -> None:
        nonlocal cut_off
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
            for n in itertools.count(offset):
                if stop.is_set():
                    return
                request_id = f"durable-{uuid.uuid4()}"
                try:
                    response = client.get(PATIENTS[n % len(PATIENTS)], headers={"X-Request-Id": request_id})
                except httpx.TransportError:
                    with lock:
                        cut_off += 1
                    return
                if response.status_code == 200:
                    with lock:
                        answered.add(request_id)

    threads = [threading.Thread(target=reader, args=(i * 5,)) for i in range(READERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(answered) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join()
    return answered, cut_off


def _audited_request_ids(server: ServerProcess) -> set[str]:
    found: set[str] = set()
    with httpx.Client(headers=server.auth(), timeout=60) as client:
        url: str | None = f"{server.base}/AuditEvent?subtype=read&_count=1000"
        while url:
            bundle = client.get(url).raise_for_status().json()
            for entry in bundle.get("entry", []):
                for entity in entry["resource"].get("entity", []):
                    description = entity.get("description", "")
                    if description.startswith("X-Request-Id "):
                        found.add(description.removeprefix("X-Request-Id "))
            url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
    return found


def _kill_under_reads_then_check(db_url: str) -> None:
    server = ServerProcess(db_url, extra=("--seed", "demo"))
    server.start()
    try:
        answered, cut_off = _read_until_killed(server)
    finally:
        server.stop()
    assert len(answered) >= 200, server.output()
    assert cut_off > 0, "the kill came while reads were in flight"
    restarted = ServerProcess(db_url)
    restarted.start()
    try:
        missing = answered - _audited_request_ids(restarted)
    finally:
        restarted.stop()
    assert not missing, f"{len(missing)} of {len(answered)} reads answered 200 have no AuditEvent"


@pytest.mark.slow
def test_every_read_answered_before_a_sigkill_is_audited_sqlite(tmp_path: Path) -> None:
    _kill_under_reads_then_check(sqlite_url(tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
def test_every_read_answered_before_a_sigkill_is_audited_postgresql(postgres_unavailable: str | None) -> None:
    if postgres_unavailable:
        pytest.skip(postgres_unavailable)
    db_url, schema = new_schema_url()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(drop_schema, schema)
        _kill_under_reads_then_check(db_url)
