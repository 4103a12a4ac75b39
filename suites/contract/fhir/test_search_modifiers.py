"""Modifiers, OR and AND, chaining and _has (fhir@41-44)."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import SYSTEM, create, ids, observation, patient, quantity, scope, search

PEOPLE = "schmit: female, active, 1975-03; schmitz: male, no active, 1975-09; weber: no gender, inactive, 1980"
Query = list[tuple[str, str]]


def _family(fhir_client: EvidenceClient, unique: str) -> dict[str, str]:
    """The three patients PEOPLE describes; name -> id."""
    people = {
        "schmit": patient(unique, "Schmit", gender="female", active=True, birthDate="1975-03-01"),
        "schmitz": patient(unique, "Schmitz", gender="male", birthDate="1975-09-01"),
        "weber": patient(unique, "Weber", active=False, birthDate="1980-01-01"),
    }
    return {name: create(fhir_client, resource)["id"] for name, resource in people.items()}


def _mismatches(
    fhir_client: EvidenceClient, path: str, unique: str, made: dict[str, str], cases: list[tuple[Query, set[str]]]
) -> list[str]:
    by_id = {v: k for k, v in made.items()}
    wrong = []
    for query, expected in cases:
        found = ids(search(fhir_client, path, [("identifier", scope(unique)), *query]))
        named = sorted(by_id.get(i, i) for i in found)
        if named != sorted(expected):
            shown_query = "&".join(f"{k}={v}" for k, v in query)
            wrong.append(f"{path}?{shown_query} found {named}, expected {sorted(expected)}")
    return wrong


@pytest.mark.requirement("fhir@41")
def test_exact_and_contains_modifiers(fhir_client: EvidenceClient, unique: str) -> None:
    """the :exact and :contains string modifiers"""
    made = _family(fhir_client, unique)
    cases: list[tuple[Query, set[str]]] = [
        ([("family:exact", "Schmit")], {"schmit"}),
        ([("family:exact", "schmit")], set()),
        ([("family:exact", "Schmi")], set()),
        ([("family:contains", "hmit")], {"schmit", "schmitz"}),
        ([("family:contains", "MITZ")], {"schmitz"}),
        ([("family:contains", "eb")], {"weber"}),
    ]
    wrong = _mismatches(fhir_client, "Patient", unique, made, cases)
    assert not wrong, f"{PEOPLE}: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@41")
def test_missing_and_not_modifiers(fhir_client: EvidenceClient, unique: str) -> None:
    """the :missing and :not modifiers (:not includes resources without the element)"""
    made = _family(fhir_client, unique)
    cases: list[tuple[Query, set[str]]] = [
        ([("active:missing", "true")], {"schmitz"}),
        ([("active:missing", "false")], {"schmit", "weber"}),
        ([("gender:missing", "true")], {"weber"}),
        ([("birthdate:missing", "false")], {"schmit", "schmitz", "weber"}),
        ([("gender:not", "male")], {"schmit", "weber"}),
        ([("active:not", "true")], {"schmitz", "weber"}),
    ]
    wrong = _mismatches(fhir_client, "Patient", unique, made, cases)
    assert not wrong, f"{PEOPLE}: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@41")
def test_identifier_modifier(fhir_client: EvidenceClient, unique: str) -> None:
    """the :identifier modifier matches a reference by its identifier"""
    system = f"{SYSTEM}:{unique}"
    by_identifier = observation(unique, "Patient/unused")
    by_identifier["subject"] = {"identifier": {"system": system, "value": "P1"}}
    made = {
        "by-identifier": create(fhir_client, by_identifier)["id"],
        "by-reference": create(
            fhir_client, observation(unique, f"Patient/{create(fhir_client, patient(unique))['id']}")
        )["id"],
    }
    cases: list[tuple[Query, set[str]]] = [
        ([("subject:identifier", f"{system}|P1")], {"by-identifier"}),
        ([("subject:identifier", f"{system}|P2")], set()),
    ]
    wrong = _mismatches(fhir_client, "Observation", unique, made, cases)
    assert not wrong, f"subject by identifier {system}|P1 or by reference: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@42")
def test_comma_is_or_repetition_is_and(fhir_client: EvidenceClient, unique: str) -> None:
    """comma-separated values are ORed, repeated parameters ANDed"""
    made = _family(fhir_client, unique)
    cases: list[tuple[Query, set[str]]] = [
        ([("family", "schmitz,weber")], {"schmitz", "weber"}),
        ([("gender", "female,male")], {"schmit", "schmitz"}),
        ([("family", "schmit"), ("gender", "male")], {"schmitz"}),
        ([("family", "schmit"), ("family", "schmitz")], {"schmitz"}),
        ([("birthdate", "ge1975-01-01"), ("birthdate", "lt1975-06-01")], {"schmit"}),
        ([("family", "schmit,weber"), ("gender", "male,female")], {"schmit", "schmitz"}),
    ]
    wrong = _mismatches(fhir_client, "Patient", unique, made, cases)
    assert not wrong, f"{PEOPLE}: " + "; ".join(wrong)


def _observed(fhir_client: EvidenceClient, unique: str) -> tuple[dict[str, str], dict[str, str]]:
    """Two patients (kieffer, weber) with one Observation each; (patients, observations) by name."""
    system = f"{SYSTEM}:{unique}"
    patients, observations = {}, {}
    for name, code, value in (("kieffer", "8302-2", 170.0), ("weber", "8867-4", 80.0)):
        person = patient(unique, name.title())
        person["identifier"].append({"system": system, "value": name})
        patients[name] = create(fhir_client, person)["id"]
        made = observation(unique, f"Patient/{patients[name]}", code=code, valueQuantity=quantity(value))
        observations[name] = create(fhir_client, made)["id"]
    return patients, observations


OBSERVED = "kieffer: height 170 (LOINC 8302-2), weber: heart rate 80 (LOINC 8867-4)"


@pytest.mark.requirement("fhir@43")
def test_chained_parameters(fhir_client: EvidenceClient, unique: str) -> None:
    """a chained parameter selects by a property of the referenced resource"""
    _, observations = _observed(fhir_client, unique)
    system = f"{SYSTEM}:{unique}"
    cases: list[tuple[Query, set[str]]] = [
        ([("patient.family", "kieffer")], {"kieffer"}),
        ([("subject:Patient.family", "WEBER")], {"weber"}),
        ([("patient:Patient.identifier", f"{system}|kieffer")], {"kieffer"}),
        ([("subject:Patient.identifier", f"{system}|weber")], {"weber"}),
        ([("patient.family", "nobody")], set()),
        ([("patient.gender", "female")], set()),
    ]
    wrong = _mismatches(fhir_client, "Observation", unique, observations, cases)
    assert not wrong, f"{OBSERVED} (results named by patient): " + "; ".join(wrong)


@pytest.mark.requirement("fhir@44")
def test_has_selects_by_referencing_resources(fhir_client: EvidenceClient, unique: str) -> None:
    """_has selects resources by the resources that reference them"""
    patients, _ = _observed(fhir_client, unique)
    cases: list[tuple[Query, set[str]]] = [
        ([("_has:Observation:patient:code", "8302-2")], {"kieffer"}),
        ([("_has:Observation:subject:value-quantity", "gt100")], {"kieffer"}),
        ([("_has:Observation:patient:code", "http://loinc.org|8867-4")], {"weber"}),
        ([("_has:Observation:patient:code", "0000-0")], set()),
    ]
    wrong = _mismatches(fhir_client, "Patient", unique, patients, cases)
    assert not wrong, f"{OBSERVED}: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@42")
def test_or_and_and_on_tokens(fhir_client: EvidenceClient, unique: str) -> None:
    """comma ORs token values; repeated token parameters AND them"""
    _, observations = _observed(fhir_client, unique)
    cases: list[tuple[Query, set[str]]] = [
        ([("code", "http://loinc.org|8302-2,http://loinc.org|8867-4")], {"kieffer", "weber"}),
        ([("code", "8302-2,0000-0")], {"kieffer"}),
        ([("code", "8302-2"), ("code", "8867-4")], set()),
        ([("code", "8867-4"), ("value-quantity", "gt50")], {"weber"}),
    ]
    wrong = _mismatches(fhir_client, "Observation", unique, observations, cases)
    assert not wrong, f"{OBSERVED} (results named by patient): " + "; ".join(wrong)


def _managed(fhir_client: EvidenceClient, unique: str) -> tuple[dict[str, str], dict[str, str]]:
    """Two organizations, each managing one patient; (organizations, patients) by name."""
    organizations, patients = {}, {}
    for name, family in (("north", "Nord"), ("south", "Sud")):
        org = {"resourceType": "Organization", "identifier": [{"system": SYSTEM, "value": unique}], "name": name}
        organizations[name] = create(fhir_client, org)["id"]
        person = patient(unique, family, managingOrganization={"reference": f"Organization/{organizations[name]}"})
        patients[name] = create(fhir_client, person)["id"]
    return organizations, patients


@pytest.mark.requirement("fhir@43")
def test_chain_through_a_single_target_reference(fhir_client: EvidenceClient, unique: str) -> None:
    """a chain through Patient.organization selects patients by their organization's name"""
    _, patients = _managed(fhir_client, unique)
    cases: list[tuple[Query, set[str]]] = [
        ([("organization.name", "north")], {"north"}),
        ([("organization.name", "SOU")], {"south"}),
        ([("organization.name", "west")], set()),
    ]
    wrong = _mismatches(fhir_client, "Patient", unique, patients, cases)
    assert not wrong, "north manages Nord, south manages Sud (results named by organization): " + "; ".join(wrong)


@pytest.mark.requirement("fhir@44")
def test_has_through_patient_organization(fhir_client: EvidenceClient, unique: str) -> None:
    """_has selects organizations by the patients that name them"""
    organizations, _ = _managed(fhir_client, unique)
    cases: list[tuple[Query, set[str]]] = [
        ([("_has:Patient:organization:family", "nord")], {"north"}),
        ([("_has:Patient:organization:family", "sud,nord")], {"north", "south"}),
        ([("_has:Patient:organization:family", "ouest")], set()),
    ]
    wrong = _mismatches(fhir_client, "Organization", unique, organizations, cases)
    assert not wrong, "north manages Nord, south manages Sud: " + "; ".join(wrong)
