"""The reference client run as a child process against the real reference implementation on loopback.

The server sits behind ``Injector``, a test-only ASGI wrapper that answers chosen requests with a
canned status a given number of times (a 401, 412, 429 or 503 such as a lab's ``respond`` step
injects), so the client's recovery can be watched; everything else reaches the reference server.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_impl.app import create_app
from reference_impl.seed import accounts
from reference_impl.settings import Settings
from tests.support.paths import REPO
from tests.support.servers import sqlite_url, threaded_server

CLIENT_TIMEOUT_S = 60


@dataclass
class Canned:
    method: str
    path: str
    status: int
    headers: dict[str, str]
    times: int
    served: int = 0

    def matches(self, scope: Scope) -> bool:
        return (scope["method"], scope["path"]) == (self.method, self.path) and self.served < self.times


@dataclass
class Injector:
    """Answers the next ``times`` requests of ``method path`` with ``status`` and ``headers``."""

    app: ASGIApp
    canned: list[Canned] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, headers: dict[str, str], times: int = 1) -> Canned:
        rule = Canned(method, path, status, headers, times)
        self.canned.append(rule)
        return rule

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = next((r for r in self.canned if scope["type"] == "http" and r.matches(scope)), None)
        if rule is None:
            await self.app(scope, receive, send)
            return
        rule.served += 1
        headers = [(k.lower().encode(), v.encode()) for k, v in {**rule.headers, "content-length": "0"}.items()]
        await send({"type": "http.response.start", "status": rule.status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Lab:
    fhir_base: str
    injector: Injector
    directory: Path

    @property
    def fhir_path(self) -> str:
        return urlsplit(self.fhir_base).path

    def portal(self) -> dict[str, str]:
        """The environment for the demo portal (public, PKCE) signing in patient1."""
        return {
            "EQLAB_FHIR_BASE": self.fhir_base,
            "EQLAB_CLIENT_ID": accounts.PORTAL_CLIENT,
            "EQLAB_REDIRECT_URI": accounts.PORTAL_REDIRECTS[1],
            "EQLAB_USERNAME": "patient1",
            "EQLAB_PASSWORD": accounts.PASSWORD_PREFIX + "patient1",
        }

    def system(self) -> dict[str, str]:
        """The environment for the demo backend service (private_key_jwt ES384)."""
        return {
            "EQLAB_FHIR_BASE": self.fhir_base,
            "EQLAB_CLIENT_ID": accounts.SYSTEM_CLIENT,
            "EQLAB_CLIENT_KEY": str(REPO / accounts.SYSTEM_KEY_FILE),
        }

    def run(self, scenario: str, env: dict[str, str], *faults: str) -> Run:
        trace = self.directory / f"trace-{len(list(self.directory.glob('trace-*')))}.jsonl"
        arguments = [scenario, "--trace", str(trace), *(["--faults", ",".join(faults)] if faults else [])]
        clean_env = {k: v for k, v in os.environ.items() if not k.startswith("EQLAB_")}
        done = subprocess.run(
            [sys.executable, "-m", "reference_client", *arguments],
            env={**clean_env, **env},
            check=False,  # the exit status is what the tests judge
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
            cwd=REPO,
        )
        lines = trace.read_text(encoding="utf-8").splitlines() if trace.exists() else []
        return Run(done.returncode, done.stdout + done.stderr, [Sent(json.loads(line)) for line in lines])


@dataclass
class Sent:
    """One request the client sent, as its trace records it."""

    line: dict[str, Any]

    @property
    def method(self) -> str:
        return str(self.line["method"])

    @property
    def url(self) -> str:
        return str(self.line["url"])

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.line["body"]).items()}

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.line["headers"])

    @property
    def time(self) -> float:
        return float(self.line["time"])

    def assertion_claims(self) -> dict[str, Any]:
        payload = self.form["client_assertion"].split(".")[1]
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims


@dataclass
class Run:
    status: int
    output: str
    sent: list[Sent]

    def to(self, path_end: str, method: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.path.endswith(path_end) and method in (None, s.method)]

    @property
    def token_requests(self) -> list[Sent]:
        return self.to("/auth/token", "POST")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("reference-client")
    injector = Injector(create_app(Settings(db_url=sqlite_url(directory), seed="demo")))
    with threaded_server(injector) as fhir_base:  # type: ignore[arg-type]  # any ASGI app serves
        yield Lab(fhir_base, injector, directory)


@pytest.fixture
def injector(lab: Lab) -> Iterator[Injector]:
    yield lab.injector
    lab.injector.canned.clear()
