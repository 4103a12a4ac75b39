"""Throughput of the reference FHIR server, next to the bare ASGI ceiling of the same stack.

Prints reads/s and searches/s of the reference server and of a hello-world route on the same
FastAPI + uvicorn stack (measured in one run, by the same client, as a ratio), then insert
throughput on SQLite and PostgreSQL. Servers run as separate processes on loopback. Every FHIR
request carries a system access token of the demo client, and every access to a Patient writes its
AuditEvent in the same transaction: these are the costs of a real platform (``benchmarks/auth.py``
isolates the cost of the token).

    python benchmarks/fhir_core.py [--seconds 5] [--connections 16] [--patients 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.loadgen import Request, Result, cycling_gets, run
from benchmarks.servers import demo_system_headers, hello_server, postgres_schema, reference_server

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
FAMILIES = ["Schmit", "Muller", "Weber", "Wagner", "Hoffmann", "Thill", "Schroeder", "Reuter", "Kieffer", "Kremer"]


def patient(i: int) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.3.182.2.4.2", "value": f"B{i:07d}"}],
        "name": [{"family": f"{FAMILIES[i % len(FAMILIES)]}{i}", "given": ["Anne"]}],
        "gender": "female" if i % 2 else "male",
        "birthDate": f"{1940 + i % 80}-{1 + i % 12:02d}-{1 + i % 28:02d}",
    }


def transaction(numbers: range) -> dict[str, object]:
    entries = [{"resource": patient(i), "request": {"method": "POST", "url": "Patient"}} for i in numbers]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def load(base: str, count: int, auth: dict[str, str]) -> list[str]:
    ids = []
    with httpx.Client(timeout=300, headers=auth) as client:
        for start in range(0, count, 500):
            bundle = transaction(range(start, min(count, start + 500)))
            result = client.post(base, content=orjson.dumps(bundle), headers=FHIR_JSON)
            result.raise_for_status()
            ids += [e["resource"]["id"] for e in result.json()["entry"]]
    return ids


def posts(auth: dict[str, str]) -> Iterator[Request]:
    i = 0
    while True:
        i += 1
        yield (
            "POST",
            "/fhir/Patient",
            orjson.dumps(patient(10_000_000 + i)),
            {"Content-Type": "application/fhir+json", **auth},
        )


async def inserts(db_url: str, total: int, connections: int) -> tuple[Result, float]:
    with reference_server(db_url) as base:
        auth = demo_system_headers(base)
        single = await run(base, lambda: posts(auth), connections=connections, total=total)
        body = orjson.dumps(transaction(range(1000)))
        started = time.perf_counter()
        httpx.post(base, content=body, headers=FHIR_JSON | auth, timeout=300).raise_for_status()
        bundle_rate = 1000 / (time.perf_counter() - started)
    return single, bundle_rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--inserts", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eqlab-bench-"))

    print(f"eqlab reference server, FHIR core ({args.connections} connections, {args.seconds:.0f} s per figure)")
    with hello_server() as hello_base, reference_server(f"sqlite:///{work / 'read.sqlite3'}") as base:
        auth = demo_system_headers(base)
        ids = load(base, args.patients, auth)
        hello = await run(hello_base, lambda: cycling_gets(["/hello"]), args.connections, args.seconds)
        reads = await run(
            base, lambda: cycling_gets([f"/fhir/Patient/{i}" for i in ids], auth), args.connections, args.seconds
        )
        searches = await run(
            base,
            lambda: cycling_gets([f"/fhir/Patient?family={f.lower()}1&_count=10" for f in FAMILIES], auth),
            args.connections,
            args.seconds,
        )
    print(f"\nreads and searches (SQLite, {args.patients} patients)")
    print(hello.line("bare ASGI ceiling (hello world, same stack)"))
    print(reads.line("read  GET /fhir/Patient/<id>"))
    print(searches.line("search GET /fhir/Patient?family=<prefix>"))
    print(f"  read / ceiling   = {reads.per_second / hello.per_second:.2f}")
    print(f"  search / ceiling = {searches.per_second / hello.per_second:.2f}")

    print(f"\ninserts ({args.inserts} POST /fhir/Patient over 8 connections; then one 1000-entry transaction)")
    sqlite_single, sqlite_bundle = await inserts(f"sqlite:///{work / 'write.sqlite3'}", args.inserts, 8)
    print(sqlite_single.line("SQLite     POST Patient") + f"   transaction: {sqlite_bundle:,.0f} resources/s")
    try:
        with postgres_schema() as pg_url:
            pg_single, pg_bundle = await inserts(pg_url, args.inserts, 8)
        print(pg_single.line("PostgreSQL POST Patient") + f"   transaction: {pg_bundle:,.0f} resources/s")
    except (OSError, RuntimeError, psycopg.Error) as exc:
        print(f"  PostgreSQL: not measured ({exc})")


if __name__ == "__main__":
    asyncio.run(main())
