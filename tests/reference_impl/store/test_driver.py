"""Rows appended on the driver come back as they were written, whichever way they went: a pipeline of
inserts for a few rows, a binary COPY (PostgreSQL) for more, each column in its type's binary form."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection, select

from reference_impl.store.database import Database
from reference_impl.store.driver import TableAppend
from reference_impl.store.schema import history, idx_quantity

HISTORY_COLUMNS = ("res_type", "res_id", "version_id", "last_updated", "method", "content", "sealed")
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


@pytest.mark.parametrize("count", [3, TableAppend.COPY_FROM_ROWS, 40], ids=["pipeline", "copy-smallest", "copy"])
@pytest.mark.parametrize("from_async", [False, True], ids=["sync", "async"])
def test_appended_rows_come_back_as_written(platform_db: Database, count: int, from_async: bool) -> None:
    versions, quantities = _history_rows(count), _quantity_rows(count)

    def work(conn: Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        TableAppend(history, HISTORY_COLUMNS).write(conn, versions)
        TableAppend(idx_quantity, QUANTITY_COLUMNS).write(conn, quantities)
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
