"""Loading a large dataset straight into the store: the rows ``resources.save`` would write, in bulk.

A ``ChunkSource`` (the national dataset, ``seed/national.py``) makes its resources in numbered
chunks, each a function of its number alone. Each chunk is written in one transaction together with
its row in ``bulk_progress``: a load stopped by Ctrl-C, a crash or a power cut has committed whole
chunks only, and a restart writes the chunks not yet there, never one twice. ``bulk_plan`` keeps what
the load was asked (a restart with other parameters is refused) and, on PostgreSQL, the secondary
indexes it dropped.

Every resource is stored as a first version exactly as ``resources.save`` stores it: the JSON with
``meta.versionId`` and ``meta.lastUpdated`` in front, its history row, its search index rows from
the same ``SearchParamRegistry.index_rows`` (so a search finds a loaded resource exactly as one
created over HTTP), and for documents (``documents.is_document``) the body sealed under a new key
per document, wrapped by the master key, as ``DocumentVault.seal`` does (without its per-document
key lookup: a loaded document is new by construction).

PostgreSQL gets the rows by ``COPY``, SQLite by ``executemany`` (``driver.TableAppend``).
On PostgreSQL, a load into an empty store first drops the secondary indexes of the tables it fills
and builds them once at the end (``finish``): faster than maintaining them row by row (measured at
20,000 patients: 44 s against 110 s). The load ends with ``VACUUM (ANALYZE)`` of the tables it
filled, as any bulk load should: statistics for the planner, and the visibility map that index-only
scans need. Several processes may load (``workers``): chunk k goes to worker k mod n; each commits
its own chunks.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import sql
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, Text, func, select, text
from sqlalchemy.engine import make_url

from reference_impl.store.bulk_rows import COLUMNS, RowMaker, Rows, tables_of
from reference_impl.store.database import Database, normalize_url
from reference_impl.store.driver import TableAppend, append_all
from reference_impl.store.schema import INDEX_TABLES, metadata
from reference_impl.vault import MasterKey

POLL_SECONDS = 0.5
FILLED_TABLES = ("resources", "resource_history", "document_keys", *(t.name for t in INDEX_TABLES.values()))

_bookkeeping = MetaData()
bulk_plan = Table(
    "bulk_plan",
    _bookkeeping,
    Column("name", String(64), primary_key=True),
    Column("parameters", Text, nullable=False),  # JSON: what the source says it is
    Column("dropped_indexes", Text, nullable=False),  # JSON list of CREATE INDEX statements to run at the end
)
bulk_progress = Table(
    "bulk_progress",
    _bookkeeping,
    Column("name", String(64), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("resources", Integer, nullable=False),
)


class ChunkSource(Protocol):
    """Resources in numbered chunks; chunk k is the same whenever and wherever it is made."""

    @property
    def name(self) -> str:
        """One load of a name per store."""

    @property
    def chunk_count(self) -> int: ...

    def parameters(self) -> dict[str, Any]:
        """What a restart must agree with (JSON values)."""

    def chunk(self, number: int) -> Iterable[dict[str, Any]]: ...


class LoadRefused(RuntimeError):
    """The store holds a load of the same name made with other parameters."""


@dataclass(frozen=True)
class Progress:
    chunks_done: int  # committed so far, this run and earlier ones
    chunks: int
    chunks_this_run: int
    resources: int  # committed so far, this run and earlier ones
    resources_this_run: int
    seconds: float  # this run

    @property
    def rate(self) -> float:
        """Resources per second, this run."""
        return self.resources_this_run / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at this run's pace so far (None before its first chunk)."""
        if not self.chunks_this_run:
            return None
        return (self.chunks - self.chunks_done) * self.seconds / self.chunks_this_run


@dataclass(frozen=True)
class LoadResult:
    chunks_loaded: int  # by this run
    resources_loaded: int  # by this run
    resources: int  # in all, with earlier runs
    load_seconds: float
    index_seconds: float  # building the dropped indexes, and ANALYZE
    complete: bool


# --- rows ------------------------------------------------------------------------------------------


_APPENDS = {table: TableAppend(metadata.tables[table], columns) for table, columns in COLUMNS.items()}


def _write(conn: Connection, rows: Rows) -> None:
    append_all(conn, [(_APPENDS[table], table_rows) for table, table_rows in tables_of(rows)])


# --- the load --------------------------------------------------------------------------------------


def prepare(db: Database, source: ChunkSource, drop_indexes: bool = True) -> list[int]:
    """Record the load (or check a restart agrees with it) and, on PostgreSQL, drop the secondary
    indexes when the store is empty (and ``drop_indexes``); the chunks still to load."""
    parameters = json.dumps(source.parameters(), sort_keys=True)

    def work(conn: Connection) -> list[int]:
        _bookkeeping.create_all(conn)
        row = conn.execute(select(bulk_plan.c.parameters).where(bulk_plan.c.name == source.name)).first()
        if row is None:
            dropped = _drop_secondary_indexes(conn) if drop_indexes and _is_empty(conn) else []
            conn.execute(
                bulk_plan.insert().values(name=source.name, parameters=parameters, dropped_indexes=json.dumps(dropped))
            )
        elif row[0] != parameters:
            raise LoadRefused(
                f"this store holds a {source.name} load made with {row[0]}, not {parameters}: "
                "resume it with the same parameters, or use another store"
            )
        done = set(conn.execute(select(bulk_progress.c.chunk).where(bulk_progress.c.name == source.name)).scalars())
        return [k for k in range(source.chunk_count) if k not in done]

    return db.run(work, write=True)


def recorded_parameters(db: Database, name: str) -> dict[str, Any] | None:
    """The parameters of the load ``name`` the store holds (None: none, or no load ever)."""

    def work(conn: Connection) -> dict[str, Any] | None:
        _bookkeeping.create_all(conn)
        row = conn.execute(select(bulk_plan.c.parameters).where(bulk_plan.c.name == name)).first()
        return json.loads(row[0]) if row else None

    found: dict[str, Any] | None = db.run(work, write=True)
    return found


def _is_empty(conn: Connection) -> bool:
    return conn.execute(text("SELECT 1 FROM resources LIMIT 1")).first() is None


def _drop_secondary_indexes(conn: Connection) -> list[str]:
    """Drop the indexes of the filled tables that back no constraint (PostgreSQL); their definitions."""
    if conn.dialect.name != "postgresql":
        return []
    found = conn.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = current_schema() AND i.tablename = ANY(:tables) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = current_schema() AND c.conname = i.indexname) ORDER BY i.indexname"
        ),
        {"tables": list(FILLED_TABLES)},
    ).all()
    for name, _ in found:
        conn.execute(text(f'DROP INDEX "{name}"'))
    return [definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1) for _, definition in found]


def load_chunks(db: Database, source: ChunkSource, master: MasterKey, chunks: Iterable[int]) -> int:
    """Write ``chunks``, each in one transaction with its progress row; the resources written."""
    maker = RowMaker(master)
    written = 0
    for number in chunks:
        with _cyclic_collection_paused():
            written += _load_chunk(db, source, maker, number)
    return written


def _load_chunk(db: Database, source: ChunkSource, maker: RowMaker, number: int) -> int:
    rows = maker.rows(source.chunk(number))

    def work(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            # A commit lost to a crash loses its chunk and progress row together: the restart loads it again.
            conn.execute(text("SET LOCAL synchronous_commit = off"))
        _write(conn, rows)
        conn.execute(bulk_progress.insert().values(name=source.name, chunk=number, resources=rows.count))

    db.run(work, write=True)
    return rows.count


@contextmanager
def _cyclic_collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a chunk is made and written. A chunk's resources and rows are
    tens of thousands of containers that live until it is written, and the collector walked them again
    and again as they piled up; they hold no cycles and are freed by reference counting when the chunk is
    done (the collector runs again then, as usual). Measured at 20,000 patients, alternated twice: the
    loading processes' CPU 98-100 -> 90-93 µs per resource, 15,814-16,648 -> 17,569-17,581 resources/s."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def committed(db: Database, source: ChunkSource) -> tuple[int, int]:
    """(chunks, resources) committed so far."""
    query = select(func.count(), func.coalesce(func.sum(bulk_progress.c.resources), 0)).where(
        bulk_progress.c.name == source.name
    )
    chunks, resources = db.run(lambda conn: conn.execute(query).one(), write=False)
    return int(chunks), int(resources)


def finish(db: Database, db_url: str, source: ChunkSource) -> float:
    """Build the indexes the load dropped, then refresh the planner's statistics of the filled tables
    (and, on PostgreSQL, their visibility maps); the seconds it took."""
    started = time.monotonic()
    row = db.run(
        lambda conn: conn.execute(select(bulk_plan.c.dropped_indexes).where(bulk_plan.c.name == source.name)).one(),
        write=False,
    )
    for definition in json.loads(row[0]):

        def build(conn: Connection, definition: str = definition) -> None:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            conn.execute(text(definition))

        db.run(build, write=True)
    db.run(
        lambda conn: conn.execute(
            bulk_plan.update().where(bulk_plan.c.name == source.name).values(dropped_indexes="[]")
        ),
        write=True,
    )
    if db.dialect == "postgresql":
        _vacuum_analyze(db_url, db.schema)
    else:
        db.run(lambda conn: conn.execute(text("ANALYZE")), write=True)
    return time.monotonic() - started


def _vacuum_analyze(db_url: str, schema: str | None) -> None:
    """VACUUM (ANALYZE) the filled tables, as after any bulk load: the planner's statistics, and the
    visibility map without which an index-only scan still visits the table. Outside any transaction,
    as VACUUM must be: a connection of its own."""
    url = make_url(normalize_url(db_url))
    query = {k: v for k, v in url.query.items() if k != "schema"}
    conninfo = url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)
    options = f"-c search_path={schema}" if schema else ""
    with psycopg.connect(conninfo, autocommit=True, options=options) as conn:
        for table in FILLED_TABLES:
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))


def load(
    db_url: str,
    source: ChunkSource,
    master: Callable[[], MasterKey],
    workers: int = 1,
    stop_after: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    drop_indexes: bool = True,
) -> LoadResult:
    """Load what ``source`` has not loaded yet into the store at ``db_url`` (migrated already), sealing
    documents with the key ``master`` gives (each process asks it: ``Settings.master``).

    ``stop_after`` loads at most that many chunks and stops without building the indexes (a
    deliberate interruption, for tests); ``workers`` > 1 loads in that many processes (PostgreSQL);
    ``drop_indexes=False`` keeps the indexes up to date row by row (to measure what dropping saves).
    """
    db = Database(db_url)
    try:
        pending = prepare(db, source, drop_indexes)
        if stop_after is not None:
            pending = pending[:stop_after]
        before = committed(db, source)
        started = time.monotonic()
        if workers <= 1 or db.dialect != "postgresql" or len(pending) <= 1:
            key = master()
            for number in pending:
                load_chunks(db, source, key, [number])
                if on_progress is not None:
                    on_progress(_progress(db, source, before, started))
        else:
            _load_in_processes(db, db_url, source, master, pending, workers, before, started, on_progress)
        load_seconds = time.monotonic() - started
        chunks, total = committed(db, source)
        complete = chunks == source.chunk_count
        index_seconds = finish(db, db_url, source) if complete and pending else 0.0
        return LoadResult(len(pending), total - before[1], total, load_seconds, index_seconds, complete)
    finally:
        db.dispose()


def _progress(db: Database, source: ChunkSource, before: tuple[int, int], started: float) -> Progress:
    chunks, resources = committed(db, source)
    elapsed = time.monotonic() - started
    return Progress(chunks, source.chunk_count, chunks - before[0], resources, resources - before[1], elapsed)


def _load_in_processes(
    db: Database,
    db_url: str,
    source: ChunkSource,
    master: Callable[[], MasterKey],
    pending: list[int],
    workers: int,
    before: tuple[int, int],
    started: float,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    context = multiprocessing.get_context("spawn")  # no engine, pool or thread of this process is shared
    shares = [pending[w::workers] for w in range(workers)]
    processes = [
        context.Process(target=_worker, args=(db_url, source, master, share), daemon=True) for share in shares if share
    ]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            time.sleep(POLL_SECONDS)
            if on_progress is not None:
                on_progress(_progress(db, source, before, started))
            failed = [p for p in processes if p.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a loading process failed (exit code {failed[0].exitcode}); run the load again")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def _worker(db_url: str, source: ChunkSource, master: Callable[[], MasterKey], chunks: list[int]) -> None:
    # Loading makes no reference cycles (a chunk's containers go by reference counting; the tests check
    # that a chunk leaves none behind), so a loading process runs without the cyclic collector: even
    # between chunks, a collection walked what they left remembered (the index rows, mostly): 5-10% of
    # the process's time when it ran after every chunk, 2% when only the chunk's new rows were walked.
    gc.disable()
    parent = os.getppid()
    db = Database(db_url)
    key = master()
    try:
        for number in chunks:
            if os.getppid() != parent:  # the loading command died (killed, crashed): stop with it
                return
            load_chunks(db, source, key, [number])
    except KeyboardInterrupt:  # the terminal's Ctrl-C reaches every process: the parent reports it
        pass
    finally:
        db.dispose()
