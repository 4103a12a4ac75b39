"""Run the reference implementation for tests: in-process over real sockets, or as a process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from reference_impl.app import create_app
from reference_impl.embedded import serve_in_thread
from reference_impl.settings import Settings
from tests.support.postgres import drop_schema, new_schema_url
from tests.support.tokens import mint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


threaded_server = serve_in_thread  # the tests' name for it


class ServerProcess:
    """``eqlab serve`` as a child process, as a user would run it."""

    def __init__(self, db_url: str, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.db_url = db_url
        self.port = port or free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self.log = Path(tempfile.mkstemp(prefix="eqlab-serve-", suffix=".log")[1])

    def start(self, timeout: float = 60) -> str:
        cmd = [sys.executable, "-m", "eqlab.cli", "serve", "--port", str(self.port), "--db", self.db_url, *self.extra]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"eqlab serve exited: {self.output()}")
            try:
                if httpx.get(f"{self.base}/metadata", timeout=2).status_code == 200:
                    return self.base
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("eqlab serve did not answer in time")

    def auth(self) -> dict[str, str]:
        """Headers with a system token for this server (minted on its store)."""
        from tests.support.tokens import mint_for_store

        return {"Authorization": f"Bearer {mint_for_store(self.db_url, f'http://127.0.0.1:{self.port}')}"}

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def sqlite_url(directory: Path, name: str = "store") -> str:
    return f"sqlite:///{directory / (name + '.sqlite3')}"


@dataclass(frozen=True)
class DemoPlatform:
    """A demo reference platform on loopback: a client of its FHIR base carrying a system token."""

    client: httpx.Client
    app: FastAPI
    origin: str


@contextmanager
def demo_platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPlatform]:
    """The demo platform on the backend ``request.param`` names ("sqlite", or "postgresql": a schema of its
    own, skipped with the reason when no server answers), for a module's tests to share."""
    schema = None
    if request.param == "sqlite":
        db_url = sqlite_url(Path(tmp_path_factory.mktemp("demo-platform")))
    else:
        reason = request.getfixturevalue("postgres_unavailable")
        if reason:
            pytest.skip(reason)
        db_url, schema = new_schema_url()
    app = create_app(Settings(db_url=db_url, seed="demo"))
    try:
        with threaded_server(app) as base, httpx.Client(base_url=base + "/", timeout=30) as client:
            origin = base.removesuffix("/fhir")
            client.headers.update({"Authorization": f"Bearer {mint(app, origin)}", "Accept": "application/fhir+json"})
            yield DemoPlatform(client, app, origin)
    finally:
        if schema is not None:
            drop_schema(schema)
