"""What a search's SQL costs the server, built with SQLAlchemy for every search or compiled once per shape.

The national flows' searches, on an empty store so that the database's own work is next to nothing and
what remains is this process's: per search, the median microseconds (of ``--rounds`` runs) of

* ``built``: the page's statement built with SQLAlchemy from the search's tree and executed (SQLAlchemy's
  compiled-statement cache finds its SQL, but building the statement and its cache key is paid each time:
  how every search ran before ``sql_shapes.py``);
* ``shaped``: the same page through ``compiled_shapes.CompiledShapes`` (the SQL text of the shape, compiled on
  its first use, run with this search's values);
* ``run_search``: the whole of ``search_run.run_search`` (the tree made from the request, the page run,
  the rows opened): what a request pays now.

    python -m benchmarks.search_shapes [--rounds 2000] [--postgresql]

A SQLite file in a temporary directory, or with ``--postgresql`` a schema of its own on the test
database (``EQLAB_TEST_PG_URL``), dropped at the end. PostgreSQL's figures include its round trips and
its planning of each search (the store plans every search for its own values).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from sqlalchemy import Connection

from benchmarks.scratch_store import scratch_store
from reference_impl.fhir.query import QueryParser
from reference_impl.fhir.searchparams import registry
from reference_impl.naming import NATIONAL_ID
from reference_impl.store.compiled_shapes import CompiledShapes, as_select
from reference_impl.store.search_run import run_search
from reference_impl.store.search_sql import PAGE_COLUMNS, SearchSql
from reference_impl.store.sql_shapes import page

FLOWS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "PDQm family+given+birthdate": ("Patient", [("family", "Ries"), ("given", "Anne"), ("birthdate", "1970-03-01")]),
    "PDQm identifier": ("Patient", [("identifier", f"{NATIONAL_ID}|1970030112345")]),
    "ITI-67 patient+status+type": (
        "DocumentReference",
        [("patient", "p1"), ("status", "current"), ("type", "urn:oid:1.3.182.6.1|11488-4")],
    ),
    "prescription by matricule+status": (
        "MedicationRequest",
        [("subject:Patient.identifier", f"{NATIONAL_ID}|1970030112345"), ("status", "active")],
    ),
    "access log, newest first": ("AuditEvent", [("patient", "p1"), ("date", "ge2020-01-01"), ("_sort", "-date")]),
}


def median_us(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def measure(conn: Connection, rounds: int) -> None:
    query = QueryParser(registry(), 50, 1000)
    shapes = CompiledShapes()
    print("| search | built µs | shaped µs | run_search µs |")
    print("|---|---|---|---|")
    for name, (type_name, params) in FLOWS.items():
        request = query.parse(type_name, params, strict=True)
        sql = SearchSql()
        tree = page(PAGE_COLUMNS, sql.where(type_name, request), sql.order_by(request), request.count + 1, 0)
        built = median_us(rounds, lambda tree=tree: conn.execute(as_select(tree)).all())  # type: ignore[misc]
        shaped = median_us(rounds, lambda tree=tree: shapes.rows(conn, tree))  # type: ignore[misc]
        whole = median_us(rounds, lambda request=request: run_search(conn, request))  # type: ignore[misc]
        print(f"| {name} | {built:.0f} | {shaped:.0f} | {whole:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--postgresql", action="store_true", help="on PostgreSQL rather than SQLite")
    options = parser.parse_args()
    with scratch_store(options.postgresql) as db, db.transaction(write=False) as conn:
        print(f"{conn.dialect.name}, {options.rounds} rounds each")
        measure(conn, options.rounds)


if __name__ == "__main__":
    main()
