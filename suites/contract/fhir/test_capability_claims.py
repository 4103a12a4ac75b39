"""What the CapabilityStatement declares, and that every claim it makes holds (fhir@1, fhir@2)."""

from __future__ import annotations

from typing import Any

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import body_of, shown

SAMPLED_TYPES = ("Patient", "Observation", "Encounter", "Practitioner", "Organization", "DocumentReference")
TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
VALUES = {
    "string": "eqlab",
    "token": "eqlab",
    "date": "2020-01-01",
    "reference": "eqlab-none",
    "number": "1",
    "quantity": "1",
    "uri": "http://example.org/eqlab",
}
STRICT = {"Prefer": "handling=strict"}


def _statement(fhir_client: EvidenceClient) -> dict[str, Any]:
    response = fhir_client.get("metadata")
    assert response.status_code == 200, f"GET metadata answered {shown(response)}; expected 200"
    return body_of(response, "GET metadata")


def _resources(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rest = (statement.get("rest") or [{}])[0]
    return {str(r.get("type")): r for r in rest.get("resource") or [] if isinstance(r, dict)}


@pytest.mark.requirement("fhir@1")
def test_statement_declares_fhir_4_0_1_in_json(fhir_client: EvidenceClient) -> None:
    """the CapabilityStatement declares FHIR 4.0.1, JSON and a server rest mode"""
    statement = _statement(fhir_client)
    assert statement.get("resourceType") == "CapabilityStatement", (
        f"metadata returned a {statement.get('resourceType')}"
    )
    assert statement.get("fhirVersion") == "4.0.1", f"fhirVersion is {statement.get('fhirVersion')!r}, not '4.0.1'"
    formats = [str(f).lower() for f in statement.get("format") or []]
    assert any("json" in f for f in formats), f"format lists {formats}; JSON is missing"
    modes = [r.get("mode") for r in statement.get("rest") or []]
    assert "server" in modes, f"rest modes are {modes}; expected a 'server' entry"
    assert statement.get("kind") in ("instance", "capability"), f"kind is {statement.get('kind')!r}"


@pytest.mark.requirement("fhir@1")
def test_statement_lists_the_generic_interactions(fhir_client: EvidenceClient) -> None:
    """the CapabilityStatement lists the interactions SPEC section 1 requires"""
    statement = _statement(fhir_client)
    resources = _resources(statement)
    for type_name in ("Patient", "Observation"):
        assert type_name in resources, f"the CapabilityStatement does not list {type_name}"
        listed = {i.get("code") for i in resources[type_name].get("interaction") or []}
        missing = [code for code in TYPE_INTERACTIONS if code not in listed]
        assert not missing, f"{type_name} does not list the interactions {missing}"
    system = {i.get("code") for i in (statement.get("rest") or [{}])[0].get("interaction") or []}
    missing = [code for code in ("transaction", "batch") if code not in system]
    assert not missing, f"rest.interaction does not list {missing}"


def _refused(fhir_client: EvidenceClient, type_name: str, params: list[tuple[str, str]]) -> list[str]:
    """The parameters a strict search of ``type_name`` refuses: all at once first, one by one if that fails."""
    if not params or fhir_client.get(type_name, params=tuple(params), headers=STRICT).status_code == 200:
        return []
    refused = []
    for name, value in params:
        status = fhir_client.get(type_name, params=[(name, value)], headers=STRICT).status_code
        if status != 200:
            refused.append(f"{type_name}?{name}={value} ({status})")
    return refused


@pytest.mark.requirement("fhir@2")
def test_every_listed_search_parameter_is_accepted(fhir_client: EvidenceClient) -> None:
    """every search parameter listed for a sampled type is accepted, even under strict handling"""
    resources = _resources(_statement(fhir_client))
    refused = []
    for type_name in SAMPLED_TYPES:
        listed = resources.get(type_name, {}).get("searchParam") or []
        params = [(str(p.get("name")), VALUES[str(p.get("type"))]) for p in listed if str(p.get("type")) in VALUES]
        refused += _refused(fhir_client, type_name, params)
    assert not refused, f"listed search parameters that a strict search refuses: {', '.join(refused)}"


@pytest.mark.requirement("fhir@2")
def test_every_listed_include_is_accepted(fhir_client: EvidenceClient, unique: str) -> None:
    """every _include and _revinclude listed for a sampled type is accepted"""
    resources = _resources(_statement(fhir_client))
    refused = []
    for type_name in SAMPLED_TYPES:
        entry = resources.get(type_name, {})
        params = [("_id", unique)]
        params += [("_include", str(v)) for v in entry.get("searchInclude") or [] if v != "*"]
        params += [("_revinclude", str(v)) for v in entry.get("searchRevInclude") or [] if v != "*"]
        refused += [r for r in _refused(fhir_client, type_name, params) if "?_id=" not in r]
    assert not refused, f"listed includes that a search refuses: {', '.join(refused)}"


@pytest.mark.requirement("fhir@2")
def test_every_listed_type_can_be_read(fhir_client: EvidenceClient, unique: str) -> None:
    """every listed type answers a read of an unknown id with 404, not a refusal"""
    resources = _resources(_statement(fhir_client))
    wrong = []
    for type_name, entry in resources.items():
        if "read" not in {i.get("code") for i in entry.get("interaction") or []}:
            continue
        status = fhir_client.get(f"{type_name}/{unique}").status_code
        if status != 404:
            wrong.append(f"{type_name} ({status})")
    assert not wrong, f"types listed with read that do not answer 404 for an unknown id: {', '.join(wrong)}"
