"""Start servers for benchmarks as separate processes, so client and server do not share a core."""

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
from pathlib import Path

import httpx
import psycopg

from eqlab.commands.tokens import system_token

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# The demo system client that `--seed demo` registers (DEMO ONLY: its private key is published).
DEMO_SYSTEM_CLIENT = "eqlab-demo-system"
DEMO_SYSTEM_KEY = ROOT / "testplans" / "keys" / "demo-system-client.private.jwk"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(cmd: list[str], probe_url: str, timeout: float = 120) -> Iterator[None]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
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
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def reference_server(db_url: str, seed: str = "demo") -> Iterator[str]:
    """A reference server on loopback; the demo seed registers the demo accounts benchmarks sign in with."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    cmd = [sys.executable, "-m", "eqlab.cli", "serve", "--port", str(port), "--db", db_url, "--seed", seed]
    with process(cmd, f"{base}/metadata"):
        yield base


@contextmanager
def hello_server() -> Iterator[str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.hello_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with process(cmd, f"http://127.0.0.1:{port}/hello"):
        yield f"http://127.0.0.1:{port}"


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
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]
