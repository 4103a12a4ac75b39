"""Who may read the trail, and nobody may change it (audit@7-11).

The patient reads the accesses to the own record; an auditor searches by agent and date; a
practitioner, and a patient asking about someone else, are refused; an AuditEvent cannot be
updated, patched or deleted, even with the plan's full system token.
"""

from __future__ import annotations

import json

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.audit.support import Tokens, agents, describe, identifies, references, since, trail, trail_reader
from suites.contract.auth.support import claims_of
from suites.contract.fhir_toolkit import JSON_PATCH, Resource, body_of, create, observation, patient, shown


def _practitioner_read(fhir_client: EvidenceClient, tokens: Tokens, owner: str, unique: str) -> tuple[str, str]:
    """A practitioner reads a fresh observation about ``owner``: (its reference, the start time)."""
    obs = create(fhir_client, observation(unique, owner))
    with tokens.client_for("practitioner") as doctor:
        response = doctor.get(f"Observation/{obs['id']}")
    assert response.status_code == 200, f"the practitioner reading Observation/{obs['id']} got {shown(response)}"
    return f"Observation/{obs['id']}", since(obs)


def _one_of_ours(fhir_client: EvidenceClient, tokens: Tokens, unique: str) -> Resource:
    subject = create(fhir_client, patient(unique))
    fhir_client.get(f"Patient/{subject['id']}")
    found = trail(trail_reader(tokens, fhir_client), patient=f"Patient/{subject['id']}", date=f"ge{since(subject)}")
    assert found, f"no AuditEvent about Patient/{subject['id']} after reading it (audit@1)"
    return found[0]


@pytest.mark.requirement("audit@7")
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_audit_events_cannot_be_changed(fhir_client: EvidenceClient, tokens: Tokens, unique: str, method: str) -> None:
    """update, patch and delete of an AuditEvent answer 405 and leave it as it was"""
    event = _one_of_ours(fhir_client, tokens, unique)
    where = f"AuditEvent/{event['id']}"
    before = fhir_client.get(where)
    assert before.status_code == 200, f"reading {where} answered {shown(before)}"
    if method == "PUT":
        response = fhir_client.put(where, json={**event, "outcomeDesc": "rewritten by eqlab"})
    elif method == "PATCH":
        patch = json.dumps([{"op": "replace", "path": "/outcome", "value": "0"}]).encode()
        response = fhir_client.patch(where, content=patch, headers={"Content-Type": JSON_PATCH})
    else:
        response = fhir_client.delete(where)
    assert response.status_code == 405, (
        f"{method} {where} with the system token answered {shown(response)}; expected 405"
    )
    after = fhir_client.get(where)
    assert after.status_code == 200 and body_of(after, where) == body_of(before, where), (
        f"after the refused {method}, {where} answers {shown(after)}; expected it unchanged"
    )


@pytest.mark.requirement("audit@8")
def test_a_patient_sees_who_accessed_the_own_record(fhir_client: EvidenceClient, tokens: Tokens, unique: str) -> None:
    """the patient's token finds, in AuditEvent?patient=<self>, a practitioner's read of the patient's data"""
    own = f"Patient/{tokens.user('patient').patient}"
    read, started = _practitioner_read(fhir_client, tokens, own, unique)
    with tokens.client_for("patient") as client:
        events = trail(client, patient=own, date=f"ge{started}")
    person_id = claims_of(tokens.user("practitioner").access_token).get("person_id")
    if not isinstance(person_id, str) or not person_id:
        pytest.skip("the practitioner's token has no person_id (auth@21): the lab cannot tell the read apart")
    ours = [e for e in events if read in references(e) and any(identifies(a, person_id) for a in agents(e))]
    assert ours, (
        f"the patient's access log (AuditEvent?patient={own}) since {started} does not show the practitioner "
        f"(person_id {person_id}) reading {read}: {describe(events)}"
    )


@pytest.mark.requirement("audit@9")
def test_a_patient_cannot_read_another_patients_log(fhir_client: EvidenceClient, tokens: Tokens, unique: str) -> None:
    """the patient's token asking for another patient's AuditEvents is refused with 403"""
    other = create(fhir_client, patient(unique, "Someone-Else"))
    with tokens.client_for("patient") as client:
        response = client.get("AuditEvent", params={"patient": f"Patient/{other['id']}"})
    assert response.status_code == 403, (
        f"the patient's token asking for AuditEvent?patient=Patient/{other['id']} (someone else) got "
        f"{shown(response)}; expected 403"
    )


@pytest.mark.requirement("audit@10")
def test_an_auditor_searches_by_agent_and_date(fhir_client: EvidenceClient, tokens: Tokens, unique: str) -> None:
    """an auditor's token finds a practitioner's access with AuditEvent?agent=<practitioner>&date=ge..."""
    claims = claims_of(tokens.user("practitioner").access_token)
    who = claims.get("fhirUser")
    if not isinstance(who, str) or not who:
        pytest.skip("the practitioner's token names no fhirUser: the lab has no reference to search agent= with")
    subject = create(fhir_client, patient(unique))
    read, started = _practitioner_read(fhir_client, tokens, f"Patient/{subject['id']}", unique)
    with tokens.client_for("auditor") as auditor:
        events = trail(auditor, agent=who, date=f"ge{started}")
    assert any(read in references(e) for e in events), (
        f"the auditor's AuditEvent?agent={who}&date=ge{started} does not find the practitioner reading {read}: "
        f"{describe(events)}"
    )


@pytest.mark.requirement("audit@11")
@pytest.mark.parametrize("query", ["by patient", "by date"])
def test_a_practitioner_cannot_read_the_trail(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str, query: str
) -> None:
    """a practitioner's token asking for AuditEvents is refused with 403"""
    subject = create(fhir_client, patient(unique))
    params = {"patient": f"Patient/{subject['id']}"} if query == "by patient" else {"date": f"ge{since(subject)}"}
    with tokens.client_for("practitioner") as doctor:
        response = doctor.get("AuditEvent", params=params)
    assert response.status_code == 403, f"the practitioner's token searching AuditEvents {query} got {shown(response)}"
