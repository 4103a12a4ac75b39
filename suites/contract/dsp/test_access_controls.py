"""The patient's controls (dsp@33-39): masking a document, blocking a professional, closing the
record and opting out, each done with the patient's own token on documents of the check's own."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient, LabTokens
from suites.contract.dsp.access_support import (
    CONFIDENTIALITY,
    Record,
    added,
    expect_sees,
    patient_of,
    professional,
    provide_record,
    record_consent,
    sees,
    treating,
)
from suites.contract.dsp.support import Provide, document, new_patient
from suites.contract.fhir_toolkit import Resource, body_of, entries, shown

MASK = {"system": CONFIDENTIALITY, "code": "R"}


def labelled(client: EvidenceClient, record: Record, labels: list[dict[str, str]]) -> Resource:
    """The patient's update of their document with these security labels (mask: R; unmask: none)."""
    current = body_of(client.get(f"DocumentReference/{record.document}"), "the patient's read of their document")
    meta = {k: v for k, v in (current.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    changed = {**current, "meta": {**meta, "security": labels}}
    answer = client.put(f"DocumentReference/{record.document}", json=changed)
    assert answer.status_code == 200, f"the patient's update of meta.security answered {shown(answer)}; expected 200"
    return changed


@pytest.mark.requirement("dsp@33")
def test_a_masked_document_is_hidden_from_a_treating_professional(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """found by nobody but the patient and its author: find leaves it out, read and retrieve are 403"""
    author = professional(tokens, "other_practitioner")
    record = provide_record(fhir_client, unique, patient_of(tokens, "patient"), author=author)
    doctor, patient = tokens.client_for("practitioner"), tokens.client_for("patient")
    treating(doctor, record.patient, professional(tokens, "practitioner"))
    expect_sees(doctor, record, 200, "a treating professional before the patient masked the document")
    labelled(patient, record, [MASK])  # the check's own document: it stays masked
    expect_sees(patient, record, 200, "the patient, on their masked document")
    got = sees(doctor, record)
    assert got == {"read": 403, "find": 404, "retrieve": 403}, (
        f"a treating professional, not the author, got {got} of a masked document; expected read 403, "
        "find without it (404 here) and retrieve 403"
    )


@pytest.mark.requirement("dsp@34")
def test_the_author_still_sees_a_masked_document(fhir_client: EvidenceClient, tokens: LabTokens, unique: str) -> None:
    """its author, with a care relationship, finds, reads and retrieves it"""
    author = professional(tokens, "other_practitioner")
    record = provide_record(fhir_client, unique, patient_of(tokens, "patient"), author=author)
    patient, doctor = tokens.client_for("patient"), tokens.client_for("other_practitioner")
    treating(doctor, record.patient, author)
    labelled(patient, record, [MASK])  # the check's own document: it stays masked
    expect_sees(doctor, record, 200, "the author of a masked document")


@pytest.mark.requirement("dsp@35")
def test_the_patient_unmasks_and_changes_nothing_else(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """unmasking shows the document again; a patient's change of its content is 422"""
    record = provide_record(fhir_client, unique, patient_of(tokens, "patient"))
    doctor, patient = tokens.client_for("practitioner"), tokens.client_for("patient")
    treating(doctor, record.patient, professional(tokens, "practitioner"))
    masked = labelled(patient, record, [MASK])
    labelled(patient, record, [])
    expect_sees(doctor, record, 200, "a treating professional after the patient unmasked the document")
    rewritten = patient.put(
        f"DocumentReference/{record.document}", json={**masked, "description": "rewritten by the patient"}
    )
    assert rewritten.status_code == 422, (
        f"the patient's change of a document's description answered {shown(rewritten)}; expected 422"
    )


@pytest.mark.requirement("dsp@36")
def test_a_blocked_professional_gets_403_and_is_audited(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """403 on find, read and retrieve despite a care relationship, the refusal audited; lifting restores"""
    record = provide_record(fhir_client, unique, patient_of(tokens, "other_patient"))
    doctor, blocked = tokens.client_for("practitioner"), professional(tokens, "practitioner")
    treating(doctor, record.patient, blocked)
    block = record_consent(record.patient, "active", deny=True, actor=blocked)
    with added(tokens.client_for("other_patient"), fhir_client, block, "the patient's block"):
        expect_sees(doctor, record, 403, "a professional the patient blocked")
        refusals = fhir_client.get(
            "AuditEvent", params={"entity": f"DocumentReference/{record.document}", "outcome": "4"}
        )
        agents = [
            (agent.get("who") or {}).get("reference", "")
            for event in entries(body_of(refusals, "AuditEvent?entity=&outcome=4"))
            for agent in event.get("agent") or []
        ]
        assert any(a.endswith(blocked) for a in agents), (
            f"no AuditEvent with outcome 4 on DocumentReference/{record.document} names {blocked}: {agents}"
        )
    expect_sees(doctor, record, 200, "the professional once the patient lifted the block")


@pytest.mark.requirement("dsp@37")
def test_record_consents_are_the_patients(tokens: LabTokens) -> None:
    """a professional's dsp-record Consent is 403"""
    doctor = tokens.client_for("practitioner")
    consent = record_consent(patient_of(tokens, "patient"), "inactive", deny=False)
    answer = doctor.post("Consent", json=consent)
    assert answer.status_code == 403, f"a professional closing a patient's record answered {shown(answer)}"


@pytest.mark.requirement("dsp@38")
def test_a_closed_record_is_403_for_professionals_and_retained(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """closed: professionals 403 (treating, emergency), the patient reads; reopened: the same content again"""
    record = provide_record(fhir_client, unique, patient_of(tokens, "closing_patient"))
    doctor, patient = tokens.client_for("practitioner"), tokens.client_for("closing_patient")
    treating(doctor, record.patient, professional(tokens, "practitioner"))
    closing = record_consent(record.patient, "inactive", deny=False)
    with added(patient, fhir_client, closing, "the patient's closing of the record") as closed:
        expect_sees(doctor, record, 403, "a treating professional on a closed record")
        expect_sees(patient, record, 200, "the patient, on their closed record")
        reopened = patient.put(f"Consent/{closed['id']}", json={**closed, "status": "active"})
        assert reopened.status_code == 200, f"the patient's reopening answered {shown(reopened)}"
        expect_sees(doctor, record, 200, "a treating professional once the record is reopened")
        content = doctor.get(f"Binary/{record.binary}")
        assert b"eqlab access check" in content.content or "ZXFsYWIgYWNjZXNzIGNoZWNr" in content.text, (
            "the reopened record's document has not kept its content"
        )


@pytest.mark.requirement("dsp@39")
def test_an_opted_out_record_is_403_and_takes_no_document(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """opted out: professionals 403 on find and read; a professional's new document is 403 (the
    opt-out is recorded by the system, as a portal does for the patient, on a patient of the check's own)"""
    record = provide_record(fhir_client, unique, new_patient(fhir_client, unique)["id"])
    doctor = tokens.client_for("practitioner")
    subject = {"reference": f"Patient/{record.patient}"}
    treating(doctor, record.patient, professional(tokens, "practitioner"))
    opting_out = record_consent(record.patient, "active", deny=True)
    with added(fhir_client, fhir_client, opting_out, "the opt-out recorded for the patient"):
        got = sees(doctor, record)
        assert got["read"] == 403 and got["find"] == 403, (
            f"a treating professional on an opted-out record got {got}; expected 403 for read and find"
        )
        provide = Provide(unique, subject)
        provide.add(document(unique, subject))
        sent = provide.send(doctor)
        assert sent.status_code == 403, f"a professional's provide to an opted-out record answered {shown(sent)}"
