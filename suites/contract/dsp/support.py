"""What the shared care record checks share: patients of the check's own and MHD provides (ITI-65).

A check never relies on documents it did not make. It creates a Patient of its own (a fresh valid
matricule, tagged with the check's unique value), provides documents for that patient with a
SubmissionSet, and finds them by that patient (or by the documents' tag), so nothing another check or
the platform's own data holds can change its answer.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from stdnum import luhn, verhoeff

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import (
    Resource,
    body_of,
    create,
    expressions,
    outcome_problems,
    post_bundle,
    shown,
    tag,
)

DSP_TYPES = "urn:oid:1.3.182.6.1"
NATIONAL_ID = "urn:oid:1.3.182.4.4"
PLATFORM_ID = "urn:oid:1.3.182.2.4.2"
MHD_LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
LOINC = "http://loinc.org"
# The 27 document types of SPEC section 5: code -> the SPEC's French display.
DOCUMENT_TYPES = {
    "ALLERGY": "Allergies intolérances reconnues",
    "FAMHIST": "Antécédents familiaux",
    "MEDHIST": "Antécédents médicaux et chirurgicaux",
    "AUTONOMY": "Bilan d'autonomie",
    "FUNCTIONAL": "Bilan fonctionnel",
    "DIAGREP": "CR d'actes diagnostiques",
    "THERAPREP": "CR d'actes thérapeutiques",
    "PREVREP": "CR d'actes à visée préventive",
    "ADMINREP": "CR d'administration",
    "DISCHARGE": "CR de séjours hospitaliers et lettres de sortie",
    "PALLIATIVE": "Carnet soins palliatifs",
    "CERTIFICATE": "Certificats médicaux",
    "EDUCATION": "Education",
    "PATIENTEXPR": "Expression du titulaire",
    "RISK": "Facteurs de risques individuels",
    "IMAGING": "Images radiologiques ou autres imageries médicales",
    "PROSTHESIS": "Prothèses et appareillages",
    "MEDREPORT": "Rapports médicaux",
    "LABRESULT": "Résultats d'examens biologiques",
    "EMERGENCY": "Résumé de passage aux urgences",
    "CARESUMMARY": "Résumé des soins / fiche de liaison",
    "PATSUMMARY": "Résumés patients",
    "THERAPSCHEME": "Schéma thérapeutique",
    "PLURIDISC": "Suivi de soins et actes pluridisciplinaires",
    "MEDICATION": "Traitements médicamenteux",
    "PRESCRIBED": "Traitements médicaux prescrits",
    "PREVENTIVE": "Traitements préventifs prescrits ou administrés",
}
# A small valid one-page PDF: what a retrieve must give back byte for byte.
PDF = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] "
    b"/Count 1 >>\nendobj\n3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>\nendobj\nxref\n0 4\n"
    b"0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n0000000115 00000 n \ntrailer\n"
    b"<< /Size 4 /Root 1 0 R >>\nstartxref\n186\n%%EOF\n"
)


def matricule() -> str:
    """A valid matricule no other check uses: birth date, random sequence, Luhn and Verhoeff digits."""
    rng = random.SystemRandom()
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 90 * 365))
    body = f"{born:%Y%m%d}{rng.randrange(1000):03d}"
    return f"{body}{luhn.calc_check_digit(body)}{verhoeff.calc_check_digit(body)}"


def new_patient(client: EvidenceClient, unique: str) -> Resource:
    """An active Patient of this check, with a matricule of its own (the platform adds its platform id)."""
    return create(
        client,
        {
            "resourceType": "Patient",
            "identifier": [tag(unique), {"system": NATIONAL_ID, "value": matricule()}],
            "active": True,
            "name": [{"family": "Reuter", "given": ["Léa"]}],
            "birthDate": "1980-05-17",
        },
    )


def identifier_of(patient: Resource, system: str) -> str:
    values = [
        i.get("value") for i in patient.get("identifier") or [] if isinstance(i, dict) and i.get("system") == system
    ]
    assert values, (
        f"Patient/{patient.get('id')} has no identifier of {system} (SPEC section 3): {patient.get('identifier')}"
    )
    return str(values[0])


def ref(resource: Resource) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def document(unique: str, subject: dict[str, Any], code: str = "DISCHARGE", **fields: Any) -> Resource:
    """A DocumentReference of this check (its attachment is filled in by ``Provide``)."""
    return {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "identifier": [tag(unique)],
        "status": "current",
        "type": {"coding": [{"system": DSP_TYPES, "code": code, "display": DOCUMENT_TYPES.get(code, code)}]},
        "subject": subject,
        "date": "2025-03-07T10:00:00Z",
        "description": f"eqlab contract document {unique}",
        **fields,
    }


@dataclass
class Provide:
    """An ITI-65 provide: a SubmissionSet and documents, each with its Binary, named by urn:uuid: full URLs."""

    unique: str
    subject: dict[str, Any]
    entries: list[Resource] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)  # full URLs of the DocumentReferences, in order

    def add(self, doc: Resource, content: bytes = b"Compte rendu d'hospitalisation", media: str = "text/plain") -> str:
        """Add ``doc`` with a Binary of ``content``; its full URL."""
        binary_url, doc_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        attachment = {"contentType": media, "url": binary_url, "size": len(content), "title": "eqlab"}
        doc = {**doc, "content": [{"attachment": attachment}]}
        binary = {"resourceType": "Binary", "contentType": media, "data": base64.b64encode(content).decode()}
        self.entries += [_post(binary_url, binary), _post(doc_url, doc)]
        self.documents.append(doc_url)
        return doc_url

    def bundle_entries(self) -> list[Resource]:
        submission_set = {
            "resourceType": "List",
            "identifier": [tag(self.unique), {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}],
            "status": "current",
            "mode": "working",
            "code": {"coding": [{"system": MHD_LIST_TYPES, "code": "submissionset"}]},
            "subject": self.subject,
            "date": "2025-03-07T10:00:00Z",
            "entry": [{"item": {"reference": url}} for url in self.documents],
        }
        return [_post(f"urn:uuid:{uuid.uuid4()}", submission_set), *self.entries]

    def send(self, client: EvidenceClient) -> httpx.Response:
        return post_bundle(client, "transaction", self.bundle_entries())

    def stored(self, client: EvidenceClient, what: str = "the provide (ITI-65 transaction)") -> list[str]:
        """Send it; ``Type/id`` of every stored entry (SubmissionSet, then Binary and document pairs)."""
        response = self.send(client)
        assert response.status_code == 200, (
            f"{what} answered {shown(response)}; expected 200 with a transaction-response"
        )
        return stored_keys(response, what)


def _post(full_url: str, resource: Resource) -> Resource:
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


def stored_keys(response: httpx.Response, what: str) -> list[str]:
    """``Type/id`` of each entry of a transaction-response, from its location (or fullUrl)."""
    bundle = body_of(response, what)
    assert bundle.get("type") == "transaction-response", (
        f"{what} answered a Bundle of type {bundle.get('type')!r}; expected transaction-response"
    )
    found = []
    for i, entry in enumerate(bundle.get("entry") or []):
        result = entry.get("response") or {}
        assert str(result.get("status", "")).startswith("201"), (
            f"entry {i} of the answer to {what} has status {result.get('status')!r}; expected 201 Created"
        )
        location = str(result.get("location") or entry.get("fullUrl") or "")
        parts = location.split("/_history", 1)[0].rstrip("/").split("/")
        assert len(parts) >= 2, f"entry {i} of the answer to {what} names no stored resource ({location!r})"
        found.append(f"{parts[-2]}/{parts[-1]}")
    return found


def assert_refused_naming(response: httpx.Response, element: str, what: str) -> None:
    assert response.status_code == 422, f"{what} answered {shown(response)}; expected 422"
    problems = outcome_problems(response)
    assert not problems, f"{what} answered 422 but not with a usable OperationOutcome: " + "; ".join(problems)
    named = expressions(response)
    assert any(element in e for e in named), (
        f"the 422 for {what} names {named or 'no element'} in issue.expression; expected {element}"
    )
