"""Fixtures for the engine's and the reference implementation's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from reference_impl.app import create_app
from reference_impl.platform import migrate_platform
from reference_impl.settings import Settings
from reference_impl.store.database import Database
from tests.support.postgres import drop_schema, new_schema_url, unavailable_reason
from tests.support.servers import sqlite_url, threaded_server
from tests.support.tokens import mint

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# Suites used as test data by the engine's tests (one deliberately kills its process): never collected here.
collect_ignore_glob = ["fixtures/*"]


@pytest.fixture(scope="session")
def postgres_unavailable() -> str | None:
    return unavailable_reason()


def _store_url(backend: str, tmp_path: Path, postgres_unavailable: str | None) -> Iterator[str]:
    if backend == "sqlite":
        yield sqlite_url(tmp_path)
        return
    if postgres_unavailable:
        pytest.skip(postgres_unavailable)
    url, schema = new_schema_url()
    try:
        yield url
    finally:
        drop_schema(schema)


@pytest.fixture
def postgres_url(tmp_path: Path, postgres_unavailable: str | None) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server (skipped with the reason when none answers)."""
    yield from _store_url("postgresql", tmp_path, postgres_unavailable)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_unavailable: str | None) -> Iterator[str]:
    """A fresh, empty store on each backend."""
    yield from _store_url(request.param, tmp_path, postgres_unavailable)


@pytest.fixture
def sqlite_db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
def platform_db(db_url: str) -> Iterator[Database]:
    """A fresh store with the platform's schema (migrated), on each backend."""
    yield from _migrated(db_url)


@pytest.fixture
def postgres_platform_db(postgres_url: str) -> Iterator[Database]:
    """A fresh store with the platform's schema (migrated), on PostgreSQL."""
    yield from _migrated(postgres_url)


def _migrated(url: str) -> Iterator[Database]:
    database = Database(url)
    migrate_platform(database)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(params=["asgi", "http"])
def fhir(request: pytest.FixtureRequest, db_url: str) -> Iterator[httpx.Client]:
    """A client of a fresh reference server, in-process over ASGI or over real HTTP on loopback.

    Its base URL is the FHIR base, so tests use relative paths: ``fhir.get("Patient/1")``. It
    carries a system token allowed every interaction (access control has tests of its own).
    """
    yield from _fhir_client(create_app(Settings(db_url=db_url)), request.param)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((transport, backend), id=f"{transport}-{backend}", marks=marks)
        for transport in ("asgi", "http")
        for backend, marks in (("sqlite", ()), ("postgresql", pytest.mark.postgres))
    ],
)
def fhir_unwritten(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_unavailable: str | None
) -> Iterator[httpx.Client]:
    """Like ``fhir``, but one server per test module, transport and backend: for tests whose requests the
    server refuses or only reads, so that a fresh store for each would hold the same (none of them writes:
    a request that did would fail its own test, and the others' counts of what is stored)."""
    transport, backend = request.param
    for url in _store_url(backend, tmp_path_factory.mktemp("store"), postgres_unavailable):
        yield from _fhir_client(create_app(Settings(db_url=url)), transport)


def _fhir_client(app: FastAPI, transport: str) -> Iterator[httpx.Client]:
    """A client of ``app`` at its FHIR base with a system token: in-process (``asgi``) or over loopback HTTP."""
    if transport == "asgi":
        with TestClient(app, base_url="http://testserver/fhir/") as client:
            client.headers["Authorization"] = f"Bearer {mint(app, 'http://testserver')}"
            yield client
    else:
        with threaded_server(app) as base, httpx.Client(base_url=base + "/", timeout=30) as client:
            client.headers["Authorization"] = f"Bearer {mint(app, base.removesuffix('/fhir'))}"
            yield client
