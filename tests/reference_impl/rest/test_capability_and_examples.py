"""The CapabilityStatement claims exactly what the server does; official R4 examples round-trip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from reference_impl.app import create_app
from reference_impl.fhir.fhirpath import evaluate
from reference_impl.fhir.indexing import ROWS_BY_TYPE
from reference_impl.fhir.searchparams import registry
from reference_impl.fhir.structure import structure
from reference_impl.fhir.validation import check_resource
from reference_impl.settings import Settings
from reference_impl.store import resources as store
from tests.reference_impl.rest.helpers import JSON_HEADERS, search
from tests.support.paths import FIXTURES
from tests.support.tokens import mint

EXAMPLES = sorted((FIXTURES / "r4-examples").glob("*.json"))
R4B_DIFFERS = {
    "Evidence",
    "EvidenceVariable",
    "EffectEvidenceSynthesis",
    "RiskEvidenceSynthesis",
    "MedicinalProduct",
    "SubstanceSpecification",
}


@pytest.fixture(scope="module")
def statement_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("capability") / "store.sqlite3"
    app = create_app(Settings(db_url=f"sqlite:///{db}"))
    with TestClient(app, base_url="http://testserver/fhir/") as client:
        client.headers["Authorization"] = f"Bearer {mint(app, 'http://testserver')}"
        yield client


@pytest.fixture(scope="module")
def statement(statement_client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = statement_client.get("metadata").json()
    return body


def test_statement_is_a_valid_r4_capability_statement(statement: dict[str, Any]) -> None:
    check_resource(statement, "CapabilityStatement")
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert statement["implementation"]["url"] == "http://testserver/fhir"
    system = {i["code"] for i in statement["rest"][0]["interaction"]}
    assert system == {"transaction", "batch", "search-system", "history-system"}


def test_statement_lists_exactly_the_served_types(statement: dict[str, Any]) -> None:
    listed = [r["type"] for r in statement["rest"][0]["resource"]]
    assert listed == list(structure().served_types)
    assert len(listed) > 120
    assert not R4B_DIFFERS & set(listed)
    assert {"Patient", "DocumentReference", "MedicationRequest", "Immunization", "AuditEvent", "Consent"} <= set(listed)


def test_every_listed_type_answers_search_and_create_validation(
    statement_client: TestClient, statement: dict[str, Any]
) -> None:
    read_only = []
    for resource in statement["rest"][0]["resource"]:
        type_name = resource["type"]
        assert statement_client.get(type_name, params={"_count": 0}).status_code == 200, type_name
        wrong = statement_client.post(
            type_name, json={"resourceType": type_name, "no-such-element": 1}, headers=JSON_HEADERS
        )
        if {"code": "create"} in resource["interaction"]:
            assert wrong.status_code == 400, type_name
        else:
            assert wrong.status_code in (403, 405), type_name
            read_only.append(type_name)
    assert read_only == ["AuditEvent"]  # written by the platform alone


def test_every_listed_search_parameter_is_accepted(statement_client: TestClient, statement: dict[str, Any]) -> None:
    checked = 0
    for resource in statement["rest"][0]["resource"]:
        for param in resource["searchParam"]:
            response = statement_client.get(resource["type"], params={f"{param['name']}:missing": "false", "_count": 0})
            assert response.status_code == 200, (resource["type"], param["name"], response.text)
            checked += 1
        for include in resource.get("searchInclude", [])[:3]:  # absent, not empty, without reference parameters
            assert statement_client.get(resource["type"], params={"_include": include}).status_code == 200
    assert checked > 2000


def test_unsupported_parameters_are_not_listed(statement: dict[str, Any]) -> None:
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    names = {p["name"] for p in patient["searchParam"]}
    assert {"family", "birthdate", "identifier", "_id", "_lastUpdated", "general-practitioner"} <= names
    assert "deceased" not in names  # its expression is beyond the supported FHIRPath subset
    assert all(
        p["type"] not in ("composite", "special") for r in statement["rest"][0]["resource"] for p in r["searchParam"]
    )


@pytest.fixture
def fhir_r4(db_url: str) -> Iterator[TestClient]:
    """The FHIR layer alone, without the national services: the official examples are R4, not the agency's
    profiles (a DocumentReference typed by LOINC, a Patient without a platform id are right here)."""
    app = create_app(Settings(db_url=db_url, services=frozenset()))
    with TestClient(app, base_url="http://testserver/fhir/") as client:
        client.headers["Authorization"] = f"Bearer {mint(app, 'http://testserver')}"
        yield client


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_official_example_round_trips_and_is_found_by_its_values(fhir_r4: TestClient, path: Path) -> None:
    fhir = fhir_r4
    example = json.loads(path.read_text(encoding="utf-8"))
    type_name, res_id = example["resourceType"], example["id"]
    if type_name == "AuditEvent":  # the platform alone writes AuditEvents (SPEC §2): stored as it stores its own
        server = fhir.app.state.fhir  # type: ignore[attr-defined]
        valid = check_resource(example)
        server.db.run(lambda conn: store.save(conn, server.registry, valid, res_id, None, "POST"), write=True)
    else:
        stored = fhir.put(f"{type_name}/{res_id}", json=example, headers=JSON_HEADERS)
        assert stored.status_code == 201, stored.text
    read = fhir.get(f"{type_name}/{res_id}", headers={"Accept": "application/fhir+json"}).json()
    assert {k: v for k, v in read.items() if k != "meta"} == {k: v for k, v in example.items() if k != "meta"}
    for code, query in _queries_for(example):
        found = search(fhir, f"{type_name}?{code}={quote(query, safe='|:/')}")
        assert res_id in [e["resource"]["id"] for e in found.get("entry", [])], (code, query)


def _queries_for(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """A search value for every index value the resource carries."""
    for code, param in registry().for_type(resource["resourceType"]).items():
        if param.is_column:
            continue
        for row in ROWS_BY_TYPE[param.type](evaluate(list(param.paths), resource, structure())):
            query = _query(param.type, row)
            if query:
                yield code, query


def _query(param_type: str, row: tuple[Any, ...]) -> str | None:
    if param_type == "string" and row[1]:
        return str(row[1])[:40]
    if param_type == "token" and row[1]:
        return f"{row[0]}|{row[1]}" if row[0] else str(row[1])
    if param_type == "reference" and row[0] and row[1]:
        return f"{row[0]}/{row[1]}"
    if param_type == "uri" and row[0]:
        return str(row[0])
    return None
