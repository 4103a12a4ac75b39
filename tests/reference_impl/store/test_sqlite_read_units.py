"""SQLite read units run from async code (``Database.run_async``) share one connection per event loop,
between units outside any transaction: each unit sees what was committed before it, a unit that fails
or breaks its connection spoils no other, and the connections close with the store."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from sqlalchemy import Connection, event
from sqlalchemy.pool import QueuePool

from reference_impl.store.database import Database

READS = 50


@pytest.fixture
def db(sqlite_db_url: str) -> Iterator[Database]:
    database = Database(sqlite_db_url, statement_seconds=30)
    database.run(lambda conn: conn.exec_driver_sql("CREATE TABLE marks (mark TEXT)"), write=True)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def checkouts(db: Database) -> list[int]:
    """The id of every DBAPI connection the readers' pool lends."""
    lent: list[int] = []

    @event.listens_for(db._reader, "checkout")
    def _lent(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        lent.append(id(dbapi_connection))

    return lent


def _mark(db: Database, mark: str) -> None:
    db.run(lambda conn: conn.exec_driver_sql("INSERT INTO marks VALUES (?)", (mark,)), write=True)


def _marks(conn: Connection) -> list[str]:
    return [row[0] for row in conn.exec_driver_sql("SELECT mark FROM marks ORDER BY mark")]


def _reads(db: Database, count: int, between: Callable[[int], None] = lambda _n: None) -> list[list[str]]:
    async def reads() -> list[list[str]]:
        seen = []
        for n in range(count):
            seen.append(await db.run_async(_marks, write=False))
            between(n)
        return seen

    return asyncio.run(reads())


def test_a_loops_read_units_share_one_connection_and_each_sees_what_was_committed_before_it(
    db: Database, checkouts: list[int]
) -> None:
    seen = _reads(db, READS, lambda n: _mark(db, f"{n:03d}"))
    assert seen == [[f"{m:03d}" for m in range(n)] for n in range(READS)]
    assert len(checkouts) == 1, f"{len(checkouts)} connections lent for {READS} reads"


def test_a_failing_unit_leaves_the_shared_connection_to_the_next(db: Database, checkouts: list[int]) -> None:
    _mark(db, "kept")

    def failing(conn: Connection) -> None:
        _marks(conn)
        raise ValueError("the unit's own error")

    async def reads() -> list[str]:
        with pytest.raises(ValueError, match="the unit's own error"):
            await db.run_async(failing, write=False)
        return await db.run_async(_marks, write=False)

    assert asyncio.run(reads()) == ["kept"]
    assert len(checkouts) == 1


def test_a_unit_that_breaks_the_connection_gets_the_next_unit_another(db: Database, checkouts: list[int]) -> None:
    _mark(db, "kept")

    def breaking(conn: Connection) -> None:
        conn.invalidate()  # as a lost connection leaves it

    async def reads() -> list[str]:
        with pytest.raises(sqlite3.ProgrammingError):  # the broken unit fails as on a connection of its own
            await db.run_async(breaking, write=False)
        return await db.run_async(_marks, write=False)

    assert asyncio.run(reads()) == ["kept"]
    assert len(checkouts) == 2


def test_each_loop_has_its_own_and_every_one_closes_with_the_store(db: Database, checkouts: list[int]) -> None:
    _mark(db, "kept")
    both_reading = threading.Barrier(2)  # each loop holds its connection when the other takes one
    seen: list[list[list[str]]] = []

    def loop_thread() -> None:
        seen.append(_reads(db, READS, lambda n: both_reading.wait(timeout=30) if n == 0 else None))

    threads = [threading.Thread(target=loop_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [[["kept"]] * READS] * 2
    assert len(set(checkouts)) == 2, "a connection per loop"
    readers = cast(QueuePool, db._reader.pool)
    assert readers.checkedout() == 2  # kept between units
    db.dispose()
    assert readers.checkedout() == 0
