"""The patient's access log (dsp@40-41, dsp@47): a treating professional's read and retrieve and an
emergency access, as the patient sees them with their own token (AuditEvent?patient=<self>)."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient, LabTokens
from suites.contract.dsp.access_support import (
    ACT_REASON,
    Record,
    emergency_client,
    expect_sees,
    patient_of,
    professional,
    provide_record,
    treating,
)
from suites.contract.fhir_toolkit import Resource, body_of, entries, shown


def access_log(tokens: LabTokens, role: str, patient: str) -> list[Resource]:
    """The patient's own access log, read with their token."""
    answer = tokens.client_for(role).get("AuditEvent", params={"patient": patient, "_count": "1000"})
    assert answer.status_code == 200, f"the patient's AuditEvent?patient=<self> answered {shown(answer)}"
    return entries(body_of(answer, "the access log"))


def treated_record(fhir_client: EvidenceClient, tokens: LabTokens, unique: str) -> tuple[Record, EvidenceClient, str]:
    """A document of the plan's patient, and a professional treating that patient (client, reference)."""
    record = provide_record(fhir_client, unique, patient_of(tokens, "patient"))
    doctor, who = tokens.client_for("practitioner"), professional(tokens, "practitioner")
    treating(doctor, record.patient, who)
    return record, doctor, who


def reads_of(log: list[Resource], document: str, who: str) -> list[Resource]:
    """The successful events of ``who`` naming ``document``."""
    return [
        event
        for event in log
        if event.get("outcome") == "0"
        and any(str((e.get("what") or {}).get("reference", "")).endswith(document) for e in event.get("entity") or [])
        and any(str((a.get("who") or {}).get("reference", "")).endswith(who) for a in event.get("agent") or [])
    ]


def purposes(event: Resource) -> set[str]:
    return {str(c.get("code")) for p in event.get("purposeOfEvent") or [] for c in p.get("coding") or []}


def break_glass(event: Resource) -> bool:
    labels = (event.get("meta") or {}).get("security") or []
    return any(label.get("system") == ACT_REASON and label.get("code") == "BTG" for label in labels)


@pytest.mark.requirement("dsp@40")
def test_an_emergency_access_is_allowed_and_flagged_in_the_access_log(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """an EMERGENCY token reads without a care relationship; the patient's log shows it flagged (BTG)"""
    record = provide_record(fhir_client, unique, patient_of(tokens, "patient"))
    who = professional(tokens, "other_practitioner")
    with emergency_client(tokens, "other_practitioner") as emergency:
        expect_sees(emergency, record, 200, "a professional in an emergency (purpose_of_use EMERGENCY)")
    events = reads_of(access_log(tokens, "patient", record.patient), record.document, who)
    assert events, f"the patient's access log shows no access of {who} to DocumentReference/{record.document}"
    flagged = [e for e in events if "EMERGENCY" in purposes(e) and break_glass(e)]
    assert flagged, (
        f"the emergency access of {who} is in the patient's access log without purposeOfEvent EMERGENCY and "
        f"meta.security {ACT_REASON}|BTG: {[(purposes(e), (e.get('meta') or {}).get('security')) for e in events]}"
    )


@pytest.mark.requirement("dsp@41")
def test_the_access_log_shows_a_professionals_read(fhir_client: EvidenceClient, tokens: LabTokens, unique: str) -> None:
    """who, role, when, what and purpose of a treating professional's earlier read"""
    record, doctor, who = treated_record(fhir_client, tokens, unique)
    read = doctor.get(f"DocumentReference/{record.document}")
    assert read.status_code == 200, f"the treating professional's read answered {shown(read)}"
    events = reads_of(access_log(tokens, "patient", record.patient), record.document, who)
    assert events, f"the patient's access log shows no read of DocumentReference/{record.document} by {who}"
    event = events[0]
    agent = next(a for a in event.get("agent") or [] if str((a.get("who") or {}).get("reference", "")).endswith(who))
    assert agent.get("role") and event.get("recorded"), f"the access log's event says no role or time: {event}"
    assert "TREAT" in purposes(event), f"the access log's event gives purposes {purposes(event)}; expected TREAT"
    assert not break_glass(event), "an ordinary read is flagged break-the-glass in the access log"


@pytest.mark.requirement("dsp@47")
def test_the_access_log_shows_a_professionals_retrieve(
    fhir_client: EvidenceClient, tokens: LabTokens, unique: str
) -> None:
    """a treating professional's retrieve of a document's content (ITI-68, Binary) is in the patient's log"""
    record, doctor, who = treated_record(fhir_client, tokens, unique)
    retrieved = doctor.get(f"Binary/{record.binary}")
    assert retrieved.status_code == 200, f"the treating professional's retrieve answered {shown(retrieved)}"
    events = reads_of(access_log(tokens, "patient", record.patient), f"Binary/{record.binary}", who)
    assert events, (
        f"the patient's access log shows no retrieve of Binary/{record.binary} (the content of "
        f"DocumentReference/{record.document}) by {who}"
    )
