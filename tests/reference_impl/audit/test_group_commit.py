"""The audit log's group commit: reads waiting at once share one commit, a lone read is committed
at once, and no read is answered when its group's commit fails."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, select

from reference_impl.app import create_app
from reference_impl.audit.group_commit import AuditLog
from reference_impl.fhir import index_row_memo
from reference_impl.fhir.searchparams import registry
from reference_impl.rest.routing import FhirRequest
from reference_impl.settings import Settings
from reference_impl.store.schema import INDEX_TABLES, INDEX_VALUE_COLUMNS, resources
from tests.support.tokens import mint

BASE = "http://platform.test/fhir"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    store_file = tmp_path_factory.mktemp("group-commit") / "store.sqlite3"
    return create_app(Settings(db_url=f"sqlite:///{store_file}", seed="demo"))


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The number of AuditEvents each group commit writes."""
    sizes: list[int] = []
    write = AuditLog._write

    def counted(self: AuditLog, conn: Connection, records: list[Any]) -> None:
        sizes.append(len(records))
        write(self, conn, records)

    monkeypatch.setattr(AuditLog, "_write", counted)
    yield sizes


def read(app: FastAPI, token: str, patient: str, request_id: str) -> FhirRequest:
    headers = {"authorization": f"Bearer {token}", "accept": "application/fhir+json"}
    return FhirRequest("GET", f"Patient/{patient}", (), headers, b"", BASE, request_id)


def reads(app: FastAPI, count: int, prefix: str) -> list[int]:
    """``count`` reads sent at once; their statuses (an exception is a 500)."""

    async def run() -> list[int]:
        async with app.router.lifespan_context(app):
            token = mint(app, "http://platform.test")
            server = app.state.fhir
            requests = [read(app, token, f"pat-{1 + n % 40:04d}", f"{prefix}-{n}") for n in range(count)]
            answers = await asyncio.gather(*(server.handle(r) for r in requests), return_exceptions=True)
            return [a.status if not isinstance(a, BaseException) else 500 for a in answers]

    return asyncio.run(run())


def audited(app: FastAPI, prefix: str) -> int:
    def work(conn: Connection) -> int:
        events = conn.execute(select(resources.c.content).where(resources.c.res_type == "AuditEvent")).scalars()
        return sum(f"X-Request-Id {prefix}-" in content for content in events)

    return int(app.state.fhir.db.run(work, write=False))


def test_reads_waiting_at_once_share_commits_and_each_has_its_event(app: FastAPI, commits: list[int]) -> None:
    assert reads(app, 32, "together") == [200] * 32
    assert sum(commits) == 32 and len(commits) < 32, commits
    assert audited(app, "together") == 32


def test_a_lone_read_is_committed_before_it_is_answered(app: FastAPI, commits: list[int]) -> None:
    assert reads(app, 1, "alone") == [200]
    assert commits == [1]
    assert audited(app, "alone") == 1


def test_each_event_is_indexed_as_the_registry_indexes_it(app: FastAPI) -> None:
    # Groups write their events' index rows from a memo shared by the process (fhir/index_row_memo.py):
    # the rows stored are exactly those the registry evaluates, for events whose values repeat (the
    # client, the kind of access) and for those whose values do not (the patient, the request id).
    assert reads(app, 2 * index_row_memo.TRIAL, "indexed") == [200] * 2 * index_row_memo.TRIAL
    search = registry()

    def work(conn: Connection) -> list[tuple[str, Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]]:
        stored: dict[str, Counter[tuple[Any, ...]]] = defaultdict(Counter)
        for kind, table in INDEX_TABLES.items():
            columns = [table.c[name] for name in ("res_id", "param", *INDEX_VALUE_COLUMNS[kind])]
            for res_id, *row in conn.execute(select(*columns).where(table.c.res_type == "AuditEvent")):
                stored[res_id][(kind, *row)] += 1
        events = conn.execute(
            select(resources.c.res_id, resources.c.content).where(resources.c.res_type == "AuditEvent")
        )
        compared = []
        for res_id, content in events:
            rows = search.index_rows(orjson.loads(content))
            expected = Counter((kind, code, *row) for kind, found in rows.items() for code, row in found)
            compared.append((res_id, stored[res_id], expected))
        return compared

    compared = app.state.fhir.db.run(work, write=False)
    assert len(compared) >= 2 * index_row_memo.TRIAL
    differing = [res_id for res_id, stored, expected in compared if stored != expected]
    assert not differing, f"{len(differing)} events indexed otherwise than the registry, e.g. {differing[:3]}"


def test_no_read_is_answered_when_its_group_commit_fails(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(self: AuditLog, conn: Connection, records: list[Any]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(AuditLog, "_write", failing)
    assert reads(app, 8, "failing") == [500] * 8
    assert audited(app, "failing") == 0
