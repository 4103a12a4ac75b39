"""Throughput of the reference FHIR server against the bare ASGI ceiling and an independent server.

One run, one client (benchmarks/loadgen.py: closed loop, keep-alive, loopback), servers as separate
processes with the same number of server processes each (``--workers``, printed in the header):

* the bare ASGI ceiling: a hello-world route on the same FastAPI + uvicorn stack;
* on SQLite and on PostgreSQL, with a system access token on every FHIR request: the audited read
  (``GET Patient/<id>``: one AuditEvent) and the audited search (``GET Patient?family=<f>1&_count=10``:
  one AuditEvent per patient on the page), each as a ratio to the ceiling (targets 0.25 and 0.10);
  the token's cost: the same public ValueSet read anonymously and with the token (no AuditEvent:
  not patient data), ratio target 0.8; and a token-checked read of directory data
  (``Organization/<id>``: unaudited too; anonymous reads of it are refused, hence the ValueSet);
* the same read and search workload, on the same patients, against sekmet-fhir (PyPI), an
  independent FHIR server, in its fastest configuration (no token, no audit, no traffic log), and
  eqlab's throughput as a multiple of it (aims: 4x reads, 20x searches);
* the insert throughput on both stores (``--inserts``, 0 to skip), and optionally a py-spy profile
  of the audited read and search (``--profile DIR``: collapsed stacks per worker, top functions printed).

    python benchmarks/fhir_core.py [--seconds 5] [--warmup 0.5] [--connections 16] [--patients 2000] [--workers 1]
                                    [--inserts 2000] [--entries 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.loadgen import Request, Result, cycling_gets, run
from benchmarks.machine import describe
from benchmarks.servers import (
    Served,
    demo_system_headers,
    hello_process,
    postgres_schema,
    reference_process,
    reference_server,
    sekmet_process,
)

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
FAMILIES = ["Schmit", "Muller", "Weber", "Wagner", "Hoffmann", "Thill", "Schroeder", "Reuter", "Kieffer", "Kremer"]
SEARCHES = [f"/fhir/Patient?family={family.lower()}1&_count=10" for family in FAMILIES]
VALUE_SET: dict[str, object] = {
    "resourceType": "ValueSet",
    "url": "https://eqlab.example/ValueSet/benchmark",
    "status": "active",
    "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "8867-4"}, {"code": "9279-1"}]}]},
}
TARGETS = {"read": 0.25, "search": 0.10, "token": 0.8, "sekmet read": 4.0, "sekmet search": 20.0}


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
    """Store ``count`` patients by transactions of 500; their ids (the same patients on every server)."""
    ids = []
    with httpx.Client(timeout=300, headers=auth) as client:
        for start in range(0, count, 500):
            bundle = transaction(range(start, min(count, start + 500)))
            result = client.post(base, content=orjson.dumps(bundle), headers=FHIR_JSON)
            result.raise_for_status()
            ids += [e["resource"]["id"] for e in result.json()["entry"]]
    return ids


def created_id(base: str, resource: dict[str, object], auth: dict[str, str]) -> str:
    answer = httpx.post(f"{base}/{resource['resourceType']}", json=resource, headers=auth, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["id"])


def first_id(base: str, resource_type: str, auth: dict[str, str]) -> str:
    answer = httpx.get(f"{base}/{resource_type}?_count=1", headers=auth | FHIR_JSON, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["entry"][0]["resource"]["id"])


@dataclass(frozen=True)
class Options:
    seconds: float
    warmup: float  # seconds of load before each figure, not counted
    connections: int
    patients: int
    workers: int
    rounds: int
    profile: Path | None


Workload = tuple[Served, Callable[[], Iterator[Request]]]


@dataclass(frozen=True)
class Figure:
    """A workload's best round, and the server's CPU time per request (its lowest round).

    Throughput depends on what else the machine runs; CPU time per request hardly does, so the
    ratios are given both ways. The server's processes are counted, and on PostgreSQL the database
    server's processes holding its connections."""

    result: Result
    cpu_us: float

    @property
    def per_second(self) -> float:
        return self.result.per_second

    def line(self, label: str) -> str:
        return f"{self.result.line(label)}   CPU {self.cpu_us:7,.0f} µs/req"


class Bench:
    """Runs every figure with the same client settings, and profiles the named ones when asked."""

    def __init__(self, options: Options) -> None:
        self.options = options

    async def best_of_rounds(self, workloads: dict[str, Workload]) -> dict[str, Figure]:
        """Each workload once per round, in turn; the best round of each.

        Interleaved rounds see the same machine: another program's burst (the cores are shared)
        lowers one round of every figure rather than all rounds of one, and the best is kept."""
        best: dict[str, Result] = {}
        cpu_us: dict[str, float] = {}
        for _ in range(self.options.rounds):
            for name, (served, requests) in workloads.items():
                await run(served.base, requests, self.options.connections, self.options.warmup, warmup=0)
                before = served.cpu_seconds()
                result = await run(served.base, requests, self.options.connections, self.options.seconds, warmup=0)
                used = served.cpu_since(before).total_s * 1e6 / max(result.requests, 1)
                cpu_us[name] = min(cpu_us.get(name, used), used)
                if name not in best or result.per_second > best[name].per_second:
                    best[name] = result
        return {name: Figure(result, cpu_us[name]) for name, result in best.items()}

    async def profile(self, served: Served, name: str, requests: Callable[[], Iterator[Request]]) -> None:
        """A separate run under py-spy (it slows the server: its figures are not the ones reported)."""
        if self.options.profile is None:
            return
        folder = self.options.profile
        folder.mkdir(parents=True, exist_ok=True)
        pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        seconds = int(self.options.seconds) + 1
        spies = []
        for pid in served.serving_pids():
            out = folder / f"{name}-{pid}.txt"
            cmd = [pyspy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--nonblocking"]
            # PostgreSQL units wait on the network in worker threads: count only what holds the GIL.
            cmd += ["--format", "raw", "-o", str(out)] + (["--gil"] if "postgresql" in name else [])
            spies.append((out, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        time.sleep(0.5)  # py-spy attaches
        await run(served.base, requests, self.options.connections, self.options.seconds)
        for _, spy in spies:
            spy.wait()
        print(f"  profile {name}: {', '.join(str(out) for out, _ in spies)}")
        for share, function in top_functions([out for out, _ in spies if out.exists()]):
            print(f"    {share:5.1f}%  {function}")


def top_functions(files: list[Path], count: int = 8) -> list[tuple[float, str]]:
    """The functions most samples were in (self time), from py-spy's collapsed stacks."""
    leaves: collections.Counter[str] = collections.Counter()
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            stack, _, samples = line.rpartition(" ")  # "outer (file:line);...;inner (path/file.py:line) N"
            function, _, where = stack.rpartition(";")[2].partition(" (")
            leaves[f"{function} ({where.rpartition('/')[2].partition(':')[0]})"] += int(samples)
    total = sum(leaves.values()) or 1
    return [(100 * n / total, function) for function, n in leaves.most_common(count)]


async def eqlab_figures(bench: Bench, db_url: str, backend: str, hello: Served) -> dict[str, Figure]:
    """The audited read and search, and the token's cost, on one store; the ceiling in the same rounds."""
    with reference_process(db_url, workers=bench.options.workers) as served:
        base = served.base
        auth = demo_system_headers(base)
        patients = [f"/fhir/Patient/{i}" for i in load(base, bench.options.patients, auth)]
        value_set = [f"/fhir/ValueSet/{created_id(base, VALUE_SET, auth)}"]
        organization = [f"/fhir/Organization/{first_id(base, 'Organization', auth)}"]
        figures = await bench.best_of_rounds(
            {
                "ceiling": (hello, lambda: cycling_gets(["/hello"])),
                "read": (served, lambda: cycling_gets(patients, auth)),
                "search": (served, lambda: cycling_gets(SEARCHES, auth)),
                "anonymous": (served, lambda: cycling_gets(value_set)),
                "token": (served, lambda: cycling_gets(value_set, auth)),
                "organization": (served, lambda: cycling_gets(organization, auth)),
            }
        )
        await bench.profile(served, f"{backend}-read", lambda: cycling_gets(patients, auth))
        await bench.profile(served, f"{backend}-search", lambda: cycling_gets(SEARCHES, auth))
    return figures


async def sekmet_figures(bench: Bench) -> dict[str, Figure]:
    with sekmet_process(bench.options.workers) as served:
        patients = [f"/fhir/Patient/{i}" for i in load(served.base, bench.options.patients, {})]
        return await bench.best_of_rounds(
            {
                "read": (served, lambda: cycling_gets(patients)),
                "search": (served, lambda: cycling_gets(SEARCHES)),
            }
        )


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


def updates(created: dict[str, Any]) -> dict[str, object]:
    """A transaction updating (PUT) every resource ``created`` answered, each changed in one element."""
    resources = [{**entry["resource"], "active": True} for entry in created["entry"]]
    entries = [{"resource": r, "request": {"method": "PUT", "url": f"Patient/{r['id']}"}} for r in resources]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def inserts(db_url: str, total: int, entries: int, workers: int) -> tuple[Result, float, float]:
    """Single POSTs, then resources per second in one transaction of ``entries`` creates (POST), then in one
    updating them all (PUT: new versions, their search index rows replaced)."""
    with reference_server(db_url, workers=workers) as base:
        auth = demo_system_headers(base)
        single = await run(base, lambda: posts(auth), connections=8, total=total)
        rates = []
        bundle = transaction(range(entries))
        for _ in ("create", "update"):
            started = time.perf_counter()
            answer = httpx.post(base, content=orjson.dumps(bundle), headers=FHIR_JSON | auth, timeout=300)
            answer.raise_for_status()
            rates.append(entries / (time.perf_counter() - started))
            bundle = updates(answer.json())
    return single, rates[0], rates[1]


def transaction_rates(creates: float, updates: float) -> str:
    return f"   transaction: {creates:,.0f} created, {updates:,.0f} updated per s"


def compare(label: str, figure: Figure, baseline: Figure, target: float | None = None) -> str:
    """``figure`` as a share of ``baseline``: by throughput (what the targets are about) and by CPU time."""
    by_throughput = figure.per_second / baseline.per_second
    by_cpu = baseline.cpu_us / figure.cpu_us if figure.cpu_us else float("nan")
    verdict = f"   target {target:g}: {'met' if by_throughput >= target else 'not met'}" if target else ""
    return f"  {label:<44} {by_throughput:6.2f}   by CPU per request {by_cpu:6.2f}{verdict}"


def print_backend(name: str, figures: dict[str, Figure]) -> None:
    print(f"\n{name}")
    print(figures["ceiling"].line("bare ASGI ceiling: hello world, same stack"))
    print(figures["read"].line("audited read   GET Patient/<id>"))
    print(figures["search"].line("audited search GET Patient?family=<f>1&_count=10"))
    print(figures["anonymous"].line("public ValueSet/<id>, no token"))
    print(figures["token"].line("public ValueSet/<id>, token (unaudited)"))
    print(figures["organization"].line("Organization/<id>, token (unaudited)"))
    print(compare("audited read / ceiling", figures["read"], figures["ceiling"], TARGETS["read"]))
    print(compare("audited search / ceiling", figures["search"], figures["ceiling"], TARGETS["search"]))
    print(compare("ValueSet read, token / anonymous", figures["token"], figures["anonymous"], TARGETS["token"]))
    print(compare("Organization read, token / anonymous ValueSet", figures["organization"], figures["anonymous"]))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per figure")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of load before each figure, not counted")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="server processes of every server measured")
    parser.add_argument("--inserts", type=int, default=2000, help="POST /fhir/Patient to time per store (0: none)")
    parser.add_argument("--entries", type=int, default=1000, help="entries of the transaction timed after the inserts")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each figure counts")
    parser.add_argument("--no-sekmet", dest="sekmet", action="store_false", help="skip the independent server")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR", help="py-spy the read and search")
    args = parser.parse_args()
    if args.workers < 1 or args.rounds < 1:
        parser.error("--workers and --rounds must be at least 1")
    bench = Bench(
        Options(args.seconds, args.warmup, args.connections, args.patients, args.workers, args.rounds, args.profile)
    )
    work = Path(tempfile.mkdtemp(prefix="eqlab-bench-"))
    processes = "process" if args.workers == 1 else "processes"
    print(
        f"FHIR core: {args.patients:,} patients; {args.connections} connections, closed loop, "
        f"{args.seconds:g} s per figure, best of {args.rounds} interleaved rounds\n"
        f"machine: {describe()}; load average {os.getloadavg()[0]:.1f} before the run\n"
        f"server processes: {args.workers} {processes} each (eqlab serve --workers {args.workers}, "
        f"hello world and sekmet-fhir on uvicorn --workers {args.workers}); the client is one more process"
    )
    backends: dict[str, dict[str, Figure]] = {}
    with hello_process(args.workers) as hello:
        backends["SQLite"] = await eqlab_figures(bench, f"sqlite:///{work / 'read.sqlite3'}", "sqlite", hello)
        print_backend("SQLite (token on every request)", backends["SQLite"])
        try:
            with postgres_schema() as pg_url:
                backends["PostgreSQL"] = await eqlab_figures(bench, pg_url, "postgresql", hello)
            print_backend("PostgreSQL (token on every request)", backends["PostgreSQL"])
        except (OSError, RuntimeError, psycopg.Error) as exc:
            print(f"\nPostgreSQL: not measured ({exc})")

    if args.sekmet:
        sekmet = await sekmet_figures(bench)
        version = importlib.metadata.version("sekmet-fhir")
        print(f"\nsekmet-fhir {version} (independent server, its SQLite store; no token, no audit, no traffic log)")
        print(sekmet["read"].line("read   GET Patient/<id>"))
        print(sekmet["search"].line("search GET Patient?family=<f>1&_count=10"))
        for backend, figures in backends.items():
            print(f"  eqlab on {backend}, as a multiple of sekmet-fhir:")
            print(compare("  audited reads", figures["read"], sekmet["read"], TARGETS["sekmet read"]))
            print(compare("  audited searches", figures["search"], sekmet["search"], TARGETS["sekmet search"]))

    print(f"\nload average after these figures: {os.getloadavg()[0]:.1f} (other programs' load lowers every figure)")
    if args.inserts:
        print(
            f"\ninserts ({args.inserts} POST /fhir/Patient over 8 connections;"
            f" then one {args.entries}-entry transaction of creates, one of updates)"
        )
        sqlite_single, *sqlite_bundles = await inserts(
            f"sqlite:///{work / 'write.sqlite3'}", args.inserts, args.entries, args.workers
        )
        print(sqlite_single.line("SQLite     POST Patient") + transaction_rates(*sqlite_bundles))
        try:
            with postgres_schema() as pg_url:
                pg_single, *pg_bundles = await inserts(pg_url, args.inserts, args.entries, args.workers)
            print(pg_single.line("PostgreSQL POST Patient") + transaction_rates(*pg_bundles))
        except (OSError, RuntimeError, psycopg.Error) as exc:
            print(f"  PostgreSQL: not measured ({exc})")


if __name__ == "__main__":
    asyncio.run(main())
