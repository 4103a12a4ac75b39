"""Schema migrations and the demo seed, on both backends."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, inspect, select, text
from starlette.testclient import TestClient

from reference_impl.app import create_app
from reference_impl.fhir.searchparams import SearchParamRegistry
from reference_impl.fhir.structure import search_parameter_definitions, structure
from reference_impl.platform import migrate_platform, migrations
from reference_impl.seed.demo import demo_bundle
from reference_impl.services.mpi.demo import demo_patients
from reference_impl.settings import Settings
from reference_impl.store import resources as store
from reference_impl.store import schema, wal_checkpoint
from reference_impl.store.database import POSTGRESQL_POOL_SIZE, Database, normalize_url
from reference_impl.store.migrations import current_version
from reference_impl.store.wal_checkpoint import CHECKPOINT_INTERVAL_S
from tests.support.postgres import query
from tests.support.tokens import mint


def test_migrations_apply_once_and_create_every_table(db_url: str) -> None:
    db = Database(db_url)
    try:
        first, second = migrate_platform(db), migrate_platform(db)
        with db.transaction(write=False) as conn:
            tables = set(inspect(conn).get_table_names())
        version = current_version(db)
    finally:
        db.dispose()
    assert first == sorted(m.version for m in migrations()) and second == []  # in version order, whoever lists them
    assert version == max(m.version for m in migrations())
    assert {
        "resources",
        "resource_history",
        "idx_string",
        "idx_token",
        "idx_date",
        "idx_reference",
        "schema_migrations",
        "document_keys",
    } <= tables


def test_concurrent_starts_migrate_once(db_url: str) -> None:
    databases = [Database(db_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(migrate_platform, databases))
    finally:
        for db in databases:
            db.dispose()
    assert sorted(map(len, results)) == [0, 0, 0, len(migrations())]


def test_demo_seed_is_loaded_once_and_deterministic(db_url: str) -> None:
    assert demo_bundle() == demo_bundle()
    for _ in range(2):  # a restart does not load it again
        app = create_app(Settings(db_url=db_url, seed="demo"))
        with TestClient(app, base_url="http://testserver/fhir/") as client:
            client.headers["Authorization"] = f"Bearer {mint(app, 'http://testserver')}"
            patients = client.get("Patient", params={"_summary": "count"}).json()["total"]
            assert patients == 40 + len(demo_patients()), "the dataset's 40 and the patient index's demo people"
            assert client.get("Organization/org-chl").json()["meta"]["versionId"] == "1"
            assert (
                client.get("Observation", params={"subject.family": "schmit", "_summary": "count"}).status_code == 200
            )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite:///x.db"),
        ("postgresql://h/db", "postgresql+psycopg://h/db"),
        ("postgres://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+asyncpg://h/db", "postgresql+psycopg://h/db"),
    ],
)
def test_url_normalisation(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        Database("mysql://localhost/db")


@pytest.mark.postgres
def test_a_unit_on_a_connection_the_server_dropped_runs_again_on_a_new_one(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        first = db.run(lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar(), write=False)
        # The pooled connection dies (a server restart, an idle timeout, an administrator): no pre-ping
        # finds it; the unit meets it, and runs again on a fresh one.
        query("SELECT pg_terminate_backend(%s)", first)
        again = db.run(lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar(), write=False)
        assert again != first
    finally:
        db.dispose()


def _rows_in_the_file_alone(path: Path) -> int:
    """Patients in the database file itself, the write-ahead log ignored (immutable: no WAL read)."""
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM resources WHERE res_type = 'Patient'").fetchone()[0])
        except sqlite3.OperationalError:  # not even the tables are in the file yet
            return 0


def test_the_write_ahead_log_is_written_back_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    db = Database(f"sqlite:///{path}")
    try:
        migrate_platform(db, [])
        registry = SearchParamRegistry(structure(), search_parameter_definitions())

        def create(conn: Connection) -> None:
            store.create_all(conn, registry, [({"resourceType": "Patient"}, f"p{n}") for n in range(300)])

        db.run(create, write=True)
        deadline = time.monotonic() + 10
        while _rows_in_the_file_alone(path) < 300:
            assert time.monotonic() < deadline, "the log was never written back"
            time.sleep(CHECKPOINT_INTERVAL_S / 2)
        db.run(lambda conn: store.create_all(conn, registry, [({"resourceType": "Patient"}, "last")]), write=True)
    finally:
        db.dispose()
    assert _rows_in_the_file_alone(path) == 301, "a disposed store leaves its log written back"


def test_the_write_ahead_log_stays_bounded_while_readers_never_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load some reader is always inside the log, so a PASSIVE checkpoint never lets SQLite
    start it over: the log grew with every write (1.5 GB for a 171 MB store). The checkpointer starts it
    over once it holds more than ``LOG_FRAMES_KEPT`` pages, at a moment no reader is inside it."""
    monkeypatch.setattr(wal_checkpoint, "LOG_FRAMES_KEPT", 256)  # 1 MiB of 4 KiB pages
    path = tmp_path / "store.sqlite3"
    wal = path.with_name(path.name + "-wal")
    db = Database(f"sqlite:///{path}")
    reading = threading.Event()
    reading.set()

    def read(conn: Connection) -> None:
        conn.exec_driver_sql("SELECT count(*) FROM resources").scalar()
        time.sleep(0.01)  # the snapshot held, as by a request between its statements

    def read_on(start: float) -> None:  # three of these, out of step: one is always inside a read transaction
        time.sleep(start)
        while reading.is_set():
            db.run(read, write=False)

    readers = ThreadPoolExecutor(3)
    largest = 0
    try:
        migrate_platform(db, [])
        registry = SearchParamRegistry(structure(), search_parameter_definitions())
        running = [readers.submit(read_on, start) for start in (0, 0.003, 0.006)]
        text_of_a_page = "x" * 4096
        for batch in range(150):  # 200 KiB of text at a time, ~40 MiB of log in all
            patients = [
                ({"resourceType": "Patient", "text": {"status": "generated", "div": text_of_a_page}}, f"p{batch}-{n}")
                for n in range(50)
            ]
            db.run(partial(store.create_all, registry=registry, new=patients), write=True)
            largest = max(largest, wal.stat().st_size)
            time.sleep(CHECKPOINT_INTERVAL_S / 10)
    finally:
        reading.clear()
        readers.shutdown()
        db.dispose()
    assert all(r.exception() is None for r in running)
    assert _rows_in_the_file_alone(path) == 7500
    assert largest < 6 * 1024 * 1024, f"the log reached {largest / 2**20:.1f} MiB"


@pytest.mark.postgres
@pytest.mark.parametrize("from_async", [False, True], ids=["sync", "async"])
def test_postgresql_prepares_only_the_driver_statements_and_runs_no_parallel_workers(
    postgres_url: str, from_async: bool
) -> None:
    # A prepared statement may get one generic plan for any values, which ignores how selective they
    # are (one patient's documents were read through every document's): a search is never prepared,
    # so it is planned for its own values at every run. The driver statements, lookups on a key, are
    # prepared and get the generic plan (no planning per run). Parallel workers cost more to start
    # than short plans run.
    searched = select(schema.resources.c.res_id).where(schema.resources.c.res_id == "p")

    def work(conn: Connection) -> tuple[object, list[tuple[str, int]]]:
        for _ in range(8):
            store.current(conn, "Patient", "p")
            conn.execute(searched).all()
        parallel = conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar()
        prepared = conn.exec_driver_sql("SELECT statement, generic_plans FROM pg_prepared_statements").all()
        return parallel, [(str(statement), int(generic)) for statement, generic in prepared]

    db = Database(postgres_url)
    try:
        migrate_platform(db)
        parallel, prepared = asyncio.run(db.run_async(work, write=False)) if from_async else db.run(work, write=False)
    finally:
        db.dispose()
    assert parallel == "0"
    assert len(prepared) == 1, prepared  # the read by key (store.current), not the search
    statement, generic_plans = prepared[0]
    assert statement.endswith("FROM resources WHERE res_type = $1 AND res_id = $2")
    assert generic_plans >= 1  # planned once for any values


@pytest.mark.postgres
def test_postgresql_reads_outside_a_transaction_and_writes_in_one(postgres_url: str) -> None:
    # At READ COMMITTED a statement sees what committed before it, in a transaction or not: a unit
    # that only reads runs each statement on its own (no BEGIN, no COMMIT); a writing unit stays atomic.
    def transaction_ids(conn: Connection) -> list[object]:
        return [conn.exec_driver_sql("SELECT txid_current()").scalar() for _ in range(2)]

    db = Database(postgres_url)
    try:
        read, written = db.run(transaction_ids, write=False), db.run(transaction_ids, write=True)
    finally:
        db.dispose()
    assert read[0] != read[1], "each statement of a read unit is a transaction of its own"
    assert written[0] == written[1], "a writing unit is one transaction"


@pytest.mark.parametrize("count", [1, 3, 40])  # fewer rows per table than a COPY is worth, and more
def test_created_together_is_stored_as_saved_one_by_one(db_url: str, count: int) -> None:
    """``create_all`` (the audit trail's group commit) writes the rows ``save`` writes: the body, its
    history and every index row (a search parameter of each type the AuditEvents use)."""
    registry = SearchParamRegistry(structure(), search_parameter_definitions())
    observations = [
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": f"8867-{n}", "display": "Heart rate"}]},
            "subject": {"reference": f"Patient/p{n}"},
            "effectiveDateTime": f"2026-01-{1 + n % 28:02d}",
            "valueQuantity": {"value": n, "unit": "/min"},
        }
        for n in range(count)
    ]

    def rows(conn: Connection, prefix: str) -> list[tuple[str, ...]]:
        """Every row of the resources named ``prefix<n>``, ids and instants left out."""
        found = []
        for table in ("resources", "resource_history", "idx_token", "idx_reference", "idx_date", "idx_quantity"):
            columns = [c for c in COMPARED_COLUMNS if c in _columns(conn, table)]
            query = text(f"SELECT {', '.join(columns)} FROM {table} WHERE res_id LIKE :prefix")
            for row in conn.execute(query, {"prefix": f"{prefix}%"}):
                cells = dict(zip(columns, row, strict=True))
                if cells.get("content"):
                    body = json.loads(cells["content"])
                    cells["content"] = json.dumps({**body, "id": "<id>", "meta": {}}, sort_keys=True)
                cells["res_id"] = cells["res_id"].removeprefix(prefix)
                found.append((table, *(str(cells[c]) for c in columns)))
        return sorted(found)

    db = Database(db_url)
    try:
        migrate_platform(db)
        together = [(observation, f"all{n}") for n, observation in enumerate(observations)]
        db.run(lambda conn: store.create_all(conn, registry, together), write=True)
        for observation, res_id in together:
            db.run(partial(store.save, registry=registry, resource=observation, res_id=res_id.replace("all", "one"),
                           previous=None, method="POST"), write=True)  # fmt: skip
        stored_together, one_by_one = db.run(lambda conn: (rows(conn, "all"), rows(conn, "one")), write=False)
    finally:
        db.dispose()
    assert stored_together == one_by_one
    assert sum(1 for row in stored_together if row[0] == "idx_token") >= count  # the index rows are there


def test_each_version_s_body_is_stored_once_and_every_version_reads_back(db_url: str) -> None:
    """Created, updated, deleted, created again: each version reads back its own body (vread and history),
    and the store holds each body once, the current one in ``resources`` alone."""
    registry = SearchParamRegistry(structure(), search_parameter_definitions())
    genders = {1: "male", 2: "female", 4: "other"}  # version 3 is the deletion
    db = Database(db_url)
    try:
        migrate_platform(db)

        def write_all(conn: Connection) -> None:
            previous = None
            for version_id in range(1, 5):
                if version_id == 3:
                    assert previous is not None
                    previous = store.mark_deleted(conn, previous)
                else:
                    patient = {"resourceType": "Patient", "gender": genders[version_id]}
                    previous = store.save(conn, registry, patient, "once", previous, "PUT")

        db.run(write_all, write=True)

        def read_all(conn: Connection) -> tuple[list[store.StoredResource | None], store.HistoryPage, int]:
            versions = [store.version(conn, "Patient", "once", v) for v in range(1, 5)]
            page = store.history_page(conn, "Patient", "once", None, None, count=10, offset=0)
            bodies = conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM resources WHERE res_id = 'once' AND content IS NOT NULL)"
                    " + (SELECT count(*) FROM resource_history WHERE res_id = 'once' AND content IS NOT NULL)"
                )
            ).scalar_one()
            return versions, page, int(bodies)

        versions, page, bodies = db.run(read_all, write=False)
    finally:
        db.dispose()
    read = {v.version_id: (v.parsed()["gender"] if not v.deleted else None) for v in versions if v is not None}
    assert read == {1: "male", 2: "female", 3: None, 4: "other"}
    methods = [(v.version_id, method) for v, method in page.versions]
    assert methods == [(4, "PUT"), (3, "DELETE"), (2, "PUT"), (1, "PUT")]
    assert [v.parsed()["gender"] for v, _ in page.versions if not v.deleted] == ["other", "female", "male"]
    assert bodies == 3, "three bodies, each once"


def test_a_store_holding_the_current_body_twice_reads_the_same(db_url: str) -> None:
    """Stores written before the current version's body was kept in ``resources`` alone hold it in its
    history row too: read, updated and deleted, they give the same versions."""
    registry = SearchParamRegistry(structure(), search_parameter_definitions())
    db = Database(db_url)
    try:
        migrate_platform(db)

        def write_the_earlier_way(conn: Connection) -> store.StoredResource:
            saved = store.save(conn, registry, {"resourceType": "Patient", "gender": "male"}, "twice", None, "PUT")
            both_copies = text("UPDATE resource_history SET content = :content WHERE res_id = 'twice'")
            conn.execute(both_copies, {"content": saved.content})
            updated = store.save(conn, registry, {"resourceType": "Patient", "gender": "female"}, "twice", saved, "PUT")
            return store.mark_deleted(conn, updated)

        db.run(write_the_earlier_way, write=True)
        versions = db.run(lambda conn: [store.version(conn, "Patient", "twice", v) for v in (1, 2, 3)], write=False)
    finally:
        db.dispose()
    assert [v.parsed()["gender"] if v and not v.deleted else None for v in versions] == ["male", "female", None]


COMPARED_COLUMNS = ("res_id", "version_id", "deleted", "method", "content", "param", "code", "target_id", "low")


def _columns(conn: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(conn).get_columns(table)}


@pytest.mark.postgres
def test_postgresql_connections_are_opened_once_not_at_every_peak(postgres_url: str) -> None:
    # Waves of more concurrent units than the pool holds: each connection is opened once and kept.
    db = Database(postgres_url)
    opened: list[object] = []
    for engine in (db._reader, db._writer):
        event.listen(engine, "connect", lambda *_: opened.append(1))
    try:
        with ThreadPoolExecutor(max_workers=4 * POSTGRESQL_POOL_SIZE) as pool:
            for _wave in range(5):
                units = [pool.submit(db.run, _briefly_busy, w) for w in (False, True) * (2 * POSTGRESQL_POOL_SIZE)]
                assert all(unit.result() == 1 for unit in units)
    finally:
        db.dispose()
    assert 0 < len(opened) <= 2 * POSTGRESQL_POOL_SIZE


def _briefly_busy(conn: Connection) -> object:
    return conn.exec_driver_sql("SELECT 1 FROM pg_sleep(0.01)").scalar()


def test_a_stored_version_leads_with_its_type_id_and_meta_and_keeps_the_rest_in_order() -> None:
    sent = {
        "name": [{"family": "Muller"}],
        "meta": {"security": [{"code": "R"}], "versionId": "7"},
        "resourceType": "Patient",
        "id": "chosen-by-the-client",
        "gender": "female",
    }
    body = store.versioned_body(sent, "p1", 2, "2026-12-06T10:00:00.000000Z")
    assert list(body) == ["resourceType", "id", "meta", "name", "gender"]
    assert body["id"] == "p1"
    assert body["meta"] == {"security": [{"code": "R"}], "versionId": "2", "lastUpdated": "2026-12-06T10:00:00.000000Z"}
    assert sent["meta"] == {"security": [{"code": "R"}], "versionId": "7"}, "the resource sent is left as it was"
    assert list(store.versioned_body({"resourceType": "Basic", "code": {}}, "b1", 1, "t")) == [
        "resourceType",
        "id",
        "meta",
        "code",
    ]
