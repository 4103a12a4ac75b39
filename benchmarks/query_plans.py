"""How long do the national flows' searches take on PostgreSQL at scale, and on which plans?

Loads ``--patients`` patients (8 DocumentReferences, 10 AuditEvents, 2 MedicationRequests each:
``tests/support/plan_dataset.py``, the dataset of ``tests/reference_impl/store/test_query_plans.py``)
into a schema of its own, VACUUM ANALYZEs it as after any bulk load, then runs each flow's search
through ``search_run.run_search`` (the default ``_total``: exact up to 1,000 matches, estimated beyond)
and prints, per flow: the median time of ``run_search`` in this process (statements, rows, Python),
the server's execution time of its statements (``EXPLAIN ANALYZE``: the bounded count, the page), the
big tables scanned sequentially (none expected) and the total. Also one type's history page and the
whole server's.

    python benchmarks/query_plans.py [--patients 10000] [--keep SCHEMA] [--serial]

``--keep SCHEMA`` loads into (or reuses) that schema and keeps it; ``--serial`` runs without parallel
workers (``max_parallel_workers_per_gather = 0``), as an OLTP server had better be configured: a
worker's start costs more than these plans' work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql
from sqlalchemy import Connection, event, text

# The repository in place of this directory: benchmarks/fhir_core.py would shadow the package fhir_core.
if (here := str(Path(__file__).resolve().parent)) in sys.path:  # run as a script; not there under -m
    sys.path.remove(here)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference_impl.fhir.query import QueryParser
from reference_impl.fhir.searchparams import registry
from reference_impl.naming import NATIONAL_ID
from reference_impl.platform import migrate_platform
from reference_impl.store.database import Database
from reference_impl.store.resources import history_page
from reference_impl.store.search_run import run_search
from tests.support.plan_dataset import DOCTYPES, PRESCRIPTION_ID, Sizes, load, settle
from tests.support.postgres import PG_URL


def first(conn: Connection, sql: str, **params: str) -> dict[str, Any]:
    found: dict[str, Any] = orjson.loads(conn.execute(text(sql), params).scalar_one())
    return found


def flows(conn: Connection) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """The searches of the national flows, for the first patient named Schmit (the broadest family)."""
    patient = first(
        conn,
        "SELECT r.content FROM resources r JOIN idx_string s ON s.res_type = 'Patient' AND s.res_id = r.res_id "
        "AND s.param = 'family' AND s.value_norm = 'schmit' WHERE r.res_type = 'Patient' ORDER BY r.res_id LIMIT 1",
    )
    owned = (
        "SELECT r.content FROM resources r JOIN idx_reference x ON x.res_type = r.res_type AND x.res_id = r.res_id "
        "AND x.param = 'patient' AND x.target_id = :patient WHERE r.res_type = :type ORDER BY r.res_id LIMIT 1"
    )
    document = first(conn, owned, patient=patient["id"], type="DocumentReference")
    prescription = first(conn, owned, patient=patient["id"], type="MedicationRequest")
    name, matricule = patient["name"][0], f"{NATIONAL_ID}|{patient['identifier'][0]['value']}"
    return {
        "PDQm family+given+birthdate": (
            "Patient",
            [("family", name["family"]), ("given", name["given"][0]), ("birthdate", patient["birthDate"])],
        ),
        "PDQm family (broad)": ("Patient", [("family", name["family"])]),
        "PDQm identifier": ("Patient", [("identifier", matricule)]),
        "PIXm linked records": ("Patient", [("identifier", matricule), ("active:not", "false")]),
        "ITI-67 patient+status+type": (
            "DocumentReference",
            [
                ("patient", patient["id"]),
                ("status", "current"),
                ("type", f"{DOCTYPES}|{document['type']['coding'][0]['code']}"),
            ],
        ),
        "prescription by identifier": (
            "MedicationRequest",
            [("identifier", f"{PRESCRIPTION_ID}|{prescription['identifier'][0]['value']}")],
        ),
        "prescription by matricule+status": (
            "MedicationRequest",
            [("subject:Patient.identifier", matricule), ("status", "active")],
        ),
        "prescription by patient.identifier": ("MedicationRequest", [("patient.identifier", matricule)]),
        "access log, newest first": (
            "AuditEvent",
            [("patient", patient["id"]), ("date", "ge2020-01-01"), ("_sort", "-date")],
        ),
        "documents, latest first": ("DocumentReference", [("_sort", "-_lastUpdated"), ("_count", "10")]),
        "current documents (broad)": ("DocumentReference", [("status", "current")]),
        "current documents, page 101": ("DocumentReference", [("status", "current"), ("_offset", "5000")]),
    }


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def measure(db: Database, name: str, work: Callable[[Connection], object]) -> None:
    """One row: the median of 5 runs of ``work``, then its statements' server times and sequential scans."""
    times = []
    for _ in range(5):
        with db.transaction(write=False) as conn:
            started = time.perf_counter()
            result = work(conn)
            times.append((time.perf_counter() - started) * 1000)
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if not statement.startswith("EXPLAIN"):
            statements.append((statement, parameters))

    with db.transaction(write=False) as conn:
        event.listen(conn, "before_cursor_execute", record)
        work(conn)
        event.remove(conn, "before_cursor_execute", record)
        plans = [conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + s, p).scalar_one()[0] for s, p in statements]
    server = " + ".join(f"{plan['Execution Time']:.2f}" for plan in plans)
    scanned = {n["Relation Name"] for plan in plans for n in nodes(plan["Plan"]) if n["Node Type"] == "Seq Scan"}
    total = getattr(result, "total", None)
    print(f"| {name} | {statistics.median(times):.2f} | {server} | {', '.join(sorted(scanned)) or '-'} | {total} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--keep", metavar="SCHEMA", help="load into (or reuse) this schema and keep it")
    parser.add_argument("--serial", action="store_true", help="no parallel workers")
    options = parser.parse_args()
    schema = options.keep or f"eqlab_plans_{uuid.uuid4().hex[:8]}"
    db = Database(f"{PG_URL}?schema={schema}")
    if options.serial:
        event.listen(db._reader, "connect", _serial)  # the pool's connections; Database has no option for it
    try:
        migrate_platform(db)
        with db.transaction(write=False) as conn:
            loaded = conn.execute(text("SELECT count(*) FROM resources WHERE res_type = 'Patient'")).scalar_one()
        if not loaded:
            started = time.perf_counter()
            with db.transaction(write=True) as conn:
                load(conn, Sizes(options.patients))
            settle(schema)
            print(f"loaded {options.patients:,} patients in {time.perf_counter() - started:.1f} s")
        print("| flow | run_search median ms | server ms (count + page) | seq scans | total |")
        print("|---|---|---|---|---|")
        with db.transaction(write=False) as conn:
            searches = flows(conn)
        query = QueryParser(registry(), 50, 1000)
        for name, (type_name, params) in searches.items():
            request = query.parse(type_name, params, strict=True)
            measure(db, name, lambda conn, request=request: run_search(conn, request))  # type: ignore[misc]
        measure(
            db, "DocumentReference history", lambda c: history_page(c, "DocumentReference", None, None, None, 50, 0)
        )
        measure(db, "whole server history", lambda c: history_page(c, None, None, None, None, 50, 0, ("AuditEvent",)))
    finally:
        db.dispose()
        if not options.keep:
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _serial(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 0")
    dbapi_connection.commit()


if __name__ == "__main__":
    main()
