"""Patient $merge over HTTP: the records, identifier search and PIXm afterwards, re-pointed references,
the audit trail, the refusals, and that a refusal changes nothing."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from reference_impl.naming import NATIONAL_ID
from tests.reference_impl.services.mpi.conftest import FHIR_JSON, Platform, national, person


def merge(platform: Platform, source: dict[str, Any], target: dict[str, Any], **headers: str) -> httpx.Response:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "source-patient", **source}, {"name": "target-patient", **target}],
    }
    return platform.client.post("Patient/$merge", json=parameters, headers={**FHIR_JSON, **headers})


def ref(res_id: str) -> dict[str, Any]:
    return {"valueReference": {"reference": f"Patient/{res_id}"}}


def two_records(platform: Platform, matricules: tuple[str, str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    system = platform.institution()
    source = platform.feed(person(system, "S-1", identifier=[national(matricules[0])]), system, "S-1").json()
    target = platform.feed(person(system, "T-1", identifier=[national(matricules[1])]), system, "T-1").json()
    return system, source, target


def test_a_merge_retires_the_source_moves_identifiers_and_repoints_references(platform: Platform) -> None:
    system, source, target = two_records(platform, ("1893120105732", "1980000012324"))
    subject = {"reference": f"Patient/{source['id']}"}
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Heart rate"},
        "subject": subject,
    }
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "urn:oid:1.3.182.6.1", "code": "DISCHARGE"}]},  # a DSP document type (SPEC §5)
        "subject": subject,
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(b"x").decode()}}],
    }
    referring = [
        platform.client.post(r["resourceType"], json=r, headers=FHIR_JSON).json() for r in (observation, document)
    ]
    answer = merge(platform, ref(source["id"]), {"valueIdentifier": {"system": system, "value": "T-1"}})
    assert answer.status_code == 200, answer.text
    result = next(p["resource"] for p in answer.json()["parameter"] if p["name"] == "result")
    assert result["id"] == target["id"]
    retired = platform.client.get(f"Patient/{source['id']}").json()
    assert retired["active"] is False
    assert retired["link"] == [{"other": {"reference": f"Patient/{target['id']}"}, "type": "replaced-by"}]
    assert {"other": {"reference": f"Patient/{source['id']}"}, "type": "replaces"} in result["link"]
    assert {"system": system, "value": "S-1", "use": "old"} in result["identifier"]
    found = platform.client.get("Patient", params={"identifier": f"{NATIONAL_ID}|1893120105732"}).json()
    assert target["id"] in [e["resource"]["id"] for e in found["entry"]]
    pix = platform.pix(f"{system}|S-1").json()
    assert {p["valueReference"]["reference"] for p in pix["parameter"] if p["name"] == "targetId"} == {
        f"Patient/{target['id']}"
    }
    for before in referring:
        after = platform.client.get(f"{before['resourceType']}/{before['id']}").json()
        assert after["subject"] == {"reference": f"Patient/{target['id']}"} and after["meta"]["versionId"] == "2"
    events = platform.client.get("AuditEvent", params={"patient": f"Patient/{target['id']}"}).json()["entry"]
    assert any("$merge" in e["resource"].get("outcomeDesc", "") for e in events)


def test_impossible_merges_are_refused_and_change_nothing(platform: Platform) -> None:
    _, source, target = two_records(platform, ("2003042581939", "1983081246785"))
    assert merge(platform, ref(source["id"]), ref(target["id"])).status_code == 200
    _, other, _ = two_records(platform, ("1971110258749", "2012051469331"))
    cases = [
        (ref(other["id"]), ref(source["id"]), 422),  # into an inactive patient
        (ref(other["id"]), ref(other["id"]), 422),  # into itself
        (ref(source["id"]), ref(target["id"]), 422),  # a source merged already
        (ref(other["id"]), ref("nobody-here"), 404),
        ({"valueIdentifier": {"system": NATIONAL_ID, "value": "1994092874551"}}, ref(target["id"]), 404),
        ({}, ref(target["id"]), 400),
    ]
    for given_source, given_target, status in cases:
        refused = merge(platform, given_source, given_target)
        assert refused.status_code == status, (given_source, given_target, refused.text)
        assert refused.json()["resourceType"] == "OperationOutcome"
    assert platform.client.get(f"Patient/{other['id']}").json()["meta"]["versionId"] == "1"


def test_a_patient_token_cannot_merge(platform: Platform) -> None:
    patient = platform.token(subject_role="patient", patient="mpi-luc-hoffmann", scope="patient/*.cruds")
    refused = merge(platform, ref("mpi-luc-hoffmann"), ref("mpi-tom-hoffmann"), **patient)
    assert refused.status_code == 403, refused.text
    assert platform.client.get("Patient/mpi-luc-hoffmann").json()["active"] is True
