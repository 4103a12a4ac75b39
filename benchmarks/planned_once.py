"""What planning costs PostgreSQL per search, and what planning a search once saves.

Each national flow's page, on a store of the national dataset, run two ways in alternating rounds:

* ``for its values``: the statement planned for its own values at every search (psycopg's unnamed
  statement), its other criteria as sub-queries the plan may lead with: how every search ran before;
* ``once``: as the store runs it now (``bounded_searches.planned_once``): a prepared statement, on which
  PostgreSQL uses one generic plan from the sixth run, led by the criterion that picks few (an
  identifier, one patient's record, a birth date), the other criteria tested on each of its matches.

Per flow and way, the median over the rounds of the CPU per search of PostgreSQL's backend and of this
process, and the wall time per search.

    python -m benchmarks.planned_once [--patients 10000] [--searches 1000] [--rounds 3] [--schema S]

The store: the national dataset at ``--patients`` loaded into a schema of its own on the test database
(``EQLAB_TEST_PG_URL``), dropped at the end; or, with ``--schema``, a store kept by
``benchmarks/national_scale.py --keep`` (``national_<patients>``), left as it is.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
import psutil
from sqlalchemy import Connection, text

from benchmarks.machine import describe
from reference_impl.fhir.query import QueryParser, SearchRequest
from reference_impl.fhir.searchparams import registry
from reference_impl.naming import NATIONAL_ID
from reference_impl.platform import migrate_platform
from reference_impl.seed.national import PRESCRIPTION_ID, NationalPlan, NationalSource
from reference_impl.store import bulk
from reference_impl.store.bounded_searches import planned_once
from reference_impl.store.compiled_shapes import CompiledShapes
from reference_impl.store.database import Database
from reference_impl.store.documents import DocumentVault
from reference_impl.store.search_sql import PAGE_COLUMNS, SearchSql
from reference_impl.store.sql_shapes import page
from reference_impl.vault import MasterKey
from tests.support.postgres import PG_URL, drop_schema, new_schema_url

MASTER = MasterKey(hashlib.sha256(b"eqlab planned-once benchmark").digest())
# The values each flow searches for, sampled from the store.
SAMPLES = {
    "patients": "SELECT target_id FROM idx_reference WHERE res_type = 'DocumentReference' AND param = 'patient' "
    "GROUP BY target_id ORDER BY target_id LIMIT :n",
    "prescriptions": "SELECT code FROM idx_token WHERE res_type = 'MedicationRequest' AND param = 'identifier' "
    "ORDER BY code LIMIT :n",
    "matricules": f"SELECT code FROM idx_token WHERE res_type = 'Patient' AND param = 'identifier' "
    f"AND system = '{NATIONAL_ID}' ORDER BY code LIMIT :n",
    "people": "SELECT content FROM resources WHERE res_type = 'Patient' ORDER BY res_id LIMIT :n",
}
Flow = Callable[[dict[str, list[str]], int], tuple[str, list[tuple[str, str]]]]
FLOWS: dict[str, Flow] = {
    "ITI-67 patient+status": lambda s, i: (
        "DocumentReference",
        [("patient", s["patients"][i]), ("status", "current")],
    ),
    "the access log": lambda s, i: ("AuditEvent", [("patient", s["patients"][i])]),
    "prescription by identifier": lambda s, i: (
        "MedicationRequest",
        [("identifier", f"{PRESCRIPTION_ID}|{s['prescriptions'][i]}")],
    ),
    "PDQm identifier": lambda s, i: ("Patient", [("identifier", f"{NATIONAL_ID}|{s['matricules'][i]}")]),
    "PDQm family+given+birthdate": lambda s, i: ("Patient", _names_and_birth_date(s["people"][i])),
    "PIXm linked records": lambda s, i: (
        "Patient",
        [("identifier", f"{NATIONAL_ID}|{s['matricules'][i]}"), ("active:not", "false")],
    ),
}


def _names_and_birth_date(patient_json: str) -> list[tuple[str, str]]:
    """A PDQm search for the person: their family name, first given name and birth date."""
    patient = orjson.loads(patient_json)
    name = patient["name"][0]
    return [("family", name["family"]), ("given", name["given"][0]), ("birthdate", patient["birthDate"])]


@contextmanager
def national_store(patients: int, schema: str | None) -> Iterator[Database]:
    """A store of the national dataset: the kept ``schema``, or ``patients`` loaded into a schema dropped after."""
    if schema is not None:
        db = Database(f"{PG_URL}?schema={schema}", DocumentVault(MASTER))
        try:
            yield db
        finally:
            db.dispose()
        return
    url, made = new_schema_url()
    db = Database(url, DocumentVault(MASTER))
    try:
        migrate_platform(db)
        source = NationalSource(NationalPlan(patients, documents_per_patient=2))
        print(f"loading {patients:,} patients of the national dataset into {made}")
        assert bulk.load(url, source, _master, workers=2).complete
        yield db
    finally:
        db.dispose()
        drop_schema(made)


def _master() -> MasterKey:
    return MASTER  # asked by each loading process: a function of the module, not a lambda


def run_pages(conn: Connection, requests: list[SearchRequest], once: bool, shapes: CompiledShapes) -> None:
    """Each request's first page, its statement planned once or for its values."""
    sql = SearchSql()
    for request in requests:
        assert request.type_name is not None
        where = sql.where(request.type_name, request, once)
        shapes.rows(conn, page(PAGE_COLUMNS, where, sql.order_by(request), request.count + 1, 0), once)


def measure(conn: Connection, searches: int, rounds: int) -> None:
    samples = {name: [str(v) for v in conn.execute(text(q), {"n": searches}).scalars()] for name, q in SAMPLES.items()}
    backend = psutil.Process(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    query = QueryParser(registry(), 50, 1000)
    print(f"{searches} searches per flow and way, {rounds} rounds, the median round per search (µs):")
    print("| flow | for its values: PostgreSQL, here, wall | once: PostgreSQL, here, wall |")
    print("|---|---|---|")
    for name, make in FLOWS.items():
        count = min(len(values) for values in samples.values())
        requests = [query.parse(*make(samples, i), strict=True) for i in range(count)]
        if not all(planned_once(r) for r in requests):
            raise SystemExit(f"{name}: not a search planned once (bounded_searches.planned_once)")
        figures: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
        shapes = CompiledShapes()
        for once in (False, True):  # compiled, prepared and past PostgreSQL's five custom plans first
            run_pages(conn, requests[:20], once, shapes)
        for _ in range(rounds):
            for once in (False, True):
                database, here, wall = _cpu_s(backend), time.process_time(), time.perf_counter()
                run_pages(conn, requests, once, shapes)
                per = 1e6 / len(requests)
                used = ((_cpu_s(backend) - database) * per, (time.process_time() - here) * per)
                figures[once].append((*used, (time.perf_counter() - wall) * per))
        cells = [
            ", ".join(f"{statistics.median(f[k] for f in figures[once]):,.0f}" for k in range(3))
            for once in (False, True)
        ]
        print(f"| {name} | {cells[0]} | {cells[1]} |")


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=1000, help="searches per flow, way and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--schema", default=None, help="a kept national store (benchmarks/national_scale.py --keep)")
    options = parser.parse_args()
    print(f"machine: {describe()}")
    with national_store(options.patients, options.schema) as db, db.transaction(write=False) as conn:
        measure(conn, options.searches, options.rounds)


if __name__ == "__main__":
    main()
