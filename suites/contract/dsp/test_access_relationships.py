"""Who reads and changes a record (dsp@30-32, dsp@42-46): the patient, professionals with a care relationship
(treating, declared by themselves; referent, designated by the patient), nobody else, with the same
403 whether or not the patient exists."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from eqlab.checks import EvidenceClient, LabTokens
from suites.contract.dsp.access_support import (
    added,
    care_team,
    expect_sees,
    patient_of,
    professional,
    provide_record,
    treating,
)
from suites.contract.dsp.support import new_patient
from suites.contract.fhir_toolkit import FHIR_JSON, body_of, create, entries, expressions, shown

SIX_MONTHS = timedelta(days=184)  # the longest six calendar months, and a day for time zones


@pytest.mark.requirement("dsp@30")
def test_the_patient_reads_their_own_record(fhir_client: EvidenceClient, tokens: LabTokens, unique: str) -> None:
    """the patient finds, reads and retrieves their document; another patient gets 403"""
    record = provide_record(fhir_client, unique, patient_of(tokens, "patient"))
    expect_sees(tokens.client_for("patient"), record, 200, "the patient, on their own record")
    other = tokens.client_for("other_patient")
    for path in (f"DocumentReference/{record.document}", f"Binary/{record.binary}"):
        answer = other.get(path)
        assert answer.status_code == 403, f"another patient's GET {path} answered {shown(answer)}; expected 403"


@pytest.mark.requirement("dsp@31")
def test_an_expired_care_relationship_opens_nothing(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """a treating CareTeam whose period ended gives the professional no access"""
    patient = new_patient(fhir_client, unique)["id"]
    record = provide_record(fhir_client, unique, patient)
    begun = date.today() - timedelta(days=400)
    period = {"start": begun.isoformat(), "end": (begun + timedelta(days=180)).isoformat()}
    member = professional(tokens, "practitioner")
    create(fhir_client, care_team(patient, member, period=period))  # by the system: a past relationship
    expect_sees(tokens.client_for("practitioner"), record, 403, "a professional whose care relationship ended")


@pytest.mark.requirement("dsp@32")
def test_a_professional_reads_with_the_care_relationship_they_declared(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """403 without a care relationship; 200 once the professional declared a treating CareTeam"""
    patient = new_patient(fhir_client, unique)["id"]
    record = provide_record(fhir_client, unique, patient)
    doctor = tokens.client_for("practitioner")
    expect_sees(doctor, record, 403, "a professional without a care relationship")
    treating(doctor, patient, professional(tokens, "practitioner"))
    expect_sees(doctor, record, 200, "the professional, after declaring a treating CareTeam")


@pytest.mark.requirement("dsp@42")
def test_a_stranger_learns_nothing_of_whether_the_patient_exists(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """the same 403 for an existing patient and one that does not exist; no search without a patient"""
    patient = new_patient(fhir_client, unique)["id"]
    provide_record(fhir_client, unique, patient)
    stranger = tokens.client_for("other_practitioner")
    existing = stranger.get("DocumentReference", params={"patient": patient})
    missing = stranger.get("DocumentReference", params={"patient": f"{unique}-nobody"})
    assert existing.status_code == missing.status_code == 403, (
        f"a professional without a care relationship searched an existing patient's documents "
        f"({shown(existing)}) and a missing patient's ({shown(missing)}); expected 403 for both"
    )
    assert body_of(existing, "the refusal")["issue"] == body_of(missing, "the refusal")["issue"], (
        "the refusals for an existing and a missing patient differ: they tell whether the patient exists"
    )
    browsing = stranger.get("DocumentReference", params={"type": "urn:oid:1.3.182.6.1|DISCHARGE"})
    assert browsing.status_code == 403, (
        f"a professional's search of documents naming no patient answered {shown(browsing)}; expected 403"
    )


@pytest.mark.requirement("dsp@43")
def test_a_treating_relationship_is_the_professionals_own_for_six_months(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """for themselves only, at most six months (an end is set when none is given); never self-designated referent"""
    patient = new_patient(fhir_client, unique)["id"]
    doctor, me = tokens.client_for("practitioner"), professional(tokens, "practitioner")
    someone_else = doctor.post("CareTeam", json=care_team(patient, professional(tokens, "other_practitioner")))
    assert someone_else.status_code == 403, (
        f"a treating CareTeam naming another professional answered {shown(someone_else)}; expected 403"
    )
    today = date.today()
    too_long = care_team(
        patient, me, period={"start": today.isoformat(), "end": (today + timedelta(days=400)).isoformat()}
    )
    refused = doctor.post("CareTeam", json=too_long)
    assert refused.status_code == 422 and any("CareTeam.period.end" in e for e in expressions(refused)), (
        f"a treating CareTeam of 400 days answered {shown(refused)}; expected 422 naming CareTeam.period.end"
    )
    referent = doctor.post("CareTeam", json=care_team(patient, me, "referent"))
    assert referent.status_code == 403, (
        f"a professional designating themselves referring doctor answered {shown(referent)}; expected 403"
    )
    team = treating(doctor, patient, me)
    period = team.get("period") or {}
    assert period.get("start") and period.get("end"), f"the stored treating CareTeam has period {period}"
    start, end = (datetime.fromisoformat(period[k]).replace(tzinfo=UTC) for k in ("start", "end"))
    assert end - start <= SIX_MONTHS, f"the stored treating CareTeam lasts {end - start}; at most six months"


@pytest.mark.requirement("dsp@44")
def test_the_referring_doctor_the_patient_designates_reads(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """a referent CareTeam the patient creates opens the record to that professional"""
    record = provide_record(fhir_client, unique, patient_of(tokens, "other_patient"))
    doctor = tokens.client_for("other_practitioner")
    expect_sees(doctor, record, 403, "a professional before the patient designated them")
    designation = care_team(record.patient, professional(tokens, "other_practitioner"), "referent")
    with added(tokens.client_for("other_patient"), fhir_client, designation, "the patient's designation"):
        expect_sees(doctor, record, 200, "the referring doctor the patient designated")


@pytest.mark.requirement("dsp@45")
def test_submission_sets_follow_the_same_rule(fhir_client: EvidenceClient, tokens: LabTokens, unique: str) -> None:
    """List?patient= is 403 without a care relationship and finds the SubmissionSet with one"""
    patient = new_patient(fhir_client, unique)["id"]
    record = provide_record(fhir_client, unique, patient)
    refused = tokens.client_for("other_practitioner").get("List", params={"patient": patient})
    assert refused.status_code == 403, (
        f"a professional without a care relationship searching List?patient= answered {shown(refused)}; expected 403"
    )
    doctor = tokens.client_for("practitioner")
    treating(doctor, patient, professional(tokens, "practitioner"))
    found = doctor.get("List", params={"patient": patient})
    assert found.status_code == 200, f"a treating professional's List?patient= answered {shown(found)}"
    listed = {r.get("id") for r in entries(body_of(found, "List?patient="))}
    assert record.submission_set in listed, f"List?patient= found {listed}, not the SubmissionSet"


@pytest.mark.requirement("dsp@46")
def test_changing_a_document_takes_a_care_relationship_and_no_patient_deletes_one(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """a professional without a care relationship cannot overwrite, patch or delete the patient's document;
    the patient cannot delete it either; it stays as provided"""
    record = provide_record(fhir_client, unique, new_patient(fhir_client, unique)["id"])  # nobody treats them
    path = f"DocumentReference/{record.document}"
    provided = body_of(fhir_client.get(path), "the read of the provided document")
    stranger = tokens.client_for("other_practitioner")
    attempts = {
        "PUT": stranger.put(path, json={**provided, "description": "rewritten"}, headers={"Content-Type": FHIR_JSON}),
        "PATCH": stranger.patch(
            path,
            json=[{"op": "replace", "path": "/status", "value": "entered-in-error"}],
            headers={"Content-Type": "application/json-patch+json"},
        ),
        "DELETE": stranger.delete(path),
    }
    for method, answer in attempts.items():
        assert answer.status_code == 403, (
            f"{method} {path} by a professional without a care relationship answered {shown(answer)}; expected 403"
        )
    now = body_of(fhir_client.get(path), "the read after the refused changes")
    before, after = (body.get("meta", {}).get("versionId") for body in (provided, now))
    assert after == before, f"{path} changed (version {before} -> {after}) although every change was refused"
    own = f"DocumentReference/{provide_record(fhir_client, unique, patient_of(tokens, 'patient')).document}"
    by_patient = tokens.client_for("patient").delete(own)
    assert by_patient.status_code == 403, f"DELETE {own} by the patient answered {shown(by_patient)}; expected 403"
    assert fhir_client.get(own).status_code == 200, f"{own} is gone although its DELETE was refused"
