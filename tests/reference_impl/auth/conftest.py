"""A reference server with the demo seed, over real HTTP, on SQLite and on PostgreSQL.

One server per backend (and test worker), shared: tests never depend on each other's state (each
makes its own codes, tokens, clients and request ids), and the AuditEvent of a refusal is found by
the request's own ``X-Request-Id`` (the server records it in the event), so tests cannot confuse
each other's events. Tests that need a server of their own (other settings, restarts) make one.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, select

from reference_impl.app import create_app
from reference_impl.auth.service import AuthService
from reference_impl.auth.web import service_for
from reference_impl.settings import Settings
from reference_impl.store.schema import resources
from tests.support.postgres import drop_schema, new_schema_url, unavailable_reason
from tests.support.servers import sqlite_url, threaded_server

T = TypeVar("T")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
TEST_MASTER_KEY = base64.b64encode(b"eqlab auth tests: not a secret!!").decode()  # 32 bytes


@dataclass
class AuthLab:
    app: FastAPI
    db_url: str
    fhir_base: str

    @property
    def origin(self) -> str:
        return self.fhir_base.removesuffix("/fhir")

    def url(self, path: str) -> str:
        return f"{self.origin}/auth/{path}"

    @property
    def token_url(self) -> str:
        return self.url("token")

    @property
    def service(self) -> AuthService:
        return service_for(self.app)

    def run(self, work: Callable[[Connection], T]) -> T:
        """A unit of work in the server's own store (same process, same database)."""
        result: T = self.app.state.fhir.db.run(work, write=True)
        return result

    def audit_events(self, request_id: str) -> list[dict[str, Any]]:
        """The AuditEvents recorded for the request sent with ``X-Request-Id: request_id``."""
        marker = f"X-Request-Id {request_id}"

        def work(conn: Connection) -> list[str]:
            query = select(resources.c.content).where(resources.c.res_type == "AuditEvent")
            return [row[0] for row in conn.execute(query) if row[0] and marker in row[0]]

        return [json.loads(content) for content in self.run(work)]

    def refusal_event(self, request_id: str, subtype: str) -> dict[str, Any]:
        """The one AuditEvent of a refused attempt: outcome 4, a login event of ``subtype``."""
        events = self.audit_events(request_id)
        assert len(events) == 1, f"expected one AuditEvent for {request_id}, found {len(events)}"
        event = events[0]
        assert event["outcome"] == "4", event
        assert event["type"]["code"] == "110114", event
        assert event["subtype"][0]["code"] == subtype, event
        assert event["outcomeDesc"], event
        return event


def new_request_id() -> str:
    return f"test-{uuid.uuid4().hex}"


def tagged(request_id: str) -> dict[str, str]:
    return {"X-Request-Id": request_id}


def make_app(db_url: str, **settings: Any) -> FastAPI:
    return create_app(Settings(db_url=db_url, seed="demo", master_key=TEST_MASTER_KEY, **settings))


def _store(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield sqlite_url(directory)
        return
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    url, schema = new_schema_url()
    try:
        yield url
    finally:
        drop_schema(schema)


@pytest.fixture(scope="session", params=BACKENDS)
def auth_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _store(request.param, tmp_path_factory.mktemp("auth"))


@pytest.fixture(scope="session")
def lab(auth_db_url: str) -> Iterator[AuthLab]:
    app = make_app(auth_db_url)
    with threaded_server(app) as fhir_base:
        yield AuthLab(app, auth_db_url, fhir_base)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain client (no cookies kept between tests): a browser or an application."""
    with httpx.Client(timeout=30) as client:
        yield client
