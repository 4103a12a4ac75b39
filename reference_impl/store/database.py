"""Connections and transactions for SQLite (embedded default) and PostgreSQL.

Every request runs as one unit of work: a plain function given one connection inside one database
transaction (a transaction Bundle too), so a crash leaves all or nothing of it.

Where a unit of work runs is chosen per backend, from measurements (``benchmarks/fhir_core.py``):
SQLite statements take microseconds and SQLite has a single writer, so a hand-off to a worker
thread costs several times the work itself: SQLite units run on the event loop's thread, and its read
units, which run there one after the other, share one connection (``_loop_reader``).
PostgreSQL units wait on the network. From async code they run on the event loop's thread too, as
greenlets over psycopg's asyncio connections (SQLAlchemy's asyncio bridge): each wait yields to
the loop, so units overlap without a thread hand-off (one-query units, 16 at once: 170-190 µs of
CPU each against 365-380 µs in worker threads, ``benchmarks/pg_units.py``). A long unit (a large
transaction Bundle) still runs in a worker thread, so that its Python work between statements
does not hold up the loop. Sync callers (commands, tests) run units on ordinary connections.

Writers never race:

* SQLite: one writer connection that opens ``BEGIN IMMEDIATE``; readers use their own pool
  (WAL mode lets them read while the writer writes).
* PostgreSQL: read committed with explicit locks: a write locks the row it changes
  (``SELECT ... FOR UPDATE``) before checking its version, and conditional writes take a
  transaction-scoped advisory lock per resource type (see ``resources.lock_type``). A deadlock
  or a unique-key race (two creates of one new id) is retried from the start.

Documents are sealed at rest with the Database's ``documents`` sealing (``documents.py``), which
every transaction's connection carries; a Database built without one refuses documents.

A URL may name a PostgreSQL schema with ``?schema=NAME`` (created when missing), which lets
several servers or test runs share one database.

A server's Database has a time limit (``statement_seconds``): on PostgreSQL each statement is
cancelled past it (``statement_timeout``), on SQLite a unit's statements are interrupted once the
unit has run that long (a progress handler); either way the unit fails with a 503 OperationOutcome
instead of holding a core, a connection or (SQLite) the event loop. On PostgreSQL every session also
checks each second that its client is still there while a statement runs
(``client_connection_check_interval``): a stopped server's searches end with it, where before they ran
on (8 searches of a million people's access log still ran 24 minutes after their server had stopped).
Migrations run without the limit (``lift_time_limit``), as do commands, which open a Database without one.
A PostgreSQL unit also waits for a free connection of its pool no longer than the limit, then fails
with a 503 (``throttled``, ``Retry-After``): an overloaded server says so instead of a 500.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

import anyio.to_thread
import psycopg
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.util import await_only, greenlet_spawn

from reference_impl.fhir.errors import FhirError, error
from reference_impl.store.documents import DOCUMENTS_INFO_KEY, DocumentSealing
from reference_impl.store.sqlite_engines import sqlite_engines
from reference_impl.store.wal_checkpoint import WalCheckpointer

log = logging.getLogger(__name__)
T = TypeVar("T")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "23505"})
MAX_ATTEMPTS = 8
# PostgreSQL units overlap while they wait on the network: a few connections per core keep the cores busy.
# No overflow beyond them: a pool that lends extra connections under load closes them as soon as it
# has enough idle ones, and opens them again at the next peak (601 sessions started in 10 s of 16
# clients, each a PostgreSQL process; 12 without overflow, measured). A unit beyond waits its turn.
POSTGRESQL_POOL_SIZE = 4 * (os.cpu_count() or 1)
# SQLite's planner needs statistics to drive a search from the index of the matching rows rather
# than walk every resource in sort order; refresh them after this many changed rows.
SQLITE_ROWS_BETWEEN_OPTIMIZE = 5000
# What a unit refused for want of a free PostgreSQL connection tells its client (HTTP Retry-After).
RETRY_AFTER_BUSY_S = 1
# How often a PostgreSQL session running a statement checks that its client is still connected.
CLIENT_CHECK_INTERVAL_MS = 1000
# SQLite calls the progress handler (which checks the unit's deadline) every this many VM instructions.
SQLITE_INSTRUCTIONS_BETWEEN_CHECKS = 10_000


def normalize_url(url: str) -> str:
    """Accept plain ``sqlite:///``/``postgresql://`` URLs and pick the drivers eqlab uses."""
    if url.startswith("sqlite+"):
        return "sqlite:" + url.split(":", 1)[1]
    if url.startswith(("postgresql:", "postgres:", "postgresql+")):
        return "postgresql+psycopg:" + url.split(":", 1)[1]
    return url


# psycopg's count of runs after which it prepares a statement: never reached.
NEVER_BY_COUNT = 2**62


class Database:
    def __init__(
        self, url: str, documents: DocumentSealing | None = None, statement_seconds: float | None = None
    ) -> None:
        """``statement_seconds``: the time limit of a statement (PostgreSQL) or of a unit's statements
        (SQLite), None for none (commands: a bulk load builds indexes for many minutes)."""
        if statement_seconds is not None and statement_seconds <= 0:
            raise ValueError(f"statement_seconds must be positive, not {statement_seconds}")
        self.documents = documents
        self.statement_seconds = statement_seconds
        parsed = make_url(normalize_url(url))
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://HOST/DB")
        self.schema: str | None = None
        # PostgreSQL's units from async code: per event loop, the (writer, reader) engines on psycopg's
        # async connections (an asyncio connection belongs to the loop that opened it).
        self._loop_engines: dict[asyncio.AbstractEventLoop, tuple[Engine, Engine]] = {}
        self._checkpointer: WalCheckpointer | None = None
        if self.dialect == "sqlite":
            self._writer, self._reader = sqlite_engines(parsed.database or "")
            self._changes_at_last_optimize = 0
            self._loop_readers: dict[asyncio.AbstractEventLoop, Connection] = {}
            self._writer_turn = threading.Lock()  # SQLite has one writer: async writers queue here
            if parsed.database not in (None, "", ":memory:"):
                self._checkpointer = WalCheckpointer(self._reader)
        else:
            query = dict(parsed.query)
            schema = query.pop("schema", None)
            if schema is not None and (not isinstance(schema, str) or not _SCHEMA_NAME.match(schema)):
                raise ValueError(f"invalid schema name in the database URL: {schema!r}")
            self.schema = schema
            # Requests are short: starting parallel workers costs 30-200 ms per statement under load, far
            # more than the index plans' own work (benchmarks/query_plans.py --serial).
            options = "-c max_parallel_workers_per_gather=0"
            options += f" -c client_connection_check_interval={CLIENT_CHECK_INTERVAL_MS}"
            if statement_seconds is not None:
                options += f" -c statement_timeout={max(1, round(statement_seconds * 1000))}"
            if schema:
                options += f" -c search_path={schema}"
            # Nothing is prepared but the driver statements (``driver.DriverStatement``) and the searches of
            # a few rows (``bounded_searches.planned_once``): lookups whose plan is the same for any values,
            # prepared when run. psycopg prepares any statement from its fifth run otherwise, and
            # PostgreSQL then may plan it once for any parameters: a search for one patient's documents
            # got the plan for every document (0.05 s became 3.7 s at 20,000 patients). An unprepared
            # statement is planned for its own values at every run. (A threshold of None would refuse
            # the chosen statements' preparation too.)
            connect_args = {"options": options, "prepare_threshold": NEVER_BY_COUNT}
            # No pre-ping (a round trip per checkout, ~6% of a read): a connection found dead is retried instead.
            # Reads without BEGIN and COMMIT: at READ COMMITTED (PostgreSQL's default, kept here) each
            # statement takes its own snapshot inside a transaction too, so a unit that only reads gains
            # nothing from one but two round trips. A pool of their own, so that no checkout switches a
            # connection's mode (a one-query read unit: 276 -> 146 µs of CPU, 426 -> 189 µs, measured).
            engine_args: dict[str, Any] = {
                "url": parsed.set(query=query),
                "pool_size": POSTGRESQL_POOL_SIZE,
                "max_overflow": 0,
                # A unit waits for a free connection no longer than it may run (SQLAlchemy's default: 30 s).
                "pool_timeout": statement_seconds if statement_seconds is not None else 30,
                "connect_args": connect_args,
            }
            self._writer, self._reader = (create_engine(**engine_args, **isolation) for isolation in _WRITER_READER)
            self._engine_args = engine_args

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Connection]:
        with self._transaction_on(self._writer if write else self._reader) as conn:
            yield conn

    @contextmanager
    def _transaction_on(self, engine: Engine, kept: Connection | None = None) -> Iterator[Connection]:
        """A transaction on a connection of ``engine``'s pool, or on ``kept`` (left open after it)."""
        with nullcontext(kept) if kept is not None else engine.connect() as conn, conn.begin():
            conn.info[DOCUMENTS_INFO_KEY] = self.documents
            if self.statement_seconds is None or self.dialect != "sqlite":
                yield conn
                return
            driver: sqlite3.Connection = conn.connection.dbapi_connection  # type: ignore[assignment]
            deadline = time.monotonic() + self.statement_seconds
            driver.set_progress_handler(lambda: time.monotonic() > deadline, SQLITE_INSTRUCTIONS_BETWEEN_CHECKS)
            try:
                yield conn
            finally:  # the connection goes back to the pool without this unit's deadline
                driver.set_progress_handler(None, 0)

    def lift_time_limit(self, conn: Connection) -> None:
        """Let the rest of ``conn``'s unit (a writer's: a migration) run as long as it takes."""
        if self.dialect == "sqlite":
            conn.connection.dbapi_connection.set_progress_handler(None, 0)  # type: ignore[union-attr]
        else:
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")

    def run(self, work: Callable[[Connection], T], write: bool) -> T:
        """Run ``work`` in one transaction, retrying it when PostgreSQL reports a write conflict."""
        return self._run_on(self._writer if write else self._reader, work, write, time.sleep)

    def _run_on(
        self,
        engine: Engine,
        work: Callable[[Connection], T],
        write: bool,
        pause: Callable[[float], Any],
        kept: Connection | None = None,
    ) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._transaction_on(engine, kept) as conn:
                    result = work(conn)
                    if write and self.dialect == "sqlite":
                        self._optimize_when_grown(conn)
                        if self._checkpointer is not None:
                            self._checkpointer.start()
                    return result
            except PoolTimeout:
                raise self._busy_error() from None
            except (DBAPIError, sqlite3.OperationalError, psycopg.errors.QueryCanceled) as exc:
                if self.statement_seconds is not None and _past_time_limit(exc):
                    raise self._time_limit_error(self.statement_seconds) from exc
                if not isinstance(exc, DBAPIError):
                    raise
                retryable = exc.connection_invalidated or _sqlstate(exc) in RETRYABLE_SQLSTATES
                if attempt == MAX_ATTEMPTS or not retryable:
                    raise
                log.debug(
                    "retrying after a write conflict or a lost connection (%s), attempt %d", _sqlstate(exc), attempt
                )
                pause(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _time_limit_error(limit: float) -> FhirError:
        log.warning("a unit of work ran past the time limit of %g s (EQLAB_MAX_STATEMENT_SECONDS)", limit)
        return error(
            503,
            f"the request's database work ran past the platform's limit of {limit:g} s and was "
            "cancelled: narrow the search, or retry when the platform is less busy",
            "timeout",
        )

    def _busy_error(self) -> FhirError:
        log.warning("no database connection came free for a unit: every one of the pool's was in use")
        busy = error(503, "the platform is busy: no database connection came free in time; retry", "throttled")
        busy.headers["Retry-After"] = str(RETRY_AFTER_BUSY_S)
        return busy

    def _optimize_when_grown(self, conn: Connection) -> None:
        changes = conn.connection.dbapi_connection.total_changes  # type: ignore[union-attr]
        if (
            changes - self._changes_at_last_optimize >= SQLITE_ROWS_BETWEEN_OPTIMIZE
            or changes < self._changes_at_last_optimize
        ):
            conn.exec_driver_sql("ANALYZE")
            self._changes_at_last_optimize = changes

    async def run_async(self, work: Callable[[Connection], T], write: bool, long: bool = False) -> T:
        """``run`` from async code: inline for SQLite, on the loop between waits for PostgreSQL.

        A SQLite writer waits for its turn without holding up the event loop, and a ``long`` unit
        (a large transaction Bundle) runs in a worker thread: while it writes, requests that need no
        writer go on, and those that do queue for the next turn instead of freezing the server.
        """
        if self.dialect != "sqlite":
            if long:
                return await anyio.to_thread.run_sync(self.run, work, write)
            engine = self._engines_of_this_loop()[0 if write else 1]
            # As in a worker thread, a unit started runs to its end (and commits) if its caller is cancelled.
            unit = asyncio.ensure_future(greenlet_spawn(self._run_on, engine, work, write, _pause_on_the_loop))
            unit.add_done_callback(_ended)
            return await asyncio.shield(unit)
        if not write:  # WAL: readers never wait for the writer
            return self._run_on(self._reader, work, write, time.sleep, self._loop_reader())
        if not self._writer_turn.acquire(blocking=False):
            with anyio.CancelScope(shield=True):  # a cancelled wait must not leave the turn taken
                await anyio.to_thread.run_sync(self._writer_turn.acquire)
        try:
            if long:
                return await anyio.to_thread.run_sync(self.run, work, write)
            return self.run(work, write)
        finally:
            self._writer_turn.release()

    def _loop_reader(self) -> Connection:
        """The SQLite connection this event loop's read units share: they run on the loop's thread one after
        the other, each in a transaction of its own, so none waits for another. A one-row read unit cost
        42 µs of CPU on a connection the pool lent it, 18 on this one. A connection a unit broke reconnects
        itself at its next use, as a pooled one does (SQLAlchemy's invalidation)."""
        loop = asyncio.get_running_loop()
        conn = self._loop_readers.get(loop)
        if conn is None:
            for other in list(self._loop_readers):  # a copy: other loops' threads may add theirs meanwhile
                if other.is_closed() and (finished := self._loop_readers.pop(other, None)) is not None:
                    finished.close()
            conn = self._loop_readers[loop] = self._reader.connect()
        return conn

    def dedicated_connection(self) -> psycopg.Connection[Any]:
        """A PostgreSQL connection outside the pools, in autocommit, on the store's schema (for LISTEN)."""
        _, params = self._writer.dialect.create_connect_args(self._writer.url)
        return psycopg.connect(**params, **self._engine_args["connect_args"], autocommit=True)

    def _engines_of_this_loop(self) -> tuple[Engine, Engine]:
        loop = asyncio.get_running_loop()
        engines = self._loop_engines.get(loop)
        if engines is None:
            self._close_loop_engines(lambda other: other.is_closed())  # a finished loop's connections
            writer, reader = (create_async_engine(**self._engine_args, **isolation) for isolation in _WRITER_READER)
            engines = self._loop_engines[loop] = (writer.sync_engine, reader.sync_engine)
        return engines

    def _close_loop_engines(self, which: Callable[[asyncio.AbstractEventLoop], bool]) -> None:
        closing = [loop for loop in self._loop_engines if which(loop)]
        engines = [engine for loop in closing for engine in self._loop_engines.pop(loop)]
        if engines:  # closing psycopg's async connection waits on nothing: a loop of its own will do
            closer = threading.Thread(target=asyncio.run, args=(_dispose_all(engines),))
            closer.start()
            closer.join()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self.dialect == "sqlite":
            while self._loop_readers:
                self._loop_readers.popitem()[1].close()
        self._close_loop_engines(lambda _loop: True)
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()


_WRITER_READER: tuple[dict[str, Any], dict[str, Any]] = ({}, {"isolation_level": "AUTOCOMMIT"})


def _ended(unit: asyncio.Future[Any]) -> None:
    if not unit.cancelled():
        unit.exception()  # retrieved: a caller that was cancelled no longer waits for it


def _pause_on_the_loop(seconds: float) -> None:
    await_only(asyncio.sleep(seconds))


async def _dispose_all(engines: Sequence[Engine]) -> None:
    for engine in engines:
        await greenlet_spawn(engine.dispose)


def _past_time_limit(exc: Exception) -> bool:
    """Whether ``exc`` (SQLAlchemy's or the driver's own) is a statement stopped by the time limit."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(cause, sqlite3.OperationalError):
        return str(cause) == "interrupted"
    return isinstance(cause, psycopg.errors.QueryCanceled)


def _sqlstate(exc: DBAPIError) -> str | None:
    code = getattr(exc.orig, "sqlstate", None)
    return str(code) if code else None
