"""SQLite's two engines for a store file: one writer (``BEGIN IMMEDIATE``, one connection) and readers,
each connection switched to WAL and set up as the store needs (``database.Database``)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event


def sqlite_engines(path: str) -> tuple[Engine, Engine]:
    """The writer's engine and the readers' engine of the SQLite file at ``path``."""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    # Units of work may run on different threads (tests, PostgreSQL-style callers): allow it.
    args = {"check_same_thread": False}
    writer = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60, connect_args=args)
    reader = create_engine(url, pool_size=8, max_overflow=8, connect_args=args)
    _configure_sqlite(writer, "BEGIN IMMEDIATE", "PRAGMA wal_autocheckpoint=0")  # WalCheckpointer's work
    _configure_sqlite(reader, "BEGIN")
    return writer, reader


WAL_SWITCH_ATTEMPTS = 50


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, tried again while SQLite answers "database is locked".

    Of connections switching a new file at once, SQLite may answer one at once, without waiting the busy
    timeout: it calls no busy handler where waiting could deadlock (``sqlite3_busy_handler``'s
    documentation), as when two connections each hold a read lock and want the write lock. Four servers
    started at once on a new file (``test_concurrent_starts_migrate_once``): 6 of 80 such starts failed
    on the switch without this; the other connection soon finishes and lets go.
    """
    for attempt in range(1, WAL_SWITCH_ATTEMPTS + 1):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as failure:
            if "locked" not in str(failure) or attempt == WAL_SWITCH_ATTEMPTS:
                raise
            time.sleep(0.002 * attempt)


def _configure_sqlite(engine: Engine, begin_statement: str, *pragmas: str) -> None:
    # The sqlite3 module's own transaction handling would defer BEGIN; take control of it so that
    # writers start with BEGIN IMMEDIATE (SQLAlchemy docs, "Serializable isolation / Savepoints").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # First: switching a new file to WAL takes a lock that a concurrent start may hold (it failed at
        # once, "database is locked", without a wait).
        cursor.execute("PRAGMA busy_timeout=30000")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA analysis_limit=1000")  # keeps ANALYZE to milliseconds
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # On the driver's connection: through SQLAlchemy this statement costs more than the rest of the
        # transaction's bookkeeping (every request runs one).
        conn.connection.dbapi_connection.execute(begin_statement)
