"""The CapabilityStatement and what it claims (fhir@1, fhir@2)."""

from __future__ import annotations

from typing import Any

import pytest

from eqlab.checks import EvidenceClient

SAMPLED_TYPES = ("Patient", "Observation", "Encounter", "Practitioner", "Organization", "DocumentReference")


@pytest.fixture
def statement(fhir_client: EvidenceClient) -> dict[str, Any]:
    response = fhir_client.get("metadata")
    assert response.status_code == 200, f"GET metadata answered {response.status_code}"
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.requirement("fhir@1")
def test_metadata_is_an_r4_capability_statement(statement: dict[str, Any]) -> None:
    """GET metadata returns a CapabilityStatement for FHIR 4.0.1."""
    assert statement.get("resourceType") == "CapabilityStatement", f"got a {statement.get('resourceType')}"
    assert str(statement.get("fhirVersion", "")).startswith("4.0"), f"fhirVersion is {statement.get('fhirVersion')}"
    assert statement.get("rest"), "the CapabilityStatement has no rest section"


@pytest.mark.requirement("fhir@2")
def test_every_listed_type_answers_a_search(statement: dict[str, Any], fhir_client: EvidenceClient) -> None:
    """Every resource type the CapabilityStatement lists answers a search."""
    listed = [r["type"] for r in statement["rest"][0].get("resource", [])]
    assert listed, "the CapabilityStatement lists no resource types"
    broken = []
    for type_name in listed:
        status = fhir_client.get(type_name, params={"_count": 0}).status_code
        if status != 200:
            broken.append(f"{type_name} ({status})")
    assert not broken, f"listed but not searchable: {', '.join(broken)}"
