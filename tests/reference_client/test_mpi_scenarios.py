"""The reference client's patient index scenarios against the reference implementation: as an
identity source it feeds with conditional updates on its institution's local system and updates what
it fed; as a consumer it queries PIXm and PDQm well formed and follows a real merge. Each MPI fault
changes the request it names (and where the platform refuses it, the scenario fails with the reason)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.reference_client.conftest import Lab, Run, Sent
from tests.support.tokens import mint

pytestmark = pytest.mark.slow

LOCAL_PREFIX = "urn:oid:1.3.182.2.4.2."
PLATFORM_ID = "urn:oid:1.3.182.2.4.2"
PERSON = {
    "EQLAB_INPUT_MATRICULE": "1988062135286",
    "EQLAB_INPUT_FAMILY": "Kremer",
    "EQLAB_INPUT_GIVEN": "Anne",
    "EQLAB_INPUT_BIRTHDATE": "1988-06-21",
    "EQLAB_INPUT_GENDER": "female",
}
MADDY = {"EQLAB_INPUT_FAMILY": "Schmitt", "EQLAB_INPUT_GIVEN": "Maddy", "EQLAB_INPUT_BIRTHDATE": "1983-08-12"}


def source(lab: Lab, institution: str, local_id: str, **person: str) -> dict[str, str]:
    inputs = {"EQLAB_INPUT_INSTITUTION": institution, "EQLAB_INPUT_LOCAL_ID": local_id}
    return {**lab.system(), **PERSON, **inputs, **person}


def writes(lab: Lab, run: Run) -> list[Sent]:
    return [s for s in run.sent if s.path == f"{lab.fhir_path}/Patient" and s.method in ("PUT", "POST")]


def body(sent: Sent) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(sent.line["body"])
    return parsed


def records(lab: Lab, identifier: str) -> list[dict[str, Any]]:
    """The Patients the platform holds with this identifier, read with a system token of its own."""
    parts = urlsplit(lab.fhir_base)
    token = mint(lab.injector.app, f"{parts.scheme}://{parts.netloc}")  # type: ignore[arg-type]  # the FastAPI app
    answer = httpx.get(
        f"{lab.fhir_base}/Patient", params={"identifier": identifier}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


def merge(lab: Lab, source_identifier: dict[str, str], target_identifier: dict[str, str]) -> None:
    parts = urlsplit(lab.fhir_base)
    token = mint(lab.injector.app, f"{parts.scheme}://{parts.netloc}")  # type: ignore[arg-type]  # the FastAPI app
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueIdentifier": source_identifier},
            {"name": "target-patient", "valueIdentifier": target_identifier},
        ],
    }
    answer = httpx.post(
        f"{lab.fhir_base}/Patient/$merge",
        json=parameters,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    assert answer.status_code == 200, answer.text


def test_a_new_person_is_fed_with_a_conditional_update_on_the_institutions_local_system(lab: Lab) -> None:
    run = lab.run("feed-new", source(lab, "1004", "HRS-100"))
    assert (run.status, run.output.strip()) == (0, "feed-new: ok")
    [feed] = writes(lab, run)
    assert (feed.method, feed.query) == ("PUT", {"identifier": f"{LOCAL_PREFIX}1004|HRS-100"})
    sent = body(feed)
    assert sent["managingOrganization"]["identifier"] == {"system": "urn:oid:1.3.182.3.2", "value": "1004"}
    assert {"use": "usual", "system": f"{LOCAL_PREFIX}1004", "value": "HRS-100"} in sent["identifier"]
    assert (sent["name"][0]["family"], sent["birthDate"], sent["gender"]) == ("Kremer", "1988-06-21", "female")
    assert not [i for i in sent["identifier"] if i["system"] == PLATFORM_ID]


def test_a_person_fed_again_is_updated_in_place(lab: Lab) -> None:
    run = lab.run("feed-update", source(lab, "1004", "HRS-200"))
    assert run.status == 0, run.output
    assert [s.method for s in writes(lab, run)] == ["PUT", "PUT"]
    [record] = records(lab, f"{LOCAL_PREFIX}1004|HRS-200")
    assert record["telecom"][0]["value"] == "+352 20 00 00 01"


def test_a_second_institution_feeds_the_same_person_under_its_own_local_id(lab: Lab) -> None:
    assert lab.run("feed-new", source(lab, "1004", "HRS-300")).status == 0
    run = lab.run("feed-second-institution", source(lab, "1002", "CHDN-300"))
    assert run.status == 0, run.output
    assert writes(lab, run)[0].query == {"identifier": f"{LOCAL_PREFIX}1002|CHDN-300"}
    [first], [second] = records(lab, f"{LOCAL_PREFIX}1004|HRS-300"), records(lab, f"{LOCAL_PREFIX}1002|CHDN-300")
    platform_ids = [{i["value"] for i in r["identifier"] if i["system"] == PLATFORM_ID} for r in (first, second)]
    assert platform_ids[0] == platform_ids[1], "the index linked both records to one person"


def test_posts_duplicates_creates_the_person_again(lab: Lab) -> None:
    run = lab.run("feed-update", source(lab, "1004", "HRS-400"), "source-posts-duplicates")
    assert run.status == 0, run.output
    assert [s.method for s in writes(lab, run)] == ["PUT", "POST"]
    assert len(records(lab, f"{LOCAL_PREFIX}1004|HRS-400")) == 2


def test_wrong_local_system_feeds_under_the_first_sites_system(lab: Lab) -> None:
    run = lab.run("feed-new", source(lab, "1004", "HRS-500"), "source-wrong-local-system")
    assert run.status == 0, run.output
    [feed] = writes(lab, run)
    assert feed.query == {"identifier": f"{LOCAL_PREFIX}1001|HRS-500"}
    assert body(feed)["managingOrganization"]["identifier"]["value"] == "1004"


def test_an_invalid_matricule_is_sent_and_refused(lab: Lab) -> None:
    run = lab.run("feed-new", source(lab, "1004", "HRS-600"), "source-invalid-matricule")
    assert run.status == 1
    assert "feed HRS-600: HTTP 422" in run.output
    assert {"use": "official", "system": "urn:oid:1.3.182.4.4", "value": "1988062135280"} in body(writes(lab, run)[0])[
        "identifier"
    ]


def test_no_birthdate_and_invented_platform_ids_change_the_patient_sent(lab: Lab) -> None:
    run = lab.run("feed-new", source(lab, "1004", "HRS-700"), "source-no-birthdate", "source-invents-platform-id")
    assert run.status == 0, run.output
    sent = body(writes(lab, run)[0])
    assert "birthDate" not in sent
    assert [i for i in sent["identifier"] if i["system"] == PLATFORM_ID]


def test_a_source_without_its_inputs_is_told_which_are_missing(lab: Lab) -> None:
    run = lab.run("feed-new", {**lab.system(), "EQLAB_INPUT_INSTITUTION": "1004", "EQLAB_INPUT_LOCAL_ID": "HRS-0"})
    assert (run.status, run.output.strip()) == (
        2,
        "reference client: this scenario needs EQLAB_INPUT_MATRICULE, EQLAB_INPUT_FAMILY, EQLAB_INPUT_GIVEN, "
        "EQLAB_INPUT_BIRTHDATE, EQLAB_INPUT_GENDER",
    )
    assert run.sent == []


def consumer(lab: Lab, **inputs: str) -> dict[str, str]:
    return {**lab.system(), **inputs}


def fhir_sent(lab: Lab, run: Run) -> list[tuple[str, str, dict[str, str]]]:
    prefix = lab.fhir_path
    return [
        (s.method, s.path.removeprefix(prefix), s.query)
        for s in run.sent
        if s.path.startswith(prefix) and "/.well-known/" not in s.path
    ]


def test_pix_resolve_asks_with_system_and_value_then_opens_the_record(lab: Lab) -> None:
    inputs = {
        "EQLAB_INPUT_SOURCE_SYSTEM": f"{LOCAL_PREFIX}1001",
        "EQLAB_INPUT_LOCAL_ID": "CHL-0047113",
        "EQLAB_INPUT_TARGET_SYSTEM": f"{LOCAL_PREFIX}1004",
    }
    run = lab.run("pix-resolve", consumer(lab, **inputs))
    assert run.status == 0, run.output
    assert fhir_sent(lab, run) == [
        (
            "GET",
            "/Patient/$ihe-pix",
            {"sourceIdentifier": f"{LOCAL_PREFIX}1001|CHL-0047113", "targetSystem": f"{LOCAL_PREFIX}1004"},
        ),
        ("GET", "/Patient/mpi-maddy-hrs", {}),
        ("GET", "/Observation", {"subject": "Patient/mpi-maddy-hrs", "_count": "10"}),
    ]
    faulty = lab.run("pix-resolve", consumer(lab, **inputs), "consumer-pix-without-system")
    assert faulty.status == 1 and "PIXm query: HTTP 400" in faulty.output
    assert fhir_sent(lab, faulty)[0][2]["sourceIdentifier"] == "CHL-0047113"


def test_pdq_find_names_the_person_unless_fishing_or_using_element_names(lab: Lab) -> None:
    clean = lab.run("pdq-find", consumer(lab, **MADDY))
    assert clean.status == 0, clean.output
    assert fhir_sent(lab, clean)[0] == (
        "GET",
        "/Patient",
        {"family:exact": "Schmitt", "given": "Maddy", "birthdate": "1983-08-12"},
    )
    fishing = lab.run("pdq-find", consumer(lab, **MADDY), "consumer-fishing-search")
    assert fishing.status == 0, fishing.output
    assert fhir_sent(lab, fishing)[0] == ("GET", "/Patient", {"_count": "1000"})
    elements = lab.run("pdq-find", consumer(lab, **MADDY), "consumer-element-as-parameter")
    assert elements.status == 0, elements.output
    assert "birthDate" in fhir_sent(lab, elements)[0][2]
    for run in (fishing, elements):  # the same person found, whatever the query
        assert fhir_sent(lab, run)[1] == fhir_sent(lab, clean)[1]


def test_a_merged_record_is_left_for_the_one_replacing_it_unless_the_merge_is_ignored(lab: Lab) -> None:
    assert lab.run("feed-new", source(lab, "1004", "HRS-800")).status == 0
    assert lab.run("feed-second-institution", source(lab, "1002", "CHDN-800")).status == 0
    [old], [new] = records(lab, f"{LOCAL_PREFIX}1004|HRS-800"), records(lab, f"{LOCAL_PREFIX}1002|CHDN-800")
    merge(
        lab,
        {"system": f"{LOCAL_PREFIX}1004", "value": "HRS-800"},
        {"system": f"{LOCAL_PREFIX}1002", "value": "CHDN-800"},
    )
    run = lab.run("merged-patient", consumer(lab, EQLAB_INPUT_PATIENT=old["id"]))
    assert run.status == 0, run.output
    assert fhir_sent(lab, run) == [
        ("GET", f"/Patient/{old['id']}", {}),
        ("GET", f"/Patient/{new['id']}", {}),
        ("GET", "/Observation", {"subject": f"Patient/{new['id']}", "_count": "10"}),
    ]
    ignoring = lab.run("merged-patient", consumer(lab, EQLAB_INPUT_PATIENT=old["id"]), "consumer-ignores-merge")
    assert ignoring.status == 0, ignoring.output
    assert fhir_sent(lab, ignoring)[1] == ("GET", "/Observation", {"subject": f"Patient/{old['id']}", "_count": "10"})
