"""A server killed (SIGKILL) in the middle of a transaction leaves all or nothing of it."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.reference_impl.rest.helpers import JSON_HEADERS
from tests.support.postgres import drop_schema, new_schema_url, query
from tests.support.servers import ServerProcess, sqlite_url

ENTRIES = 1000  # the largest transaction the server accepts (Settings.max_transaction_entries): ~2 s of writing


def _transaction() -> dict[str, object]:
    entries = [
        {
            "resource": {"resourceType": "Patient", "name": [{"family": "Crash", "given": [f"N{i}"]}]},
            "request": {"method": "POST", "url": "Patient"},
        }
        for i in range(ENTRIES)
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _sqlite_writer_active(path: Path) -> bool:
    conn = sqlite3.connect(path, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
        return False
    except sqlite3.OperationalError:
        return True  # another connection holds the write lock: a write transaction is open
    finally:
        conn.close()


def _postgres_writer_active(schema: str) -> bool:
    locks = query(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON l.relation = c.oid "
        "JOIN pg_namespace n ON c.relnamespace = n.oid "
        "WHERE n.nspname = %s AND c.relname = 'resources' AND l.mode = 'RowExclusiveLock'",
        schema,
    )
    return bool(locks)


def _kill_mid_transaction(server: ServerProcess, writer_active: callable[[], bool]) -> bool:
    """Send the big transaction, SIGKILL the server while it writes; True if the client got no answer."""
    answered: list[int] = []

    def send() -> None:
        with contextlib.suppress(httpx.TransportError):
            headers = {**JSON_HEADERS, **server.auth()}
            answered.append(httpx.post(server.base, json=_transaction(), headers=headers, timeout=120).status_code)

    thread = threading.Thread(target=send)
    thread.start()
    deadline = time.monotonic() + 60
    while not writer_active():
        assert time.monotonic() < deadline, "the transaction never started writing"
        assert not answered, "the transaction finished before it could be interrupted"
        time.sleep(0.005)
    time.sleep(0.2)  # well inside: thousands of entries still to go
    server.kill()
    thread.join()
    return not answered


def _assert_all_or_nothing(db_url: str) -> None:
    restarted = ServerProcess(db_url)
    restarted.start()
    try:
        auth = restarted.auth()
        total = httpx.get(
            f"{restarted.base}/Patient", params={"family": "Crash", "_summary": "count"}, headers=auth
        ).json()["total"]
        history = httpx.get(f"{restarted.base}/Patient/_history", params={"_count": 0}, headers=auth).json()["total"]
        assert total in (0, ENTRIES)
        assert history == total  # history and index agree with the resources
        assert total == 0, "the client got no answer, so the commit cannot have happened"
        created = httpx.post(
            f"{restarted.base}/Patient", json={"resourceType": "Patient"}, headers={**JSON_HEADERS, **auth}
        )
        assert created.status_code == 201  # the store is usable after recovery
    finally:
        restarted.stop()


@pytest.mark.slow
def test_sigkill_mid_transaction_sqlite(tmp_path: Path) -> None:
    db_url = sqlite_url(tmp_path)
    server = ServerProcess(db_url)
    server.start()
    try:
        assert _kill_mid_transaction(server, lambda: _sqlite_writer_active(tmp_path / "store.sqlite3"))
    finally:
        server.stop()
    _assert_all_or_nothing(db_url)


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_mid_transaction_postgresql(postgres_unavailable: str | None) -> None:
    if postgres_unavailable:
        pytest.skip(postgres_unavailable)
    db_url, schema = new_schema_url()
    server = ServerProcess(db_url)
    try:
        server.start()
        assert _kill_mid_transaction(server, lambda: _postgres_writer_active(schema))
        server.stop()
        _assert_all_or_nothing(db_url)
    finally:
        server.stop()
        drop_schema(schema)
