"""What the shared care record's access checks share: the plan's users, records of the check's own,
care relationships and record consents as SPEC section 5 expresses them (suites/requirements/dsp-access.yaml).

The records a check reads are its own documents: of a Patient it creates (for professionals), or of
the plan's patient (what the patient's own token controls), provided with the system token. Every
care relationship or consent a check adds is removed when it ends, so the plan's patient is left as
it was found.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from eqlab.checks import EvidenceClient, LabTokens
from suites.contract.dsp.support import Provide, document
from suites.contract.fhir_toolkit import Resource, body_of, entries, shown

CARE_CODES = "urn:oid:1.3.182.6.2"  # the platform's codes of care relationships and record consents
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def professional(tokens: LabTokens, role: str) -> str:
    """The plan user's PractitionerRole or Practitioner (``Type/id``), as their token's fhirUser names it."""
    fhir_user = str(claims_of(tokens.user(role).access_token).get("fhirUser") or "")
    assert fhir_user.split("/")[-2:-1] in (["PractitionerRole"], ["Practitioner"]), (
        f"the {role}'s token names no PractitionerRole or Practitioner as fhirUser ({fhir_user!r}): "
        "a professional's access to the shared care record is decided on it (SPEC section 5)"
    )
    return "/".join(fhir_user.split("/")[-2:])


def patient_of(tokens: LabTokens, role: str) -> str:
    """The Patient id of a plan user's patient token (the SMART launch context ``patient``)."""
    patient = tokens.user(role).patient
    assert patient, f"the {role}'s token response names no patient (SMART launch context)"
    return patient


@contextmanager
def emergency_client(tokens: LabTokens, role: str) -> Iterator[EvidenceClient]:
    """A client carrying ``role``'s token of purpose of use EMERGENCY (chosen at sign-in)."""
    token = tokens.user(role, purpose="EMERGENCY").access_token
    purpose = claims_of(token).get("purpose_of_use")
    assert purpose == "EMERGENCY", f"the {role} asked for purpose EMERGENCY at sign-in; the token says {purpose!r}"
    with tokens.evidence_client(tokens.fhir_base, {"Authorization": f"Bearer {token}"}) as client:
        yield client


@dataclass(frozen=True)
class Record:
    patient: str  # Patient id
    document: str  # DocumentReference id
    binary: str  # Binary id
    submission_set: str  # List id


def provide_record(system: EvidenceClient, unique: str, patient: str, author: str | None = None) -> Record:
    """One document (with its Binary and SubmissionSet) for ``patient``, provided by the system."""
    fields = {"author": [{"reference": author}]} if author else {}
    provide = Provide(unique, {"reference": f"Patient/{patient}"})
    provide.add({**document(unique, {"reference": f"Patient/{patient}"}), **fields}, b"eqlab access check")
    submission_set, binary, doc = (key.split("/")[1] for key in provide.stored(system))
    return Record(patient, doc, binary, submission_set)


def sees(client: EvidenceClient, record: Record) -> dict[str, int]:
    """What a caller gets of ``record``: read, find (404 when answered 200 without the document) and retrieve."""
    found = client.get("DocumentReference", params={"patient": record.patient})
    listed = found.status_code
    if listed == 200 and record.document not in {r.get("id") for r in entries(body_of(found, "the find"))}:
        listed = 404
    return {
        "read": client.get(f"DocumentReference/{record.document}").status_code,
        "find": listed,
        "retrieve": client.get(f"Binary/{record.binary}").status_code,
    }


def expect_sees(client: EvidenceClient, record: Record, status: int, who: str) -> None:
    got = sees(client, record)
    assert got == {"read": status, "find": status, "retrieve": status}, (
        f"{who}: read, find (DocumentReference?patient=) and retrieve (Binary) of the patient's document "
        f"answered {got}; expected {status} for each (404 for find: answered without the document)"
    )


def care_team(patient: str, member: str, kind: str = "treating", **fields: Any) -> Resource:
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "category": [{"coding": [{"system": CARE_CODES, "code": kind}]}],
        "name": "eqlab care relationship",
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"member": {"reference": member}}],
        **fields,
    }


def record_consent(patient: str, status: str, deny: bool, actor: str | None = None) -> Resource:
    provision: dict[str, Any] = {"type": "deny" if deny else "permit"}
    if actor:
        provision["actor"] = [{"role": {"text": "blocked professional"}, "reference": {"reference": actor}}]
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": CARE_CODES, "code": "dsp-record"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "provision": provision,
    }


@contextmanager
def added(client: EvidenceClient, system: EvidenceClient, resource: Resource, who: str) -> Iterator[Resource]:
    """``resource`` created by ``client`` for the duration of the block, then deleted by the system."""
    response = client.post(resource["resourceType"], json=resource)
    assert response.status_code == 201, (
        f"{who}'s {resource['resourceType']} (SPEC section 5) answered {shown(response)}; expected 201"
    )
    stored = create_result(response, resource["resourceType"])
    try:
        yield stored
    finally:
        system.delete(f"{resource['resourceType']}/{stored['id']}")


def create_result(response: httpx.Response, type_name: str) -> Resource:
    created = body_of(response, f"POST {type_name}")
    assert created.get("id"), f"POST {type_name} answered 201 without the stored resource's id"
    return created


def treating(client: EvidenceClient, patient: str, member: str) -> Resource:
    """The professional's own declaration of a treating relationship. It is left in place: it lapses
    after its six months like any other, and no check expects this professional refused there."""
    response = client.post("CareTeam", json=care_team(patient, member))
    assert response.status_code == 201, (
        f"{member}'s declaration of a care relationship (a treating CareTeam, SPEC section 5) answered "
        f"{shown(response)}; expected 201"
    )
    return create_result(response, "CareTeam")
