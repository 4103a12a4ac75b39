"""Do reads wait behind a bulk writer? A large transaction Bundle and audited reads, at the same time.

A client posts one transaction Bundle of ``--entries`` entries (Patients and their Observations)
while another reads ``Patient/pat-0002`` every ``--interval`` seconds with a system token (each
read writes its AuditEvent in its own transaction, so it needs the store's writer too). Printed:
how long the transaction took, and the reads' latency while it ran (median, p95, max, and how many
waited longer than a second). Then the same bundle one entry over the server's transaction limit,
which is refused at once (413).

    python benchmarks/bulk_writer.py [--db sqlite|postgresql] [--entries 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.servers import demo_system_headers, postgres_schema, reference_server
from reference_impl.settings import Settings

MAX_ENTRIES = Settings.model_fields["max_transaction_entries"].default


def bundle(entries: int) -> dict[str, object]:
    items: list[dict[str, object]] = []
    for n in range(entries // 2 + entries % 2):
        full_url = f"urn:uuid:00000000-0000-4000-8000-{n:012d}"
        patient = {"resourceType": "Patient", "name": [{"family": f"Bulk{n}", "given": ["Anne"]}], "gender": "female"}
        items.append({"fullUrl": full_url, "resource": patient, "request": {"method": "POST", "url": "Patient"}})
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": full_url},
            "valueQuantity": {"value": 60 + n % 40, "unit": "/min"},
        }
        items.append({"resource": observation, "request": {"method": "POST", "url": "Observation"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": items[:entries]}


def measure(base: str, entries: int, interval: float) -> dict[str, float]:
    headers = demo_system_headers(base)
    body = bundle(entries)
    done = threading.Event()
    outcome: dict[str, float] = {}

    def write() -> None:
        started = time.perf_counter()
        with httpx.Client(timeout=900) as client:
            response = client.post(base, json=body, headers={**headers, "Content-Type": "application/fhir+json"})
        outcome["transaction_s"] = time.perf_counter() - started
        outcome["transaction_status"] = response.status_code
        done.set()

    latencies: list[float] = []
    statuses: set[int] = set()
    writer = threading.Thread(target=write)
    with httpx.Client(timeout=900) as reader:
        reader.get(f"{base}/Patient/pat-0002", headers=headers)  # connection and caches warm
        writer.start()
        time.sleep(interval)
        while not done.is_set():
            started = time.perf_counter()
            statuses.add(reader.get(f"{base}/Patient/pat-0002", headers=headers).status_code)
            latencies.append(time.perf_counter() - started)
            time.sleep(interval)
    writer.join()
    ordered = sorted(latencies) or [0.0]
    outcome |= {
        "reads": len(latencies),
        "read_median_ms": statistics.median(ordered) * 1000,
        "read_p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
        "read_max_ms": ordered[-1] * 1000,
        "reads_over_1s": sum(1 for x in latencies if x > 1.0),
        "read_errors": len(statuses - {200}),
    }
    return outcome


def over_the_limit(base: str) -> tuple[int, int, float]:
    """A transaction one entry over the server's (default) limit: (entries, status, seconds)."""
    entries = MAX_ENTRIES + 1
    headers = {**demo_system_headers(base), "Content-Type": "application/fhir+json"}
    started = time.perf_counter()
    response = httpx.post(base, json=bundle(entries), headers=headers, timeout=900)
    return entries, response.status_code, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--entries", type=int, default=MAX_ENTRIES, help="at most the server's maximum")
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, postgres_schema() as pg_url:
        db_url = f"sqlite:///{folder}/bulk.sqlite3" if args.db == "sqlite" else pg_url
        with reference_server(db_url) as base:
            found = measure(base, args.entries, args.interval)
            over, limit_status, limit_s = over_the_limit(base)
    print(f"store: {args.db}; one transaction of {args.entries} entries, audited reads every {args.interval}s")
    print(f"  transaction: {found['transaction_s']:.1f} s, status {found['transaction_status']:.0f}")
    print(
        f"  {found['reads']:.0f} reads during it: median {found['read_median_ms']:.0f} ms, "
        f"p95 {found['read_p95_ms']:.0f} ms, max {found['read_max_ms']:.0f} ms; "
        f"{found['reads_over_1s']:.0f} waited over 1 s; {found['read_errors']:.0f} non-200"
    )
    print(f"  {over} entries: status {limit_status} after {limit_s:.2f} s")


if __name__ == "__main__":
    main()
