"""$match (ITI-119) over real HTTP with real tokens, on the demo's people: grades, options, errors, access."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from reference_impl.naming import NATIONAL_ID
from reference_impl.services.mpi.demo import demo_patients
from reference_impl.services.mpi.matching import MATCH_GRADE
from tests.reference_impl.services.mpi.conftest import FHIR_JSON, Platform

DEMO = {p["id"]: p for p in demo_patients()}
MADDY_RECORDS = {"mpi-maddy-chl", "mpi-maddy-hrs", "mpi-maddy-chem"}


def probe_of(res_id: str, identifiers: bool = True) -> dict[str, Any]:
    probe = {k: v for k, v in DEMO[res_id].items() if k != "id"}
    if not identifiers:
        del probe["identifier"]
    return probe


def match(client: httpx.Client, probe: Any, headers: dict[str, str] | None = None, **options: Any) -> httpx.Response:
    parameters: list[dict[str, Any]] = [{"name": "resource", "resource": probe}] if probe is not None else []
    for name, value in options.items():
        parameters.append({"name": name, "valueBoolean" if isinstance(value, bool) else "valueInteger": value})
    body = {"resourceType": "Parameters", "parameter": parameters}
    return client.post("Patient/$match", json=body, headers={**FHIR_JSON, **(headers or {})})


def grades(response: httpx.Response) -> list[tuple[str, str]]:
    """(id, grade) of each entry, after checking the entry's shape."""
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset" and bundle["total"] == len(bundle.get("entry", []))
    found = []
    for entry in bundle.get("entry", []):
        search = entry["search"]
        assert search["mode"] == "match" and 0 <= search["score"] <= 1
        assert entry["fullUrl"].endswith(f"/Patient/{entry['resource']['id']}")
        [extension] = search["extension"]
        assert extension["url"] == MATCH_GRADE
        found.append((entry["resource"]["id"], extension["valueCode"]))
    scores = [e["search"]["score"] for e in bundle.get("entry", [])]
    assert scores == sorted(scores, reverse=True)
    return found


def test_maggy_finds_herself_certain_and_maddy_probable(platform: Platform) -> None:
    found = dict(grades(match(platform.client, probe_of("mpi-maggy-chdn"))))
    assert found["mpi-maggy-chdn"] == "certain"
    assert {found[r] for r in MADDY_RECORDS} == {"probable"}
    without_ids = dict(grades(match(platform.client, probe_of("mpi-maggy-chdn", identifiers=False))))
    assert without_ids["mpi-maggy-chdn"] == "probable"
    assert {without_ids[r] for r in MADDY_RECORDS} == {"probable"}


def test_a_twin_is_never_certain_or_probable_for_the_other(platform: Platform) -> None:
    found = dict(grades(match(platform.client, probe_of("mpi-luc-hoffmann"))))
    assert found["mpi-luc-hoffmann"] == "certain"
    assert found.get("mpi-tom-hoffmann") in (None, "possible")


def test_only_certain_matches_answers_one_record_of_the_person(platform: Platform) -> None:
    found = grades(match(platform.client, probe_of("mpi-maddy-chl"), onlyCertainMatches=True))
    assert len(found) == 1 and found[0][0] in MADDY_RECORDS and found[0][1] == "certain"
    everything = grades(match(platform.client, probe_of("mpi-maddy-chl"), onlyCertainMatches=False))
    assert {r for r, g in everything if g == "certain"} == MADDY_RECORDS


def test_count_keeps_the_best_entries(platform: Platform) -> None:
    everything = grades(match(platform.client, probe_of("mpi-maggy-chdn")))
    assert grades(match(platform.client, probe_of("mpi-maggy-chdn"), count=2)) == everything[:2]


def test_the_matricule_alone_finds_the_person(platform: Platform) -> None:
    """the identifier block: a probe with nothing but a matricule"""
    probe = {"resourceType": "Patient", "identifier": [{"system": NATIONAL_ID, "value": "1983081246785"}]}
    assert {r for r, g in grades(match(platform.client, probe)) if g == "certain"} == MADDY_RECORDS


def test_entry_errors_still_find_the_person(platform: Platform) -> None:
    probe = probe_of("mpi-lea-thill", identifiers=False)
    probe["name"] = [{"family": "Lea", "given": ["Thil"]}]  # swapped, and a letter missing
    probe["birthDate"] = "1994-09-29"  # a digit off
    assert dict(grades(match(platform.client, probe))).get("mpi-lea-thill") == "probable"


def test_an_inactive_record_is_never_answered(platform: Platform) -> None:
    family = f"Retired{uuid.uuid4().hex[:8]}"
    retired = {
        "resourceType": "Patient",
        "active": False,
        "name": [{"family": family, "given": ["Anne"]}],
        "birthDate": "1950-01-02",
    }
    response = platform.client.post("Patient", json=retired, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    active = {**retired, "active": True}
    assert platform.client.post("Patient", json=active, headers=FHIR_JSON).status_code == 201
    found = grades(match(platform.client, {k: v for k, v in retired.items() if k != "active"}))
    assert response.json()["id"] not in {r for r, _ in found} and len(found) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Parameters"},
        {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Group"}}]},
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "resource", "resource": {"resourceType": "Patient"}},
                {"name": "count", "valueInteger": 0},
            ],
        },
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "resource", "resource": {"resourceType": "Patient"}},
                {"name": "onlyCertainMatches", "valueString": "yes"},
            ],
        },
        {"resourceType": "Patient", "name": [{"family": "Schmitt"}]},
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "resource", "resource": {"resourceType": "Patient", "gender": 7}}],
        },
    ],
    ids=["no resource", "not a Patient", "count 0", "onlyCertainMatches text", "not Parameters", "invalid Patient"],
)
def test_bad_requests_are_400_outcomes(platform: Platform, body: dict[str, Any]) -> None:
    response = platform.client.post("Patient/$match", json=body, headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_patient_token_is_refused(platform: Platform) -> None:
    patient = platform.token(
        sub="patient1", subject_role="patient", scope="patient/*.rs", patient="mpi-maddy-chl", purpose_of_use="PATRQT"
    )
    response = match(platform.client, probe_of("mpi-maddy-chl"), headers=patient)
    assert response.status_code == 403 and response.json()["resourceType"] == "OperationOutcome"


def test_each_answered_patient_is_audited_and_the_operation_listed(platform: Platform) -> None:
    found = grades(match(platform.client, probe_of("mpi-jean-weber")))
    assert ("mpi-jean-weber", "certain") in found
    events = platform.client.get("AuditEvent", params={"entity": "Patient/mpi-jean-weber", "_count": "1000"}).json()
    assert any("$match" in str(e["resource"]) for e in events.get("entry", []))
    capability = platform.client.get("metadata").json()
    patient = next(r for r in capability["rest"][0]["resource"] if r["type"] == "Patient")
    assert any(o["name"] == "match" for o in patient["operation"])
