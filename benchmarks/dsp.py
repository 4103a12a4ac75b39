# ruff: noqa: E402 (the platform's modules are imported once the path is set, below)
"""Throughput of the shared care record (DSP, MHD) and what sealing documents at rest costs.

Prints, on SQLite and on PostgreSQL: ITI-65 provide (a transaction of a SubmissionSet List, a
DocumentReference and a Binary of ``--kb`` KB: one document) with 1 and with 16 clients, ITI-67 find
(``DocumentReference?patient=&status=current&type=``) and ITI-68 retrieve (``Binary/<id>``, raw, in
its media type) with 16 clients, each with its p50 and p95. Every request carries a system token of the
demo client and the audit trail is written as always (there is no switch to turn it off).

Each backend is measured twice in one run: on the platform as shipped (every document sealed,
AES-256-GCM under its own key) and on a platform built, for this measurement only, with a store that
keeps documents in the clear (``ClearDocumentsForMeasurement``: no setting or command builds it). The
ratios between the two are the cost of sealing; so is the in-process figure, which times the store's
write and read of one document without HTTP around them.

    python benchmarks/dsp.py [--seconds 5] [--warmup 0.5] [--connections 16] [--kb 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import psycopg
from fastapi import FastAPI

HERE = Path(__file__).resolve().parent
# Run as a script, this folder leads the path: its fhir_core.py would shadow the fhir_core package.
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from benchmarks.loadgen import Request, Result, run
from benchmarks.servers import demo_system_headers, free_port, postgres_schema, process, reference_server
from reference_impl.app import create_app
from reference_impl.fhir.searchparams import registry
from reference_impl.platform import migrate_platform
from reference_impl.services.dsp.doctypes import SYSTEM
from reference_impl.store import resources as store
from reference_impl.store.database import Database
from reference_impl.store.documents import ClearDocumentsForMeasurement, DocumentSealing, DocumentVault
from reference_impl.vault import MasterKey

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
PATIENTS = [f"pat-{k:04d}" for k in range(1, 21)]  # the demo patients (seed/demo.py)
TYPES = ["DISCHARGE", "LABRESULT", "IMAGING", "PATSUMMARY", "CERTIFICATE", "DIAGREP", "PREVREP", "MEDREPORT"]
SUBMISSION_SET = {"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}
IN_PROCESS_DOCUMENTS = 300


def clear_documents_app() -> FastAPI:
    """``uvicorn --factory`` target: the platform of the EQLAB_* settings with documents in the clear."""
    return create_app(documents=ClearDocumentsForMeasurement())


@contextmanager
def platform(db_url: str, sealed: bool) -> Iterator[str]:
    """The platform as shipped (``eqlab serve``), or the same one keeping documents in the clear."""
    if sealed:
        with reference_server(db_url) as base:
            yield base
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.dsp:clear_documents_app", "--port", str(port)]
    cmd += ["--app-dir", str(HERE.parent)]
    cmd += ["--log-level", "info", "--no-access-log"]  # as `eqlab serve` runs uvicorn
    saved = {name: os.environ.get(name) for name in ("EQLAB_DB_URL", "EQLAB_SEED")}
    os.environ.update(EQLAB_DB_URL=db_url, EQLAB_SEED="demo")  # for the child's Settings(): `process` passes them on
    try:
        with process(cmd, f"{base}/metadata"):
            yield base
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def provide(n: int, content: bytes) -> dict[str, Any]:
    """An ITI-65 provide of one document for a demo patient: List, DocumentReference, Binary."""
    patient = PATIENTS[n % len(PATIENTS)]
    code = TYPES[n % len(TYPES)]
    doc, binary = f"urn:uuid:00000000-0000-4000-8000-{2 * n:012d}", f"urn:uuid:00000000-0000-4000-8000-{2 * n + 1:012d}"
    when = f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z"
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": SYSTEM, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "date": when,
        "content": [{"attachment": {"contentType": "application/pdf", "url": binary, "size": len(content)}}],
    }
    submission = {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "code": {"coding": [SUBMISSION_SET]},
        "subject": {"reference": f"Patient/{patient}"},
        "date": when,
        "entry": [{"item": {"reference": doc}}],
    }
    stored = {"resourceType": "Binary", "contentType": "application/pdf", "data": base64.b64encode(content).decode()}
    entries: list[tuple[str, dict[str, Any]]] = [
        ("urn:uuid:00000000-0000-4000-8000-ffffffffffff", submission),
        (doc, document),
        (binary, stored),
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
            for url, resource in entries
        ],
    }


def document_bytes(n: int, kb: int) -> bytes:
    """A PDF-like document of ``kb`` KB: incompressible, as scanned or signed documents are."""
    head = f"%PDF-1.4 benchmark document {n}\n".encode()
    return head + os.urandom(max(0, kb * 1024 - len(head)))


def provides(bodies: list[bytes], auth: dict[str, str]) -> Callable[[], Iterator[Request]]:
    def requests() -> Iterator[Request]:
        n = 0
        while True:
            n += 1
            yield ("POST", "/fhir", bodies[n % len(bodies)], {**FHIR_JSON, **auth})

    return requests


def gets(paths: list[str], accept: str, auth: dict[str, str]) -> Callable[[], Iterator[Request]]:
    def requests() -> Iterator[Request]:
        n = 0
        while True:
            n += 1
            yield ("GET", paths[(n * 7919) % len(paths)], b"", {"Accept": accept, **auth})

    return requests


def binaries(base: str, auth: dict[str, str]) -> list[str]:
    """The Binaries the provides stored, found as ITI-67 finds them (each patient's documents)."""
    paths = []
    with httpx.Client(timeout=60, headers=auth) as client:
        for patient in PATIENTS:
            found = client.get(f"{base}/DocumentReference", params={"patient": patient, "_count": "1000"})
            found.raise_for_status()
            for entry in found.json().get("entry", []):
                for content in entry["resource"]["content"]:
                    paths.append("/fhir/" + content["attachment"]["url"].split("/fhir/")[-1])
    return paths


@dataclass
class Figures:
    provide_one: Result
    provide_many: Result
    find: Result
    retrieve: Result


async def measure(sealed_url: str, clear_url: str, args: argparse.Namespace) -> tuple[Figures, Figures]:
    """Both platforms side by side, each figure taken on one then the other: a machine busier for a while
    weighs on both alike."""
    bodies = [orjson.dumps(provide(n, document_bytes(n, args.kb))) for n in range(64)]
    finds = [
        "/fhir/DocumentReference?" + urlencode({"patient": p, "status": "current", "type": f"{SYSTEM}|{t}"})
        for p in PATIENTS
        for t in TYPES
    ]
    with platform(sealed_url, sealed=True) as sealed_base, platform(clear_url, sealed=False) as clear_base:
        bases = (sealed_base, clear_base)
        auths = [demo_system_headers(base) for base in bases]
        figures: list[list[Result]] = [[], []]
        for clients in (1, args.connections):
            for k, base in enumerate(bases):
                figures[k].append(
                    await run(base, provides(bodies, auths[k]), clients, args.seconds, warmup=args.warmup)
                )
        for k, base in enumerate(bases):
            figures[k].append(
                await run(
                    base,
                    gets(finds, "application/fhir+json", auths[k]),
                    args.connections,
                    args.seconds,
                    warmup=args.warmup,
                )
            )
        for k, base in enumerate(bases):
            retrieves = gets(binaries(base, auths[k]), "application/pdf", auths[k])
            figures[k].append(await run(base, retrieves, args.connections, args.seconds, warmup=args.warmup))
    sealed, clear = (Figures(*f) for f in figures)
    return sealed, clear


def line(label: str, result: Result) -> str:
    latency = f"p50 {result.median_ms:6.2f} ms   p95 {result.percentile(0.95):7.2f} ms"
    return f"  {label:<46} {result.per_second:>9,.0f}/s   {latency}   not 2xx {result.unsuccessful}"


def report(backend: str, sealed: Figures, clear: Figures, connections: int) -> None:
    for name, figures in (("sealed", sealed), ("clear ", clear)):
        print(line(f"{backend} {name} ITI-65 provide, 1 client", figures.provide_one))
        print(line(f"{backend} {name} ITI-65 provide, {connections} clients", figures.provide_many))
        print(line(f"{backend} {name} ITI-67 find, {connections} clients", figures.find))
        print(line(f"{backend} {name} ITI-68 retrieve, {connections} clients", figures.retrieve))
    pairs = [
        ("provide, 1 client", sealed.provide_one, clear.provide_one),
        (f"provide, {connections} clients", sealed.provide_many, clear.provide_many),
        ("find", sealed.find, clear.find),
        ("retrieve", sealed.retrieve, clear.retrieve),
    ]
    ratios = ", ".join(f"{label} {s.per_second / c.per_second:.2f}" for label, s, c in pairs)
    print(f"  {backend} sealed / clear throughput: {ratios}")


@dataclass
class InProcess:
    """Median microseconds to store one document (write) and to read it back (read)."""

    sealed_write: float
    sealed_read: float
    clear_write: float
    clear_read: float


def in_process_cost(kb: int) -> InProcess:
    """The store's own cost per Binary of ``kb`` KB, sealed and clear, taken in turns (no HTTP around it)."""
    params = registry()
    binary = {"resourceType": "Binary", "contentType": "application/pdf"}
    binary["data"] = base64.b64encode(document_bytes(0, kb)).decode()
    sealings: list[DocumentSealing] = [DocumentVault(MasterKey(os.urandom(32))), ClearDocumentsForMeasurement()]
    times: list[tuple[list[float], list[float]]] = [([], []), ([], [])]
    with tempfile.TemporaryDirectory(prefix="eqlab-bench-dsp-") as work:
        stores = [Database(f"sqlite:///{Path(work) / str(k)}.sqlite3", s) for k, s in enumerate(sealings)]
        try:
            for db in stores:
                migrate_platform(db)
            for n in range(IN_PROCESS_DOCUMENTS):
                for db, (writes, reads) in zip(stores, times, strict=True):
                    started = time.perf_counter()
                    with db.transaction(write=True) as conn:
                        store.save(conn, params, binary, f"b{n}", None, "PUT")
                    written = time.perf_counter()
                    with db.transaction(write=False) as conn:
                        store.current(conn, "Binary", f"b{n}")
                    writes.append((written - started) * 1e6)
                    reads.append((time.perf_counter() - written) * 1e6)
        finally:
            for db in stores:
                db.dispose()
    (sealed_writes, sealed_reads), (clear_writes, clear_reads) = times
    medians = map(statistics.median, (sealed_writes, sealed_reads, clear_writes, clear_reads))
    return InProcess(*medians)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of load before each figure, not counted")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--kb", type=int, default=20, help="size of each provided document")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eqlab-bench-dsp-"))

    print(
        f"eqlab reference server, shared care record (documents of {args.kb} KB, {args.seconds:g} s per figure, "
        "system token, audit on)"
    )
    sealed, clear = await measure(f"sqlite:///{work / 'sealed.sqlite3'}", f"sqlite:///{work / 'clear.sqlite3'}", args)
    report("SQLite", sealed, clear, args.connections)
    try:
        with postgres_schema() as sealed_url, postgres_schema() as clear_url:
            pg_sealed, pg_clear = await measure(sealed_url, clear_url, args)
        report("PostgreSQL", pg_sealed, pg_clear, args.connections)
    except (OSError, RuntimeError, psycopg.Error) as exc:
        print(f"  PostgreSQL: not measured ({exc})")
    cost = in_process_cost(args.kb)
    print(f"\nin process (SQLite, the store alone, a {args.kb} KB Binary, median of {IN_PROCESS_DOCUMENTS}):")
    print(f"  write: sealed {cost.sealed_write:,.0f} µs, clear {cost.clear_write:,.0f} µs")
    print(f"  read:  sealed {cost.sealed_read:,.0f} µs, clear {cost.clear_read:,.0f} µs")
    print(
        f"  sealing costs {cost.sealed_write - cost.clear_write:,.0f} µs per document written "
        f"and {cost.sealed_read - cost.clear_read:,.0f} µs per document read"
    )


if __name__ == "__main__":
    asyncio.run(main())
