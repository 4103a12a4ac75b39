"""Rows appended on the driver come back as they were written, whichever way they went: a pipeline of
inserts for a few rows, a binary COPY (PostgreSQL) for more, each column in its type's binary form, or
both, in several tables at once.
Statements sent as one pipeline (``pipelined``) all land, and a conflict among them is reported and
retried as any other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import pytest
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from reference_impl.store.database import Database
from reference_impl.store.driver import TableAppend, append_all, pipelined
from reference_impl.store.schema import history, idx_quantity

HISTORY_COLUMNS = ("res_type", "res_id", "version_id", "last_updated", "method", "content", "sealed")
T = TypeVar("T")

QUANTITY_COLUMNS = ("res_type", "res_id", "param", "value", "system", "code", "unit")


def _history_rows(count: int) -> list[tuple[object, ...]]:
    # Every column type of a version: text, integers (one beyond 32 bits), bytes with every byte value,
    # NULLs; and text a text COPY would have to escape.
    return [
        (
            "Binary",
            f"b{n}",
            n + 1,
            1_796_424_185_507_000 + n,
            "PUT" if n % 2 else "POST",
            None if n % 3 == 0 else f'{{"tab":"\t","newline":"\n","backslash":"\\\\","n":{n}}}',
            bytes(range(256)) if n % 3 == 0 else None,
        )
        for n in range(count)
    ]


def _quantity_rows(count: int) -> list[tuple[object, ...]]:
    # A float column given integers too (an index row's number is a float, a Python int is accepted).
    return [
        ("Observation", f"o{n}", "value-quantity", n / 3 if n % 2 else n, "http://unitsofmeasure.org", "kg", None)
        for n in range(count)
    ]


COPY_FROM = TableAppend.COPY_FROM_ROWS


@pytest.mark.parametrize(
    ("count", "quantity_count"),
    [(3, 2), (3, 40), (COPY_FROM, COPY_FROM), (40, 40)],
    ids=["pipeline", "pipeline-then-copy", "copy-smallest", "copy"],
)
@pytest.mark.parametrize("from_async", [False, True], ids=["sync", "async"])
def test_appended_rows_come_back_as_written(
    platform_db: Database, count: int, quantity_count: int, from_async: bool
) -> None:
    versions, quantities = _history_rows(count), _quantity_rows(quantity_count)

    def work(conn: Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        appends = [
            (TableAppend(history, HISTORY_COLUMNS), versions),
            (TableAppend(idx_quantity, QUANTITY_COLUMNS), quantities),
        ]
        append_all(conn, appends)
        read_versions = conn.execute(
            select(*(history.c[name] for name in HISTORY_COLUMNS)).order_by(history.c.version_id)
        ).all()
        read_quantities = conn.execute(
            select(*(idx_quantity.c[name] for name in QUANTITY_COLUMNS)).order_by(idx_quantity.c.res_id)
        ).all()
        return [tuple(row) for row in read_versions], [tuple(row) for row in read_quantities]

    if from_async:
        read_versions, read_quantities = asyncio.run(platform_db.run_async(work, write=True))
    else:
        read_versions, read_quantities = platform_db.run(work, write=True)
    assert read_versions == versions
    assert read_quantities == sorted(quantities, key=lambda row: str(row[1]))
    assert all(isinstance(row[3], float) for row in read_quantities)


def _run(db: Database, work: Callable[[Connection], T], from_async: bool) -> T:
    return asyncio.run(db.run_async(work, write=True)) if from_async else db.run(work, write=True)


@pytest.mark.parametrize("from_async", [False, True], ids=["sync", "async"])
def test_pipelined_writes_all_land_and_are_read_after_the_block(platform_db: Database, from_async: bool) -> None:
    versions = _history_rows(12)

    def work(conn: Connection) -> list[tuple[object, ...]]:
        with pipelined(conn):
            for row in versions[:6]:  # one statement each
                conn.execute(insert(history).values(dict(zip(HISTORY_COLUMNS, row, strict=True))))
            conn.execute(insert(history), [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in versions[6:]])
        read = conn.execute(select(*(history.c[name] for name in HISTORY_COLUMNS)).order_by(history.c.version_id))
        return [tuple(row) for row in read]

    assert _run(platform_db, work, from_async) == versions


def _insert_pipelined(conn: Connection, version: tuple[object, ...]) -> None:
    with pipelined(conn):
        conn.execute(insert(history), [dict(zip(HISTORY_COLUMNS, version, strict=True))])


@pytest.mark.postgres
@pytest.mark.parametrize("from_async", [False, True], ids=["sync", "async"])
def test_a_conflict_in_a_pipeline_is_sqlalchemys_error_and_its_unit_is_run_again(
    postgres_platform_db: Database, from_async: bool
) -> None:
    """PostgreSQL reports a pipeline's errors at its end, from the driver: a unique key taken meanwhile
    (two PUTs creating one resource) must still be the IntegrityError the store retries (sqlstate 23505)."""
    first, second = _history_rows(2)
    _run(postgres_platform_db, lambda conn: _insert_pipelined(conn, first), from_async)
    attempts: list[tuple[object, ...]] = []

    def write_once_taken(conn: Connection) -> None:
        attempts.append(first if not attempts else second)  # the key taken on the first attempt, a free one after
        _insert_pipelined(conn, attempts[-1])

    _run(postgres_platform_db, write_once_taken, from_async)
    assert attempts == [first, second], "the conflict was retried"
    with pytest.raises(IntegrityError) as raised:  # a key taken at every attempt: the last one's error
        _run(postgres_platform_db, lambda conn: _insert_pipelined(conn, second), from_async)
    assert getattr(raised.value.orig, "sqlstate", None) == "23505"
