"""Search parameter types and prefixes: date, number, quantity, string, token (fhir@39, fhir@40).

Each check creates a small data set tagged with its unique identifier, runs a table of queries
against it and reports every query whose result differs from what FHIR R4 prescribes.
"""

from __future__ import annotations

from typing import Any

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import SYSTEM, create, ids, observation, patient, quantity, scope, search

BIRTH_DATES = {"maddy": "1975-01-01", "maggy": "1975-01-02", "anne": "1980-05-17", "luc": "2001-12-31"}
DATE_CASES = [
    ("1975", {"maddy", "maggy"}),
    ("1975-01", {"maddy", "maggy"}),
    ("1975-01-02", {"maggy"}),
    ("eq1980-05-17", {"anne"}),
    ("ne1975", {"anne", "luc"}),
    ("gt1980-05-17", {"luc"}),
    ("ge1980-05-17", {"anne", "luc"}),
    ("lt1975-01-02", {"maddy"}),
    ("le1975-01-02", {"maddy", "maggy"}),
    ("sa1980", {"luc"}),
    ("eb1976", {"maddy", "maggy"}),
    ("2001-12-31T12:00:00Z", set()),
    ("gt2001-12-31T12:00:00Z", {"luc"}),
    ("lt1975-01-01T12:00:00Z", {"maddy"}),
]
PERIOD_CASES = [
    ("2024-03-03", set()),
    ("2024-03", {"stay"}),
    ("gt2024-03-02", {"stay", "open"}),
    ("lt2024-03-02", {"stay"}),
    ("sa2024-04-01", {"open"}),
    ("eb2024-04-01", {"stay"}),
]
QUANTITY_CASES = [
    ("60", {"low"}),
    ("100", set()),
    ("100.5", {"high"}),
    ("1e2", {"low", "high"}),
    ("1.0e2", {"high"}),
    ("gt60", {"high"}),
    ("ge60", {"low", "high"}),
    ("lt100.5", {"low"}),
    ("le100.5", {"low", "high"}),
    ("ne60", {"high"}),
    ("sa60", {"high"}),
    ("eb100.5", {"low"}),
    ("lt61|http://unitsofmeasure.org|/min", {"low"}),
    ("lt61|http://unitsofmeasure.org|mg", set()),
    ("60||/min", {"low"}),
]
NUMBER_CASES = [
    ("0.25", {"low"}),
    ("0.250", {"low"}),
    ("0.7", {"high"}),
    ("1", {"high"}),
    ("gt0.3", {"high"}),
    ("lt0.3", {"low"}),
    ("ge0.7", {"high"}),
    ("le0.25", {"low"}),
    ("ne0.25", {"high"}),
]
STRING_CASES = [
    ("family", "muller", {"anne"}),
    ("family", "MÜLLER", {"anne"}),
    ("family", "Mül", {"anne"}),
    ("family", "mu", {"anne"}),
    ("family", "uller", set()),
    ("name", "zoe", {"anne"}),
    ("name", "WEB", {"luc"}),
    ("given", "LU", {"luc"}),
]


def _mismatches(
    fhir_client: EvidenceClient,
    path: str,
    unique: str,
    made: dict[str, str],
    cases: list[tuple[str, str, set[str]]],
) -> list[str]:
    """Run ``path?identifier=<scope>&name=value`` per case; describe each result that differs."""
    by_id = {v: k for k, v in made.items()}
    wrong = []
    for name, value, expected in cases:
        found = ids(search(fhir_client, path, [("identifier", scope(unique)), (name, value)]))
        named = sorted(by_id.get(i, i) for i in found)
        if named != sorted(expected):
            wrong.append(f"{path}?{name}={value} found {named}, expected {sorted(expected)}")
    return wrong


def _tagged(resource_type: str, unique: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": resource_type, "identifier": [{"system": SYSTEM, "value": unique}], **fields}


@pytest.mark.requirement("fhir@39")
def test_date_prefixes_and_precision(fhir_client: EvidenceClient, unique: str) -> None:
    """date search honours the prefixes and the precision of the value"""
    made = {
        name: create(fhir_client, patient(unique, name.title(), birthDate=born))["id"]
        for name, born in BIRTH_DATES.items()
    }
    wrong = _mismatches(fhir_client, "Patient", unique, made, [("birthdate", v, e) for v, e in DATE_CASES])
    assert not wrong, f"birth dates {BIRTH_DATES}: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@39")
def test_date_ranges_of_periods(fhir_client: EvidenceClient, unique: str) -> None:
    """date search compares the whole period of a resource with the range of the value"""
    stay = {"start": "2024-03-01T08:00:00Z", "end": "2024-03-05T12:00:00Z"}
    made = {
        "stay": create(
            fhir_client, _tagged("Encounter", unique, status="finished", **{"class": {"code": "AMB"}}, period=stay)
        )["id"],
        "open": create(
            fhir_client,
            _tagged(
                "Encounter",
                unique,
                status="in-progress",
                **{"class": {"code": "IMP"}},
                period={"start": "2024-06-01T00:00:00Z"},
            ),
        )["id"],
    }
    wrong = _mismatches(fhir_client, "Encounter", unique, made, [("date", v, e) for v, e in PERIOD_CASES])
    assert not wrong, "stay 2024-03-01T08:00Z..2024-03-05T12:00Z, open from 2024-06-01: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@39")
def test_quantity_prefixes_and_precision(fhir_client: EvidenceClient, unique: str) -> None:
    """quantity search honours the prefixes, the precision of the value and its unit"""
    subject = f"Patient/{create(fhir_client, patient(unique))['id']}"
    made = {
        "low": create(fhir_client, observation(unique, subject, valueQuantity=quantity(60)))["id"],
        "high": create(fhir_client, observation(unique, subject, valueQuantity=quantity(100.5)))["id"],
    }
    cases = [("value-quantity", v, e) for v, e in QUANTITY_CASES]
    wrong = _mismatches(fhir_client, "Observation", unique, made, cases)
    assert not wrong, "low=60 /min, high=100.5 /min: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@39")
def test_number_prefixes_and_precision(fhir_client: EvidenceClient, unique: str) -> None:
    """number search honours the prefixes and the precision of the value"""
    subject = {"reference": f"Patient/{create(fhir_client, patient(unique))['id']}"}
    made = {
        name: create(
            fhir_client,
            _tagged("RiskAssessment", unique, status="final", subject=subject, prediction=[{"probabilityDecimal": p}]),
        )["id"]
        for name, p in (("low", 0.25), ("high", 0.7))
    }
    wrong = _mismatches(fhir_client, "RiskAssessment", unique, made, [("probability", v, e) for v, e in NUMBER_CASES])
    assert not wrong, "low=0.25, high=0.7: " + "; ".join(wrong)


def _named_people(fhir_client: EvidenceClient, unique: str) -> dict[str, str]:
    other = f"{SYSTEM}:{unique}"
    anne = patient(unique, "Müller", gender="female")
    anne["name"][0]["given"] = ["Zoë"]
    anne["identifier"].append({"system": other, "value": "A1"})
    luc = patient(unique, "Weber", gender="male")
    luc["name"][0]["given"] = ["Luc"]
    luc["identifier"].append({"system": other, "value": "B2"})
    return {"anne": create(fhir_client, anne)["id"], "luc": create(fhir_client, luc)["id"]}


@pytest.mark.requirement("fhir@40")
def test_string_matching(fhir_client: EvidenceClient, unique: str) -> None:
    """string search matches by prefix, ignoring case and accents"""
    made = _named_people(fhir_client, unique)
    wrong = _mismatches(fhir_client, "Patient", unique, made, STRING_CASES)
    assert not wrong, "anne: Zoë Müller, luc: Luc Weber: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@40")
def test_token_matching_on_identifiers_and_codes(fhir_client: EvidenceClient, unique: str) -> None:
    """token search matches system|code, code alone and system|"""
    made = _named_people(fhir_client, unique)
    other = f"{SYSTEM}:{unique}"
    cases = [
        ("identifier", f"{other}|A1", {"anne"}),
        ("identifier", "A1", {"anne"}),
        ("identifier", f"{other}|", {"anne", "luc"}),
        ("identifier", "urn:eqlab:elsewhere|A1", set()),
        ("identifier", f"{other}|a1", set()),
        ("gender", "female", {"anne"}),
        ("gender", "male", {"luc"}),
    ]
    wrong = _mismatches(fhir_client, "Patient", unique, made, cases)
    assert not wrong, f"anne: {other}|A1 female, luc: {other}|B2 male: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@40")
def test_token_matching_on_codeable_concepts(fhir_client: EvidenceClient, unique: str) -> None:
    """token search matches a coding's system|code and code"""
    subject = f"Patient/{create(fhir_client, patient(unique))['id']}"
    made = {
        "heart": create(fhir_client, observation(unique, subject, code="8867-4"))["id"],
        "height": create(fhir_client, observation(unique, subject, code="8302-2"))["id"],
    }
    cases = [
        ("code", "http://loinc.org|8867-4", {"heart"}),
        ("code", "8302-2", {"height"}),
        ("code", "http://loinc.org|", {"heart", "height"}),
        ("code", "http://snomed.info/sct|8867-4", set()),
    ]
    wrong = _mismatches(fhir_client, "Observation", unique, made, cases)
    assert not wrong, "heart: LOINC 8867-4, height: LOINC 8302-2: " + "; ".join(wrong)
