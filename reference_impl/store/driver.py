"""Statements run on the database driver's own cursor, inside a unit's transaction: the few every request
runs (``DriverStatement``) and rows appended many at once (``TableAppend``, ``COPY`` on PostgreSQL).
SQLAlchemy's execution costs more than these statements themselves; everything else goes through it,
a resource's writes sent to PostgreSQL as one pipeline (``pipelined``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Boolean, Connection, Float, Integer, LargeBinary, String, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import await_only


class DriverStatement:
    """A fixed statement run on the database driver's own cursor, inside the unit's transaction.

    SQLAlchemy spends ~20 µs on each execution of even a cached statement; the driver alone takes
    ~2 µs (measured on SQLite). For the few statements every request runs (the token's revocation,
    the resource read, a professional's consents and care relationships) and a resource's writes that
    is worth these lines; everything else goes through SQLAlchemy. ``sql`` uses ``?`` placeholders.

    ``first``, ``rows`` and ``write`` prepare the statement once per connection (sqlite3's statement cache;
    on PostgreSQL, ``run_prepared``), and on PostgreSQL nothing else is prepared but the searches led by a
    criterion that picks few (``bounded_searches.planned_once``; ``Database``: psycopg's automatic preparation
    is never reached), so a search whose best plan depends on its values is planned for them at every run, while
    these, each a lookup on a key or on an index whatever the values, get PostgreSQL's generic plan after
    five runs instead of being planned again each time (a professional's consents or care relationships:
    213 µs of planning for 34 µs of execution).
    """

    def __init__(self, sql: str) -> None:
        self._sql = {"sqlite": sql, "postgresql": sql.replace("?", "%s")}

    def text(self, conn: Connection) -> str:
        """The statement as ``conn``'s driver takes it."""
        return self._sql[conn.dialect.name]

    def first(self, conn: Connection, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        rows = self._run(conn, params, first_only=True)
        return rows[0] if rows else None

    def rows(self, conn: Connection, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        return self._run(conn, params, first_only=False)

    def write(self, conn: Connection, params: tuple[object, ...]) -> None:
        """Run a statement that reads no rows back (an UPDATE, a DELETE), prepared on PostgreSQL as ``first``
        and ``rows`` are: in a pipeline (``pipelined``) its answer is not waited for."""
        self._run(conn, params, first_only=False, read=False)

    def run_many(self, conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
        """Run the statement once per row (the drivers send them together: psycopg as one pipeline)."""
        with _cursor(conn) as cursor:
            cursor.executemany(self.text(conn), rows)

    def _run(
        self, conn: Connection, params: tuple[object, ...], first_only: bool, read: bool = True
    ) -> list[tuple[Any, ...]]:
        sql = self.text(conn)
        if conn.dialect.name != "postgresql":
            with _cursor(conn) as cursor:
                cursor.execute(sql, params)
                return _fetched(cursor.fetchone() if first_only else cursor.fetchall(), first_only) if read else []
        return run_prepared(conn, sql, params, first_only, read)


Parameters = Sequence[object] | Mapping[str, object]


def run_prepared(
    conn: Connection, sql: str, params: Parameters, first_only: bool = False, read: bool = True
) -> list[tuple[Any, ...]]:
    """``sql`` (in psycopg's placeholders) run as a prepared statement of ``conn``'s PostgreSQL connection:
    parsed once per connection, and after five runs planned once (PostgreSQL's generic plan) when that
    plan costs no more than those planned for their values. Only for statements whose best plan is the
    same for any values: a generic plan knows no value's frequency. Not ``read``: its rows are not fetched
    (a write, whose answer a pipeline does not wait for)."""
    driver: Any = conn.connection.driver_connection
    if isinstance(driver, psycopg.AsyncConnection):  # a unit run from async code (Database.run_async)
        found: list[tuple[Any, ...]] = await_only(_run_prepared(driver, sql, params, first_only, read))
        return found
    with driver.cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        return _fetched(cursor.fetchone() if first_only else cursor.fetchall(), first_only) if read else []


def _fetched(found: Any, first_only: bool) -> list[tuple[Any, ...]]:
    if first_only:
        return [tuple(found)] if found is not None else []
    return [tuple(row) for row in found]


async def _run_prepared(
    connection: psycopg.AsyncConnection[Any], sql: str, params: Parameters, first_only: bool, read: bool
) -> list[tuple[Any, ...]]:
    async with connection.cursor() as cursor:
        await cursor.execute(sql, params, prepare=True)
        if not read:
            return []
        return _fetched(await cursor.fetchone() if first_only else await cursor.fetchall(), first_only)


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, the block's statements sent one after the other without waiting for each one's answer
    (psycopg's pipeline mode), their answers read once at its end: a resource's write is 7-20 statements
    (its row, its history row, its search index rows, dropped first for a new version), and waiting for
    each one's round trip was most of a transaction's time (``benchmarks/fhir_core.py``, a 1,000-entry
    transaction: creates 335-347 -> 490-536 per second, updates 121-139 -> 208-237). Only for statements
    whose results are not read: SQLAlchemy reads no rows in a pipeline. An error comes at the end of the
    block, as SQLAlchemy's (a write conflict is retried, ``Database``)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    driver: Any = conn.connection.driver_connection
    try:
        if isinstance(driver, psycopg.AsyncConnection):  # a unit run from async code (Database.run_async)
            pipeline = driver.pipeline()
            await_only(pipeline.__aenter__())
            try:
                yield
            except BaseException as exc:
                await_only(pipeline.__aexit__(type(exc), exc, exc.__traceback__))
                raise
            await_only(pipeline.__aexit__(None, None, None))
        else:
            with driver.pipeline():
                yield
    except psycopg.Error as exc:  # reported by the pipeline's end, not by SQLAlchemy's execution
        raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc


@contextmanager
def _cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the unit's own driver connection, closed after use."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    finally:
        cursor.close()


class TableAppend:
    """Rows appended to one table in the unit's transaction, on the driver: by ``executemany`` (psycopg
    sends the statements as one pipeline), or on PostgreSQL by ``COPY`` from a few rows on. A pipeline
    costs ~30 µs of CPU per row; a COPY costs a round trip more than a pipeline, then ~2 µs per row
    (an AuditEvent is eleven rows: 344 -> 216 µs of CPU each in groups of ten, measured).

    The COPY is binary, each column in its type's binary form: the text form escapes every value and
    doubles the bytes of a sealed document in hex, on both sides. Loading the national dataset's rows
    cost 15.7 µs of client CPU and 22 µs of PostgreSQL's per resource in text, 9.3 and 12.6 in binary.
    """

    COPY_FROM_ROWS = 8

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        names = ", ".join(columns)
        self._insert = DriverStatement(f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})")
        self._copy = f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)"
        self._types = [_binary_type(table.c[name].type) for name in columns]

    def copies(self, conn: Connection, rows: Sequence[tuple[object, ...]]) -> bool:
        """Whether ``write`` sends ``rows`` by COPY (which a pipeline cannot hold) rather than by inserts."""
        return conn.dialect.name == "postgresql" and len(rows) >= self.COPY_FROM_ROWS

    def write(self, conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
        if not rows:
            return
        if not self.copies(conn, rows):
            self._insert.run_many(conn, rows)
            return
        driver: Any = conn.connection.driver_connection
        if isinstance(driver, psycopg.AsyncConnection):  # a unit run from async code (Database.run_async)
            await_only(_copy_rows(driver, self._copy, self._types, rows))
            return
        with driver.cursor() as cursor, cursor.copy(self._copy) as copy:
            copy.set_types(self._types)
            for row in rows:
                copy.write_row(row)


Appends = Sequence[tuple[TableAppend, Sequence[tuple[object, ...]]]]


def append_all(conn: Connection, appends: Appends) -> None:
    """Rows appended to several tables: those inserted row by row sent together as one pipeline, then
    those copied. On PostgreSQL the inserts wait for their answers once, not once per table: an AuditEvent
    is rows in five tables, and an audit group of a few makes no COPY. Audited reads on PostgreSQL, 16
    clients: 908-1,040 -> 1,072-1,086/s; 4 clients (smaller groups) 544-604 -> 721-745/s; single POSTs
    352-390 -> 386-421/s (alternated twice)."""
    with appending(conn, appends):
        pass


@contextmanager
def appending(conn: Connection, appends: Appends) -> Iterator[None]:
    """The block's statements, then ``appends`` (``append_all``), in one pipeline: the block's results
    are not read (``pipelined``)."""
    with pipelined(conn):
        yield
        for append, rows in appends:
            if not append.copies(conn, rows):
                append.write(conn, rows)
    for append, rows in appends:
        if append.copies(conn, rows):
            append.write(conn, rows)


def _binary_type(column_type: TypeEngine[Any]) -> str:
    """The PostgreSQL type whose binary form a column of ``column_type`` takes in a COPY."""
    for sql_type, name in _BINARY_TYPES:
        if isinstance(column_type, sql_type):
            return name
    raise TypeError(f"no binary COPY form known for {column_type!r}")


# In order: a BigInteger is an Integer too; text, varchar and "C"-collated text share one binary form.
_BINARY_TYPES: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (BigInteger, "int8"),
    (Integer, "int4"),
    (Boolean, "bool"),
    (Float, "float8"),
    (LargeBinary, "bytea"),
    (String, "text"),
)


async def _copy_rows(
    connection: psycopg.AsyncConnection[Any], sql: str, types: list[str], rows: Sequence[tuple[object, ...]]
) -> None:
    async with connection.cursor() as cursor, cursor.copy(sql) as copy:
        copy.set_types(types)
        for row in rows:
            await copy.write_row(row)
