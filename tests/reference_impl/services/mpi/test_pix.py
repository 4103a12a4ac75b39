"""PIXm (ITI-83): from one identifier to the person's identifiers and records, and each error of SPEC section 3."""

from __future__ import annotations

from typing import Any

import pytest

from reference_impl.naming import LOCAL_ID_PREFIX, NATIONAL_ID, PLATFORM_ID
from reference_impl.services.mpi.demo import local_system, platform_id
from tests.reference_impl.services.mpi.conftest import Platform

MADDY = "1983081246785"


def targets(parameters: dict[str, Any]) -> tuple[set[tuple[str, str]], set[str]]:
    """(the targetIdentifiers as (system, value), the targetId references)."""
    parts = parameters.get("parameter", [])
    found = {
        (p["valueIdentifier"]["system"], p["valueIdentifier"]["value"])
        for p in parts
        if p["name"] == "targetIdentifier"
    }
    ids = {p["valueReference"]["reference"] for p in parts if p["name"] == "targetId"}
    return found, ids


def test_a_local_id_leads_to_every_identifier_and_record_of_the_person(platform: Platform) -> None:
    answer = platform.pix(f"{local_system('chl')}|CHL-0047113")
    assert answer.status_code == 200, answer.text
    assert answer.json()["resourceType"] == "Parameters"
    identifiers, records = targets(answer.json())
    assert identifiers == {
        (NATIONAL_ID, MADDY),
        (PLATFORM_ID, platform_id("maddy-schmitt")),
        (local_system("hrs"), "HRS-2209187"),
        (local_system("chem"), "CHEM-88123"),
    }
    assert records == {"Patient/mpi-maddy-chl", "Patient/mpi-maddy-hrs", "Patient/mpi-maddy-chem"}


def test_target_systems_limit_the_answer_to_their_domains(platform: Platform) -> None:
    answer = platform.pix(f"{NATIONAL_ID}|{MADDY}", local_system("hrs"), PLATFORM_ID)
    assert answer.status_code == 200, answer.text
    identifiers, records = targets(answer.json())
    assert identifiers == {(local_system("hrs"), "HRS-2209187"), (PLATFORM_ID, platform_id("maddy-schmitt"))}
    assert records == {"Patient/mpi-maddy-chl", "Patient/mpi-maddy-hrs", "Patient/mpi-maddy-chem"}
    only_chdn = platform.pix(f"{NATIONAL_ID}|{MADDY}", local_system("chdn"))
    assert only_chdn.status_code == 200 and targets(only_chdn.json()) == (set(), set()), "no record at CHDN"


def test_near_duplicates_and_twins_are_other_people(platform: Platform) -> None:
    maggy, _ = targets(platform.pix(f"{local_system('chdn')}|CHDN-551204").json())
    assert (NATIONAL_ID, MADDY) not in maggy and (PLATFORM_ID, platform_id("maggy-schmitt")) in maggy
    _, luc = targets(platform.pix(f"{local_system('chdn')}|CHDN-601877").json())
    assert luc == {"Patient/mpi-luc-hoffmann"}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ([("sourceIdentifier", "urn:oid:9.9.9|1")], 400),
        ([("sourceIdentifier", f"{LOCAL_ID_PREFIX}424242424242|1")], 400),
        ([("sourceIdentifier", "no-bar")], 400),
        ([], 400),
        ([("sourceIdentifier", f"{NATIONAL_ID}|1893120105732")], 404),
        ([("sourceIdentifier", f"{local_system('chl')}|NOPE")], 404),
        ([("sourceIdentifier", f"{NATIONAL_ID}|{MADDY}"), ("targetSystem", "urn:oid:9.9.9")], 403),
        ([("sourceIdentifier", f"{NATIONAL_ID}|{MADDY}"), ("targetSystem", f"{LOCAL_ID_PREFIX}4242")], 403),
    ],
)
def test_each_error_of_iti_83_is_an_operation_outcome(
    platform: Platform, params: list[tuple[str, str]], status: int
) -> None:
    answer = platform.client.get("Patient/$ihe-pix", params=params)
    assert answer.status_code == status, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["diagnostics"]


def test_pixm_needs_a_token_and_a_patient_sees_only_their_own_records(platform: Platform) -> None:
    assert platform.pix(f"{NATIONAL_ID}|{MADDY}").status_code == 200
    anonymous = platform.client.get(
        "Patient/$ihe-pix", params={"sourceIdentifier": f"{NATIONAL_ID}|{MADDY}"}, headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401
    patient = platform.token(subject_role="patient", patient="mpi-luc-hoffmann", scope="patient/*.rs")
    other = platform.client.get(
        "Patient/$ihe-pix", params={"sourceIdentifier": f"{NATIONAL_ID}|{MADDY}"}, headers=patient
    )
    assert other.status_code == 404, "another person's identifier is as unknown as a missing one"
    own = platform.client.get(
        "Patient/$ihe-pix", params={"sourceIdentifier": f"{local_system('chdn')}|CHDN-601877"}, headers=patient
    )
    assert own.status_code == 200 and targets(own.json())[1] == {"Patient/mpi-luc-hoffmann"}


def test_the_operation_is_in_the_capability_statement(platform: Platform) -> None:
    capability = platform.client.get("metadata").json()
    patient = next(r for r in capability["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"ihe-pix", "merge"} <= {o["name"] for o in patient["operation"]}
