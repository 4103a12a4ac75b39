"""Who reads the shared care record, over real HTTP with tokens the server issues (SPEC section 5):
care relationships (treating, referent, expired), emergency access flagged in the patient's access
log, masked documents, blocked professionals, closed and opted-out records, strangers.

One server per backend and module; each test makes patients and documents of its own.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reference_impl.services.dsp.controls import CONFIDENTIALITY, DSP_SYSTEM
from tests.conftest import BACKENDS
from tests.reference_impl.services.dsp.conftest import FHIR_JSON, Platform, document, ref
from tests.support.servers import demo_platform
from tests.support.tokens import mint

DOCTOR1 = "PractitionerRole/role-001"  # role of Practitioner/prac-001
DOCTOR2 = "PractitionerRole/role-002"


@dataclass
class Lab:
    platform: Platform
    app: FastAPI
    origin: str

    @property
    def system(self) -> httpx.Client:
        return self.platform.client

    def doctor(self, fhir_user: str = DOCTOR1, purpose: str = "TREAT") -> dict[str, str]:
        claims = {"sub": fhir_user, "client_id": "eqlab-demo-webapp", "subject_role": "doctor"}
        token = mint(self.app, self.origin, **claims, scope="user/*.cruds", fhirUser=fhir_user, purpose_of_use=purpose)
        return {"Authorization": f"Bearer {token}"}

    def patient_token(self, patient: dict[str, Any]) -> dict[str, str]:
        claims = {"sub": f"p-{patient['id']}", "client_id": "eqlab-demo-portal", "subject_role": "patient"}
        token = mint(
            self.app,
            self.origin,
            **claims,
            scope="patient/*.cruds",
            patient=patient["id"],
            fhirUser=f"Patient/{patient['id']}",
            purpose_of_use="PATRQT",
        )
        return {"Authorization": f"Bearer {token}"}

    def record(self, author: str | None = None) -> tuple[dict[str, Any], str, str]:
        """A new patient with one document: (patient, DocumentReference id, Binary id)."""
        patient = self.platform.patient()
        written = document(ref(patient))
        if author:
            written["author"] = [{"reference": author}]
        _, binary, doc = self.platform.provided((written, b"letter", "text/plain"))
        return patient, doc.split("/")[1], binary.split("/")[1]

    def write(self, resource: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        path = resource["resourceType"] + (f"/{resource['id']}" if "id" in resource else "")
        method = self.system.put if "id" in resource else self.system.post
        return method(path, json=resource, headers={**headers, **FHIR_JSON})

    def treating(self, patient: dict[str, Any], fhir_user: str = DOCTOR1) -> httpx.Response:
        return self.write(care_team(patient, fhir_user), self.doctor(fhir_user))

    def sees(self, headers: dict[str, str], patient: dict[str, Any], doc_id: str, binary_id: str) -> list[int]:
        """Status of read, find (with the document among the results or not: 404) and retrieve."""
        found = self.system.get("DocumentReference", params={"patient": patient["id"]}, headers=headers)
        listed = found.status_code
        if listed == 200 and doc_id not in {e["resource"]["id"] for e in found.json().get("entry", [])}:
            listed = 404
        read = self.system.get(f"DocumentReference/{doc_id}", headers=headers).status_code
        retrieved = self.system.get(f"Binary/{binary_id}", headers=headers).status_code
        return [read, listed, retrieved]


def care_team(patient: dict[str, Any], member: str, kind: str = "treating", **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "category": [{"coding": [{"system": DSP_SYSTEM, "code": kind}]}],
        "subject": ref(patient),
        "participant": [{"member": {"reference": member}}],
        **fields,
    }


def record_consent(patient: dict[str, Any], status: str, deny: bool, actor: str | None = None) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": "deny" if deny else "permit"}
    if actor:
        provision["actor"] = [{"role": {"text": "blocked"}, "reference": {"reference": actor}}]
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": DSP_SYSTEM, "code": "dsp-record"}]}],
        "patient": ref(patient),
        "provision": provision,
    }


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with demo_platform(request, tmp_path_factory) as started:
        yield Lab(Platform(started.client), started.app, started.origin)


def test_a_professional_reads_only_with_a_care_relationship_they_declared(lab: Lab) -> None:
    patient, doc_id, binary_id = lab.record()
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [403, 403, 403]
    declared = lab.treating(patient)
    assert declared.status_code == 201, declared.text
    period = declared.json()["period"]
    start, end = (datetime.fromisoformat(period[k]) for k in ("start", "end"))
    assert timedelta(days=180) <= end - start <= timedelta(days=185), "a treating relationship lasts six months"
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [200, 200, 200]
    assert lab.sees(lab.doctor(DOCTOR2), patient, doc_id, binary_id) == [403, 403, 403], "the other doctor has none"
    listing = lab.system.get("List", params={"patient": patient["id"]}, headers=lab.doctor(DOCTOR2))
    assert listing.status_code == 403


def test_care_relationships_are_declared_by_their_professional_for_treatment_and_six_months(lab: Lab) -> None:
    patient = lab.platform.patient()
    for_someone_else = lab.write(care_team(patient, DOCTOR2), lab.doctor(DOCTOR1))
    assert for_someone_else.status_code == 403
    not_treatment = lab.write(care_team(patient, DOCTOR1), lab.doctor(DOCTOR1, purpose="EMERGENCY"))
    assert not_treatment.status_code == 403
    too_long = care_team(patient, DOCTOR1, period={"start": "2026-01-01", "end": "2027-06-01"})
    refused = lab.write(too_long, lab.doctor())
    assert refused.status_code == 422 and "CareTeam.period.end" in refused.text
    self_referent = lab.write(care_team(patient, DOCTOR1, "referent"), lab.doctor())
    assert self_referent.status_code == 403, "the patient designates the referring doctor"


def test_an_expired_care_relationship_no_longer_opens_the_record(lab: Lab) -> None:
    patient, doc_id, binary_id = lab.record()
    past = datetime.now(UTC) - timedelta(days=400)
    period = {"start": past.isoformat(), "end": (past + timedelta(days=183)).isoformat()}
    assert lab.write(care_team(patient, DOCTOR1, period=period), {}).status_code == 201  # by a system
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [403, 403, 403]


def test_the_referring_doctor_the_patient_designates_reads(lab: Lab) -> None:
    patient, doc_id, binary_id = lab.record()
    designated = lab.write(care_team(patient, "Practitioner/prac-002", "referent"), lab.patient_token(patient))
    assert designated.status_code == 201, designated.text
    assert lab.sees(lab.doctor(DOCTOR2), patient, doc_id, binary_id) == [200, 200, 200], "a role of prac-002"


def test_a_stranger_gets_the_same_403_whether_or_not_the_patient_exists(lab: Lab) -> None:
    patient, _, _ = lab.record()
    existing = lab.system.get("DocumentReference", params={"patient": patient["id"]}, headers=lab.doctor(DOCTOR2))
    missing = lab.system.get("DocumentReference", params={"patient": "no-such-patient"}, headers=lab.doctor(DOCTOR2))
    assert existing.status_code == missing.status_code == 403
    assert existing.json()["issue"] == missing.json()["issue"]
    browsing = lab.system.get("DocumentReference", params={"type": "DISCHARGE"}, headers=lab.doctor(DOCTOR2))
    assert browsing.status_code == 403, "a professional's search names the patient"


def test_emergency_access_is_allowed_and_flagged_in_the_patients_access_log(lab: Lab) -> None:
    patient, doc_id, binary_id = lab.record()
    assert lab.treating(patient).status_code == 201
    assert lab.system.get(f"DocumentReference/{doc_id}", headers=lab.doctor()).status_code == 200
    emergency = lab.doctor(DOCTOR2, purpose="EMERGENCY")
    assert lab.sees(emergency, patient, doc_id, binary_id) == [200, 200, 200]
    log = lab.system.get("AuditEvent", params={"patient": patient["id"]}, headers=lab.patient_token(patient))
    assert log.status_code == 200, log.text
    events = [e["resource"] for e in log.json()["entry"]]
    reads = [e for e in events if e["subtype"][0]["code"] == "read" and e["outcome"] == "0"]
    by_doctor1 = [e for e in reads if e["agent"][0]["who"].get("reference") == DOCTOR1]
    assert by_doctor1 and "BTG" not in str(by_doctor1[0].get("meta", {}).get("security"))
    flagged = [e for e in reads if e["agent"][0]["who"].get("reference") == DOCTOR2]
    assert flagged, "the emergency read is in the patient's access log"
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG"}.items() <= (
        flagged[0]["meta"]["security"][0].items()
    )
    assert flagged[0]["purposeOfEvent"][0]["coding"][0]["code"] == "EMERGENCY"
    assert flagged[0]["agent"][0]["role"][0]["coding"][0]["code"] == "doctor" and flagged[0]["recorded"]


def test_a_masked_document_is_hidden_from_professionals_but_not_from_its_author(lab: Lab) -> None:
    patient, doc_id, binary_id = lab.record(author=DOCTOR2)
    assert lab.treating(patient).status_code == 201
    assert lab.treating(patient, DOCTOR2).status_code == 201
    as_patient = lab.patient_token(patient)
    current = lab.system.get(f"DocumentReference/{doc_id}", headers=as_patient).json()
    masked = {**current, "meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"}]}}
    assert lab.write(masked, as_patient).status_code == 200
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [403, 404, 403]
    assert lab.sees(lab.doctor(DOCTOR2), patient, doc_id, binary_id) == [200, 200, 200], "its author"
    assert lab.system.get(f"DocumentReference/{doc_id}", headers=as_patient).status_code == 200
    rewritten = lab.write({**masked, "description": "not what the doctor wrote"}, as_patient)
    assert rewritten.status_code == 422
    assert lab.write({**masked, "meta": {}}, as_patient).status_code == 200
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [200, 200, 200], "unmasked"


def test_a_blocked_professional_gets_403_and_the_refusal_is_audited(lab: Lab) -> None:
    patient, doc_id, binary_id = lab.record()
    assert lab.treating(patient).status_code == 201
    by_doctor = lab.write(record_consent(patient, "active", deny=True, actor=DOCTOR1), lab.doctor())
    assert by_doctor.status_code == 403, "record consents are the patient's"
    block = lab.write(record_consent(patient, "active", deny=True, actor=DOCTOR1), lab.patient_token(patient))
    assert block.status_code == 201, block.text
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [403, 403, 403]
    refusals = lab.system.get("AuditEvent", params={"entity": f"DocumentReference/{doc_id}", "outcome": "4"}).json()
    assert any(e["resource"]["agent"][0]["who"].get("reference") == DOCTOR1 for e in refusals.get("entry", []))
    own_log = lab.system.get(
        "AuditEvent", params={"patient": patient["id"], "outcome": "4"}, headers=lab.patient_token(patient)
    ).json()
    tried = [
        e["resource"] for e in own_log.get("entry", []) if f"DocumentReference/{doc_id}" in e["resource"]["outcomeDesc"]
    ]
    assert tried and tried[0]["agent"][0]["who"].get("reference") == DOCTOR1, "the attempt is in the patient's log"
    assert lab.system.delete(f"Consent/{block.json()['id']}").status_code in (200, 204)
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [200, 200, 200]


def test_a_closed_record_is_403_for_professionals_and_kept_for_the_patient(lab: Lab) -> None:
    patient, doc_id, binary_id = lab.record()
    assert lab.treating(patient).status_code == 201
    as_patient = lab.patient_token(patient)
    closed = lab.write(record_consent(patient, "inactive", deny=False), as_patient)
    assert closed.status_code == 201, closed.text
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [403, 403, 403]
    assert lab.sees(lab.doctor(DOCTOR2, purpose="EMERGENCY"), patient, doc_id, binary_id) == [403, 403, 403]
    assert lab.system.get(f"DocumentReference/{doc_id}", headers=as_patient).status_code == 200
    stored = lab.system.get(f"Binary/{binary_id}")
    assert stored.status_code == 200 and base64.b64decode(stored.json()["data"]) == b"letter"
    reopened = lab.write({**closed.json(), "status": "active"}, as_patient)
    assert reopened.status_code == 200
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [200, 200, 200]


def test_an_opted_out_record_takes_no_document_from_professionals(lab: Lab) -> None:
    patient, doc_id, binary_id = lab.record()
    assert lab.treating(patient).status_code == 201
    opted_out = lab.write(record_consent(patient, "active", deny=True), lab.patient_token(patient))
    assert opted_out.status_code == 201
    assert lab.sees(lab.doctor(), patient, doc_id, binary_id) == [403, 403, 403]
    new = {**document(ref(patient)), "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}
    new["masterIdentifier"] = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}
    assert lab.write(new, lab.doctor()).status_code == 403


def test_the_patient_reads_their_own_record(lab: Lab) -> None:
    patient, doc_id, binary_id = lab.record()
    assert lab.sees(lab.patient_token(patient), patient, doc_id, binary_id) == [200, 200, 200]
    other, _, _ = lab.record()
    assert lab.sees(lab.patient_token(other), patient, doc_id, binary_id) == [403, 403, 403]


def test_the_demo_record_has_care_relationships_masks_a_referent_and_a_closed_record(lab: Lab) -> None:
    def found(headers: dict[str, str], patient: str) -> httpx.Response:
        return lab.system.get("DocumentReference", params={"patient": patient, "status": "current"}, headers=headers)

    doctor1, doctor2 = lab.doctor(), lab.doctor(DOCTOR2)
    treated = {e["resource"]["id"] for e in found(doctor1, "pat-0005").json()["entry"]}
    assert treated == {"doc-0008", "doc-0046"}, "doc-0027 is masked"
    assert "doc-0048" in {e["resource"]["id"] for e in found(doctor1, "pat-0007").json()["entry"]}, "their own"
    assert {e["resource"]["id"] for e in found(doctor2, "pat-0005").json()["entry"]} == treated, "the referent"
    assert found(doctor1, "pat-0006").status_code == 403, "the closed record"
    assert found(doctor2, "pat-0007").status_code == 403, "no relationship"
    everything = {e["resource"]["id"] for e in found({}, "pat-0005").json()["entry"]}
    assert everything == treated | {"doc-0027"}


def test_history_shows_a_professional_only_the_documents_they_may_read(lab: Lab) -> None:
    patient, doc_id, _ = lab.record()
    assert lab.treating(patient).status_code == 201
    for path in ("DocumentReference/_history", "_history"):
        for doctor, sees_it in ((DOCTOR1, True), (DOCTOR2, False)):
            answer = lab.system.get(path, params={"_count": 1000}, headers=lab.doctor(doctor))
            assert answer.status_code == 200, answer.text
            listed = {e["fullUrl"].rsplit("/", 1)[1] for e in answer.json().get("entry", [])}
            assert (doc_id in listed) is sees_it, (path, doctor)
    assert lab.system.get(f"DocumentReference/{doc_id}/_history", headers=lab.doctor(DOCTOR2)).status_code == 403


def test_a_masked_document_is_not_counted_nor_reached_through_a_chain_or_has(lab: Lab) -> None:
    """A professional with a care relationship learns nothing of a masked document: not from the total,
    nor from _summary=count, nor from a Patient search with _has, nor from a chain into it."""
    patient, doc_id, _ = lab.record(author=DOCTOR2)
    assert lab.treating(patient).status_code == 201
    doctor = lab.doctor()
    as_patient = lab.patient_token(patient)
    current = lab.system.get(f"DocumentReference/{doc_id}", headers=as_patient).json()

    def counts() -> tuple[int, int, int]:
        found = lab.system.get("DocumentReference", params={"patient": patient["id"]}, headers=doctor).json()
        counted = lab.system.get(
            "DocumentReference", params={"patient": patient["id"], "_summary": "count"}, headers=doctor
        ).json()
        has = lab.system.get(
            "Patient", params={"_id": patient["id"], "_has:DocumentReference:patient:_id": doc_id}, headers=doctor
        ).json()
        return found["total"], counted["total"], has["total"]

    assert counts()[:2] == (1, 1)
    masked = {**current, "meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"}]}}
    assert lab.write(masked, as_patient).status_code == 200
    assert counts() == (0, 0, 0), "the masked document shows in no count and through no _has"
    has_for_system = lab.system.get(
        "Patient", params={"_id": patient["id"], "_has:DocumentReference:patient:_id": doc_id}
    ).json()
    assert has_for_system["total"] == 1, "systems are not judged one by one"


def test_only_a_treating_professional_changes_a_document_and_no_patient_deletes_one(lab: Lab) -> None:
    """Writing over a document is reading it first: a stranger professional can neither overwrite nor delete
    it (nor learn that it exists); the patient masks documents but cannot delete what professionals wrote."""
    patient, doc_id, _ = lab.record()
    original = lab.system.get(f"DocumentReference/{doc_id}").json()
    overwritten = {**original, "description": "rewritten by a stranger"}
    assert lab.write(overwritten, lab.doctor()).status_code == 403
    assert lab.system.delete(f"DocumentReference/{doc_id}", headers=lab.doctor()).status_code == 403
    patched = lab.system.patch(
        f"DocumentReference/{doc_id}",
        json=[{"op": "replace", "path": "/description", "value": "patched by a stranger"}],
        headers={**lab.doctor(), "Content-Type": "application/json-patch+json"},
    )
    assert patched.status_code == 403
    deleted_by_patient = lab.system.delete(f"DocumentReference/{doc_id}", headers=lab.patient_token(patient))
    assert deleted_by_patient.status_code == 403
    assert lab.system.get(f"DocumentReference/{doc_id}").json()["meta"]["versionId"] == original["meta"]["versionId"]
    assert lab.treating(patient).status_code == 201
    corrected = lab.write({**original, "description": "corrected by the treating doctor"}, lab.doctor())
    assert corrected.status_code == 200, corrected.text


@pytest.mark.parametrize("ending", ["DELETE", "PUT"])
def test_a_care_relationship_ended_within_a_transaction_closes_the_record_to_its_later_entries(
    lab: Lab, ending: str
) -> None:
    """A transaction remembers its decisions on a record, and forgets them when a care relationship in
    it is deleted or changed: deleting a document (decided: allowed), ending one's own relationship,
    then finding the record's documents is refused, and the whole transaction rolled back."""
    patient, doc_id, _ = lab.record()
    declared = lab.treating(patient)
    assert declared.status_code == 201, declared.text
    team = declared.json()
    ended_entry: dict[str, Any] = {"request": {"method": ending, "url": f"CareTeam/{team['id']}"}}
    if ending == "PUT":
        ended_entry["resource"] = {**team, "status": "inactive"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": f"DocumentReference/{doc_id}"}},
            ended_entry,
            {"request": {"method": "GET", "url": f"DocumentReference?patient={patient['id']}"}},
        ],
    }
    refused = lab.system.post("", json=bundle, headers={**lab.doctor(), **FHIR_JSON})
    assert refused.status_code == 403, refused.text
    assert lab.system.get(f"DocumentReference/{doc_id}").status_code == 200, "rolled back: the document stays"
    assert lab.system.get(f"CareTeam/{team['id']}").json()["status"] == "active"
    without_ending = {**bundle, "entry": [bundle["entry"][0], bundle["entry"][2]]}
    allowed = lab.system.post("", json=without_ending, headers={**lab.doctor(), **FHIR_JSON})
    assert allowed.status_code == 200, allowed.text
