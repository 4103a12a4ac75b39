"""PostgreSQL units run from async code (``Database.run_async``): on the event loop's own thread, yet
overlapping while they wait; atomic and retried as ``Database.run``'s; not cut short by a cancelled
caller; and closed with the store whatever loop opened their connections."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection

from reference_impl.store.database import Database
from tests.support.postgres import query

pytestmark = pytest.mark.postgres

OVERLAPPING_UNITS = 16
SLEEP_S = 0.1


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)

    def create_table(conn: Connection) -> None:
        conn.exec_driver_sql(f'CREATE SCHEMA "{database.schema}"')
        conn.exec_driver_sql("CREATE TABLE marks (mark text)")

    database.run(create_table, write=True)
    try:
        yield database
    finally:
        database.dispose()


def _sleeping_thread(conn: Connection) -> int:
    conn.exec_driver_sql(f"SELECT pg_sleep({SLEEP_S})")
    return threading.get_ident()


def _timed_sleep(conn: Connection) -> tuple[int, float, float]:
    """The unit's thread, and when its wait began and ended by the server's clock."""
    began = conn.exec_driver_sql("SELECT extract(epoch FROM clock_timestamp())").scalar_one()
    conn.exec_driver_sql(f"SELECT pg_sleep({SLEEP_S})")
    ended = conn.exec_driver_sql("SELECT extract(epoch FROM clock_timestamp())").scalar_one()
    return threading.get_ident(), float(began), float(ended)


def _most_at_once(waits: list[tuple[float, float]]) -> int:
    """How many of ``waits`` (began, ended) were under way at once, at most (an end before a start at a tie)."""
    edges = sorted([(began, 1) for began, _ in waits] + [(ended, -1) for _, ended in waits])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_units_run_on_the_loops_thread_and_overlap_while_they_wait(db: Database) -> None:
    """Overlap is read off the server's clock, not the test's: on a busy machine the loop may be slow to
    start units, but units run one after the other would never be waiting at the same time."""

    async def units() -> list[tuple[int, float, float]]:
        return await asyncio.gather(*(db.run_async(_timed_sleep, write=False) for _ in range(OVERLAPPING_UNITS)))

    timed = asyncio.run(units())
    assert {thread for thread, _, _ in timed} == {threading.get_ident()}, "no worker thread"
    assert all(ended - began >= SLEEP_S for _, began, ended in timed)
    assert _most_at_once([(began, ended) for _, began, ended in timed]) >= 2, "the units waited one after the other"


def test_a_long_unit_runs_in_a_worker_thread(db: Database) -> None:
    thread = asyncio.run(db.run_async(_sleeping_thread, write=True, long=True))
    assert thread != threading.get_ident()


def _marks(db: Database) -> list[str]:
    return [row[0] for row in db.run(lambda conn: conn.exec_driver_sql("SELECT mark FROM marks").all(), write=False)]


def test_a_unit_that_fails_leaves_nothing_and_a_write_conflict_is_run_again(db: Database) -> None:
    attempts: list[int] = []

    def deadlocked_once(conn: Connection) -> None:
        conn.exec_driver_sql(f"INSERT INTO marks VALUES ('attempt {len(attempts)}')")
        attempts.append(1)
        if len(attempts) == 1:  # what PostgreSQL reports to the victim of a deadlock
            conn.exec_driver_sql("DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$")

    def fails(conn: Connection) -> None:
        conn.exec_driver_sql("INSERT INTO marks VALUES ('never')")
        raise ValueError("the unit's own error")

    asyncio.run(db.run_async(deadlocked_once, write=True))
    with pytest.raises(ValueError, match="own error"):
        asyncio.run(db.run_async(fails, write=True))
    assert len(attempts) == 2
    assert _marks(db) == ["attempt 1"]


def test_a_unit_runs_to_its_end_when_its_caller_is_cancelled(db: Database) -> None:
    def slow_write(conn: Connection) -> None:
        conn.exec_driver_sql(f"SELECT pg_sleep({SLEEP_S})")
        conn.exec_driver_sql("INSERT INTO marks VALUES ('written')")

    async def cancelled_caller() -> None:
        caller = asyncio.create_task(db.run_async(slow_write, write=True))
        await asyncio.sleep(SLEEP_S / 4)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await asyncio.sleep(SLEEP_S * 2)  # the loop goes on serving, as a server's does

    asyncio.run(cancelled_caller())
    assert _marks(db) == ["written"]


def test_the_connections_of_every_loop_close_with_the_store(postgres_url: str) -> None:
    db = Database(postgres_url)

    def backend(conn: Connection) -> int:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    try:
        pids = [asyncio.run(db.run_async(backend, write=write)) for write in (False, True, False)]  # three loops
    finally:
        db.dispose()
    assert len(set(pids)) == 3, "a loop's connections are its own"
    assert query("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", pids) == 0
