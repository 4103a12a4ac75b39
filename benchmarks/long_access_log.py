"""What the first page of a patient's access log costs as that log grows, beside everyone else's.

A store of ``--patients`` patients with ``--events`` AuditEvents each (written as the platform writes
them: ``resources.create_all``, index rows and all), then one more patient whose log grows through
``--sizes`` (their events the latest, as for a patient in hospital or a sandbox's test patient). For
each size, the first page of 20 (``search_run.run_search``, its bounded count included), in the three
orders a portal may ask: the default (oldest first), newest first by ``_lastUpdated``, and newest first
by the event's ``date``; the median milliseconds of ``--rounds`` runs.

    python -m benchmarks.long_access_log [--postgresql] [--patients 2000] [--events 20]
        [--sizes 20,200,2000,10000] [--rounds 20]

A SQLite file in a temporary directory, or with ``--postgresql`` a schema of its own on the test
database (``EQLAB_TEST_PG_URL``), analysed after each size (as autovacuum would) and dropped at the end.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import uuid
from typing import Any

from sqlalchemy import Connection, text

from benchmarks.scratch_store import scratch_store
from reference_impl.fhir.query import QueryParser
from reference_impl.fhir.searchparams import registry
from reference_impl.store.bounded_searches import within_one_record
from reference_impl.store.database import Database
from reference_impl.store.resources import create_all, new_id
from reference_impl.store.search_run import run_search

ORDERS = {
    "oldest first": [],
    "newest first (_lastUpdated)": [("_sort", "-_lastUpdated")],
    "newest first (date)": [("_sort", "-date")],
}
WRITTEN_AT_ONCE = 1000


def access(patient: str) -> dict[str, Any]:
    """An AuditEvent of a professional's read of the patient's record."""
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}],
        "action": "R",
        "recorded": "2026-12-01T10:00:00Z",
        "outcome": "0",
        "agent": [{"who": {"reference": "Practitioner/prac-1"}, "requestor": True}],
        "entity": [{"what": {"reference": f"Patient/{patient}"}}],
    }


def write(db: Database, patients: list[str]) -> None:
    """An AuditEvent for each entry of ``patients``, in transactions of WRITTEN_AT_ONCE."""
    for start in range(0, len(patients), WRITTEN_AT_ONCE):
        events = [(access(patient), new_id()) for patient in patients[start : start + WRITTEN_AT_ONCE]]
        db.run(functools.partial(create_all, registry=registry(), new=events), write=True)


def first_page_ms(db: Database, patient: str, order: list[tuple[str, str]], rounds: int) -> tuple[float, int | None]:
    request = QueryParser(registry(), 50, 1000).parse(
        "AuditEvent", [("patient", patient), ("_count", "20"), *order], strict=True
    )
    assert within_one_record(request)

    def once(conn: Connection) -> int | None:
        return run_search(conn, request).total

    total = db.run(once, write=False)  # the shape compiled, the pages cached by the database
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        db.run(once, write=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql", action="store_true", help="on PostgreSQL rather than SQLite")
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20, help="AuditEvents of each of the other patients")
    parser.add_argument("--sizes", default="20,200,2000,10000", help="the growing log's sizes, in order")
    parser.add_argument("--rounds", type=int, default=20)
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    with scratch_store(options.postgresql) as db:
        for _ in range(options.events):
            write(db, [f"p{n}" for n in range(options.patients)])
        print(f"{db.dialect}: {options.patients:,} patients with {options.events} AuditEvents each,", end=" ")
        print("one more with a growing log")
        print(f"| the patient's events | {' | '.join(ORDERS)} |")
        print(f"|---|{'---|' * len(ORDERS)}")
        patient, written = str(uuid.uuid4()), 0
        for size in sizes:
            write(db, [patient] * (size - written))
            written = size
            if db.dialect == "postgresql":
                db.run(lambda conn: conn.execute(text("ANALYZE")), write=True)
            cells = []
            for order in ORDERS.values():
                ms, total = first_page_ms(db, patient, order, options.rounds)
                cells.append(f"{ms:.2f} ms (total {total:,})")
            print(f"| {size:,} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
