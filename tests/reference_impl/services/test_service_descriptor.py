"""A national service installed by its descriptor alone (ARCHITECTURE.md, "Adding a national service").

The service below is defined here, in the tests: an operation, a check before writes, a follow-up
after writes, an access rule, a fault, a CodeSystem, a migration and demo data. Installed through
``create_app(available=...)`` only, it works over real HTTP, inside a transaction Bundle too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect

from reference_impl.app import FAULTS, create_app
from reference_impl.auth.policy import Question, forbidden
from reference_impl.faults import declare, declared
from reference_impl.fhir.errors import FhirError, Issue
from reference_impl.platform import SERVICES
from reference_impl.rest.handler import Context, FhirResponse, Operation
from reference_impl.rest.searching import parse_for_caller
from reference_impl.services.descriptor import Service
from reference_impl.settings import Settings
from reference_impl.store.database import Database
from reference_impl.store.migrations import Migration
from reference_impl.store.resources import StoredResource
from reference_impl.store.search_run import run_search
from tests.support.servers import threaded_server
from tests.support.tokens import mint

FLAG_TEXT_UNCHECKED = declare("test-flag-text-unchecked", "Flags without a code text are stored", ("test@1",))
CODES = "http://eqlab.example/CodeSystem/flag-kinds"
_tables = MetaData()
flag_log = Table("test_flag_log", _tables, Column("n", Integer, primary_key=True), Column("flag", String(100)))
DOCTOR = {"sub": "doctor1", "subject_role": "doctor", "scope": "user/*.cruds", "fhirUser": "PractitionerRole/role-001"}


def flag(patient: str, text: str | None = "fall risk") -> dict[str, Any]:
    code: dict[str, Any] = {"coding": [{"system": CODES, "code": "fall"}]}
    if text is not None:
        code["text"] = text
    return {"resourceType": "Flag", "status": "active", "code": code, "subject": {"reference": f"Patient/{patient}"}}


@dataclass
class FlagService:
    """The test service: its parts are plain functions; ``written`` shows the follow-ups ran."""

    codesystem: Path
    written: list[tuple[str, int, bool]] = field(default_factory=list)

    def check_text(self, ctx: Context, resource: dict[str, Any]) -> None:
        if not resource.get("code", {}).get("text") and not ctx.faults.on(FLAG_TEXT_UNCHECKED):
            raise FhirError(
                422, [Issue("a Flag says what it flags in code.text", "required", expression=("Flag.code.text",))]
            )

    def after_write(self, ctx: Context, stored: StoredResource) -> None:
        ctx.conn.execute(flag_log.insert().values(flag=f"{stored.id}/{stored.version_id}"))
        self.written.append((stored.id, stored.version_id, stored.deleted))

    @staticmethod
    def no_flags_for_pat_0002(asked: Question) -> None:
        subject = ((asked.resource or {}).get("subject") or {}).get("reference")
        if asked.type_name == "Flag" and asked.kind in ("create", "update") and subject == "Patient/pat-0002":
            raise forbidden("this service keeps no flags for Patient/pat-0002", "access_denied")

    @staticmethod
    def flag_count(ctx: Context) -> FhirResponse:
        query = parse_for_caller(ctx, "Flag", [("subject", f"Patient/{ctx.res_id}")], strict=True, kind="search-type")
        total = run_search(ctx.conn, query, with_total=True).total
        return FhirResponse(
            200, {"resourceType": "Parameters", "parameter": [{"name": "flags", "valueInteger": total}]}
        )

    def service(self) -> Service:
        return Service(
            "flags",
            "Test flags",
            operations=(Operation("flag-count", self.flag_count, "Patient", instance=True),),
            checks={"Flag": (self.check_text,)},
            followers={"Flag": (self.after_write,)},
            access_rules=(self.no_flags_for_pat_0002,),
            terminology=(self.codesystem,),
            migrations=(Migration(900, "test flag log", _tables.create_all),),
            demo_data=lambda: [{**flag("pat-0003"), "id": "flag-demo"}],
        )


@dataclass
class Running:
    client: httpx.Client
    service: FlagService
    db_url: str
    app: FastAPI
    origin: str

    def token(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.app, self.origin, **claims)}"}


@contextmanager
def start(db_url: str, tmp_path: Path, faults: frozenset[str] = frozenset()) -> Iterator[Running]:
    codesystem = tmp_path / "flag-kinds.json"
    codesystem.write_text(
        json.dumps(
            {
                "resourceType": "CodeSystem",
                "id": "flag-kinds",
                "url": CODES,
                "status": "active",
                "content": "complete",
                "concept": [{"code": "fall", "display": "Fall risk"}],
            }
        )
    )
    flags = FlagService(codesystem)
    app = create_app(Settings(db_url=db_url, seed="demo", faults=faults), (*SERVICES, flags.service()))
    with threaded_server(app) as base, httpx.Client(base_url=base + "/", timeout=30) as client:
        origin = base.removesuffix("/fhir")
        client.headers.update({"Authorization": f"Bearer {mint(app, origin)}", "Accept": "application/fhir+json"})
        yield Running(client, flags, db_url, app, origin)


@pytest.fixture
def running(sqlite_db_url: str, tmp_path: Path) -> Iterator[Running]:
    with start(sqlite_db_url, tmp_path) as started:
        yield started


def post(running: Running, resource: dict[str, Any], **headers: str) -> httpx.Response:
    return running.client.post("Flag", json=resource, headers={"Content-Type": "application/fhir+json", **headers})


def test_the_check_refuses_with_422_naming_the_element_and_the_follow_up_runs(running: Running) -> None:
    refused = post(running, flag("pat-0001", text=None))
    assert refused.status_code == 422, refused.text
    assert refused.json()["issue"][0]["expression"] == ["Flag.code.text"]
    stored = post(running, flag("pat-0001"))
    assert stored.status_code == 201, stored.text
    assert (stored.json()["id"], 1, False) in running.service.written
    assert running.client.delete(f"Flag/{stored.json()['id']}").status_code == 200
    assert (stored.json()["id"], 2, True) in running.service.written


def test_the_hooks_run_for_every_entry_of_a_transaction_and_a_refusal_rolls_it_back(running: Running) -> None:
    def bundle(*flags: dict[str, Any]) -> dict[str, Any]:
        entries = [{"resource": f, "request": {"method": "POST", "url": "Flag"}} for f in flags]
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    before = len(running.service.written)
    refused = running.client.post("", json=bundle(flag("pat-0001"), flag("pat-0001", text=None)))
    assert refused.status_code == 422, refused.text
    assert "Flag.code.text" in refused.text
    found = running.client.get("Flag", params={"subject": "Patient/pat-0001"}).json()
    assert found["total"] == 0, "the first entry was rolled back with the second"
    db = Database(running.db_url)
    try:
        with db.transaction(write=False) as conn:
            logged = conn.execute(flag_log.select()).all()
    finally:
        db.dispose()
    assert len(logged) == 1, "the follow-up's row of the demo flag only: the refused transaction's rolled back"
    accepted = running.client.post("", json=bundle(flag("pat-0001"), flag("pat-0001", "wanders")))
    assert accepted.status_code == 200, accepted.text
    assert len(running.service.written) >= before + 2


def test_the_operation_runs_behind_the_token_check_and_the_access_rule_refuses(running: Running) -> None:
    assert post(running, flag("pat-0001")).status_code == 201
    counted = running.client.get("Patient/pat-0001/$flag-count")
    assert counted.status_code == 200 and counted.json()["parameter"][0]["valueInteger"] == 1, counted.text
    unauthenticated = running.client.get("Patient/pat-0001/$flag-count", headers={"Authorization": ""})
    assert unauthenticated.status_code == 401
    doctor = running.token(**DOCTOR)
    refused = running.client.post(
        "Flag", json=flag("pat-0002"), headers={**doctor, "Content-Type": "application/fhir+json"}
    )
    assert refused.status_code == 403 and "no flags for Patient/pat-0002" in refused.text
    capability = running.client.get("metadata").json()
    patient = next(r for r in capability["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"name": "flag-count", "definition": ""} in patient["operation"]


def test_terminology_migration_and_demo_data_are_installed(running: Running) -> None:
    codesystem = running.client.get("CodeSystem/flag-kinds")
    assert codesystem.status_code == 200 and codesystem.json()["url"] == CODES
    assert running.client.get("Flag/flag-demo").json()["subject"]["reference"] == "Patient/pat-0003"
    db = Database(running.db_url)
    try:
        with db.transaction(write=False) as conn:
            assert "test_flag_log" in inspect(conn).get_table_names()
    finally:
        db.dispose()


def test_the_service_fault_switches_its_check_off(sqlite_db_url: str, tmp_path: Path) -> None:
    assert declared()["test-flag-text-unchecked"].breaks == ("test@1",)
    assert "test-flag-text-unchecked" not in FAULTS, "a test's fault is not the platform's to detect"
    with start(sqlite_db_url, tmp_path, frozenset({"test-flag-text-unchecked"})) as running:
        assert post(running, flag("pat-0001", text=None)).status_code == 201


def test_a_service_left_out_by_the_settings_is_not_installed(sqlite_db_url: str, tmp_path: Path) -> None:
    flags = FlagService(tmp_path / "unused.json")
    app = create_app(Settings(db_url=sqlite_db_url, services=frozenset({"mpi"})), (*SERVICES, flags.service()))
    with threaded_server(app) as base, httpx.Client(base_url=base + "/", timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {mint(app, base.removesuffix('/fhir'))}"
        stored = client.post(
            "Flag", json=flag("pat-0001", text=None), headers={"Content-Type": "application/fhir+json"}
        )
        assert stored.status_code == 201, "no check without the service"
    with pytest.raises(ValueError, match="unknown service"):
        create_app(Settings(db_url=sqlite_db_url, services=frozenset({"nope"})))
