"""Start servers for benchmarks as separate processes, so client and server do not share a core.

Every server here can run as several processes on one listening socket (``workers``), so that a
figure and the ceiling it is divided by are measured with the same number of server processes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]  # locust's own dependency
import psycopg
import yaml

from eqlab.commands.tokens import system_token

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_PORT = 5432
PG_URL = f"postgresql://postgres@127.0.0.1:{POSTGRES_PORT}/test"
# The demo system client that `--seed demo` registers (DEMO ONLY: its private key is published).
DEMO_SYSTEM_CLIENT = "eqlab-demo-system"
DEMO_SYSTEM_KEY = ROOT / "testplans" / "keys" / "demo-system-client.private.jwk"


@dataclass(frozen=True)
class Served:
    """A server started for a benchmark: where it answers and the process that was started."""

    base: str
    process: subprocess.Popen[bytes]

    def serving_pids(self) -> list[int]:
        """The processes that answer requests: the workers, or the process itself when it has none.

        A supervisor (``--workers`` > 1) only watches its children; profiling it shows nothing."""
        children = psutil.Process(self.process.pid).children(recursive=True)
        workers = [c.pid for c in children if "resource_tracker" not in " ".join(c.cmdline())]
        return workers or [self.process.pid]

    def cpu_seconds(self) -> dict[int, float]:
        """CPU time (user + system) used so far by each of the server's processes: the process, its
        children (the workers) and the PostgreSQL server processes holding their connections."""
        started = psutil.Process(self.process.pid)
        own = [started, *started.children(recursive=True)]
        used = {}
        for process in own + _database_backends(own):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            used[process.pid] = times.user + times.system
        return used

    def cpu_since(self, before: dict[int, float]) -> CpuUse:
        """CPU time the server's processes (``cpu_seconds``) used since ``before`` was taken."""
        after = self.cpu_seconds()
        started = psutil.Process(self.process.pid)
        own = {started.pid, *(child.pid for child in started.children(recursive=True))}
        used = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
        return CpuUse(
            server_s=sum(v for pid, v in used.items() if pid in own),
            database_s=sum(v for pid, v in used.items() if pid not in own),
        )


@dataclass(frozen=True)
class CpuUse:
    server_s: float  # the server's processes
    database_s: float  # the PostgreSQL processes holding their connections

    @property
    def total_s(self) -> float:
        return self.server_s + self.database_s


def postgres_cpu_s() -> float:
    """CPU seconds of this machine's PostgreSQL processes so far, those ended included (the server
    counts its ended backends as its children): the difference over a run is what the database spent."""
    total = 0.0
    for found in psutil.process_iter(["name"]):
        if found.info["name"] != "postgres":
            continue
        try:
            times = found.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def _database_backends(clients: list[psutil.Process]) -> list[psutil.Process]:
    """The PostgreSQL processes serving ``clients``' connections (matched by the clients' local ports)."""
    ports = set()
    for client in clients:
        try:
            connections = client.net_connections("tcp")
        except psutil.NoSuchProcess:
            continue
        ports |= {c.laddr.port for c in connections if c.raddr and c.raddr.port == POSTGRES_PORT}
    if not ports:
        return []
    backends = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] != "postgres":
            continue
        try:
            if any(c.raddr and c.raddr.port in ports for c in process.net_connections("tcp")):
                backends.append(process)
        except psutil.Error:
            continue
    return backends


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(
    cmd: list[str], probe_url: str, timeout: float = 120, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``cmd`` running until the block ends, once ``probe_url`` answers (its output shown if it exits early)."""
    with tempfile.TemporaryFile() as log:
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=environment)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{' '.join(cmd)} exited:\n{log.read().decode(errors='replace')}")
                try:
                    if httpx.get(probe_url, timeout=2).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(cmd)} did not answer in {timeout}s")
                time.sleep(0.1)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def reference_process(db_url: str, seed: str = "demo", workers: int = 1) -> Iterator[Served]:
    """``eqlab serve`` on loopback; the demo seed registers the demo accounts benchmarks sign in with."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    cmd = [sys.executable, "-m", "eqlab.cli", "serve", "--port", str(port), "--db", db_url, "--seed", seed]
    # Seeding on a busy machine (the PostgreSQL server shared) has taken minutes.
    with process([*cmd, "--workers", str(workers)], f"{base}/metadata", timeout=600) as proc:
        yield Served(base, proc)


@contextmanager
def reference_server(db_url: str, seed: str = "demo", workers: int = 1) -> Iterator[str]:
    """The FHIR base of ``eqlab serve`` on loopback (see ``reference_process``)."""
    with reference_process(db_url, seed, workers) as served:
        yield served.base


@contextmanager
def hello_process(workers: int = 1) -> Iterator[Served]:
    """The bare ASGI ceiling (benchmarks/hello_app.py) on uvicorn, ``workers`` processes on one socket."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "benchmarks.hello_app:app", "--port", str(port), "--workers", str(workers)]
    with process([*cmd, "--log-level", "warning", "--no-access-log"], f"http://127.0.0.1:{port}/hello") as proc:
        yield Served(f"http://127.0.0.1:{port}", proc)


@contextmanager
def hello_server(workers: int = 1) -> Iterator[str]:
    """The origin of the hello-world server (see ``hello_process``)."""
    with hello_process(workers) as served:
        yield served.base


@contextmanager
def sekmet_process(workers: int = 1) -> Iterator[Served]:
    """sekmet-fhir (PyPI), an independent FHIR server, on loopback with its data in a folder of its own.

    It runs as ``sekmet serve`` does (uvicorn on ``sekmet.main:app_factory``), with ``--workers``
    added; anonymous access (its default) and without its traffic log ("off for heavy load runs",
    its settings say): its fastest configuration, so a ratio against it is never flattered."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    with tempfile.TemporaryDirectory(prefix="sekmet-bench-") as folder:
        settings = {"base_url": base, "host": "127.0.0.1", "port": port, "log_inbound": False}
        (Path(folder) / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
        cmd = [sys.executable, "-m", "uvicorn", "sekmet.main:app_factory", "--factory", "--port", str(port)]
        cmd += ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
        with process(cmd, f"{base}/metadata", cwd=Path(folder)) as proc:
            yield Served(base, proc)


def demo_system_headers(base: str, scope: str = "system/*.cruds") -> dict[str, str]:
    """An Authorization header with a system token of the demo client (client credentials)."""
    return {"Authorization": f"Bearer {system_token(base, DEMO_SYSTEM_CLIENT, DEMO_SYSTEM_KEY, scope)}"}


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A throw-away schema on the local PostgreSQL server: the store URL, dropped afterwards."""
    schema = f"eqlab_bench_{uuid.uuid4().hex[:8]}"
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
