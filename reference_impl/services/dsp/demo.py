"""The DSP's demo documents: every document type of SPEC section 5 for the demo patients, with stable ids.

How many documents of each type follows the agency's published counts of March 2017 (``PUBLISHED_COUNTS``,
14,070 documents), scaled down to about ``DEMO_DOCUMENTS`` with at least one of each type: patient
summaries dominate, then certificates, diagnostic and preventive reports, images and lab results.
Each patient's documents arrive as one provide (a SubmissionSet ``List``), each document with its
``Binary``. Patient 1 (the demo user ``patient1``) has a French discharge letter, lab results as text,
a radiology report as a small valid PDF, and a patient summary that replaced an earlier one (superseded).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from itertools import cycle
from typing import Any

from reference_impl.services.dsp.doctypes import SYSTEM, document_types

# Documents per type in the DSP, March 2017 (the agency's "Le Dossier de Soins Partagé : quelques chiffres").
PUBLISHED_COUNTS = {
    "ALLERGY": 3, "FAMHIST": 2, "MEDHIST": 32, "AUTONOMY": 1, "FUNCTIONAL": 1, "DIAGREP": 1366, "THERAPREP": 7,
    "PREVREP": 1082, "ADMINREP": 2, "DISCHARGE": 120, "PALLIATIVE": 1, "CERTIFICATE": 1710, "EDUCATION": 3,
    "PATIENTEXPR": 220, "RISK": 2, "IMAGING": 646, "PROSTHESIS": 7, "MEDREPORT": 52, "LABRESULT": 541,
    "EMERGENCY": 33, "CARESUMMARY": 17, "PATSUMMARY": 8184, "THERAPSCHEME": 1, "PLURIDISC": 2, "MEDICATION": 28,
    "PRESCRIBED": 5, "PREVENTIVE": 2,
}  # fmt: skip
DEMO_DOCUMENTS = 40
DEMO_PATIENTS = 20  # pat-0001..pat-0020 of the base demo (seed/demo.py)
PRACTITIONERS = 12  # prac-001..prac-012 of the base demo
INSTITUTIONS = ("chl", "chdn", "chem", "hrs")
SUBMISSION_SET = {"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}
LOINC = "http://loinc.org"
CATEGORIES = {
    "LABRESULT": ("26436-6", "Laboratory studies (set)"),
    "IMAGING": ("18726-0", "Radiology studies (set)"),
    "PATSUMMARY": ("34133-9", "Summary of episode note"),
    "DISCHARGE": ("18842-5", "Discharge summary"),
}
IDS = uuid.UUID("6f1c1f0e-5d2b-4c1e-9a57-3d1a0c0d5e11")  # namespace of the demo documents' unique ids

DISCHARGE_LETTER = """Centre Hospitalier de Luxembourg - Service de cardiologie

Compte rendu d'hospitalisation

Motif d'admission : douleur thoracique atypique.
Séjour du 3 au 7 mars 2025.
Examens : ECG sans anomalie, troponine négative à deux reprises, échocardiographie normale.
Diagnostic de sortie : douleur pariétale, pas d'argument pour un syndrome coronarien aigu.
Traitement de sortie : paracétamol 1 g si douleur, maximum 3 g par jour.
Suivi : consultation chez le médecin référent dans quinze jours.

Dr Schmit, cardiologue
"""
LAB_RESULTS = """Laboratoire national de biologie - Résultats d'examens biologiques

Hémoglobine          13.9 g/dL     (12.0 - 16.0)
Leucocytes            6.8 G/L      (4.0 - 10.0)
Plaquettes            254 G/L      (150 - 400)
Créatinine             78 µmol/L   (45 - 90)
Glycémie à jeun       5.2 mmol/L   (3.9 - 5.8)
Cholestérol LDL       3.1 mmol/L   (< 3.4)

Validé par le biologiste responsable.
"""
RADIOLOGY_REPORT = [
    "Compte rendu de radiographie thoracique",
    "Indication : toux persistante.",
    "Resultat : pas de foyer, silhouette cardiaque normale.",
    "Conclusion : radiographie thoracique normale.",
]


def demo_counts(total: int = DEMO_DOCUMENTS) -> dict[str, int]:
    """Documents per type: the published proportions scaled to ``total``, at least one of each type."""
    published = sum(PUBLISHED_COUNTS.values())
    return {code: max(1, round(n * total / published)) for code, n in PUBLISHED_COUNTS.items()}


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF (1.4) showing ``lines`` in Helvetica: small, valid, built byte by byte."""
    text = "".join(f"({line}) Tj T* " for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 760 Td {text}ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _content(code: str, n: int, patient: str) -> tuple[str, bytes]:
    """(media type, bytes) of a demo document."""
    if code == "DISCHARGE":
        return "text/plain", DISCHARGE_LETTER.encode()
    if code == "LABRESULT":
        return "text/plain", LAB_RESULTS.encode()
    if code == "IMAGING":
        return "application/pdf", minimal_pdf(RADIOLOGY_REPORT)
    title = document_types()[code]
    return "text/plain", f"{title}\n\nDocument de démonstration n° {n} pour {patient}.\n".encode()


def _document(n: int, code: str, patient: str, replaces: str | None = None) -> list[dict[str, Any]]:
    """A DocumentReference and its Binary."""
    doc_id, binary_id = f"doc-{n:04d}", f"bin-{n:04d}"
    media_type, data = _content(code, n, patient)
    when = f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}T{8 + n % 10:02d}:30:00Z"
    author = f"Practitioner/prac-{1 + n % PRACTITIONERS:03d}"
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid5(IDS, doc_id)}"},
        "status": "current",
        "type": {"coding": [{"system": SYSTEM, "code": code, "display": document_types()[code]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "date": when,
        "author": [{"reference": author}],
        "custodian": {"reference": f"Organization/org-{INSTITUTIONS[n % len(INSTITUTIONS)]}"},
        "description": document_types()[code],
        "content": [
            {
                "attachment": {
                    "contentType": media_type,
                    "language": "fr",
                    "url": f"Binary/{binary_id}",
                    "size": len(data),
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(),
                    "title": document_types()[code],
                    "creation": when,
                }
            }
        ],
    }
    if code in CATEGORIES:
        system_code, display = CATEGORIES[code]
        document["category"] = [{"coding": [{"system": LOINC, "code": system_code, "display": display}]}]
    if replaces:
        document["relatesTo"] = [{"code": "replaces", "target": {"reference": f"DocumentReference/{replaces}"}}]
    binary = {
        "resourceType": "Binary",
        "id": binary_id,
        "contentType": media_type,
        "securityContext": {"reference": f"DocumentReference/{doc_id}"},
        "data": base64.b64encode(data).decode(),
    }
    return [binary, document]


def _submission_set(patient: str, documents: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "List",
        "id": f"ss-{patient}",
        "identifier": [{"use": "usual", "system": "urn:ietf:rfc:3986",
                        "value": f"urn:uuid:{uuid.uuid5(IDS, 'ss-' + patient)}"}],
        "status": "current",
        "mode": "working",
        "code": {"coding": [SUBMISSION_SET]},
        "subject": {"reference": f"Patient/{patient}"},
        "date": max(d["date"] for d in documents),
        "source": documents[0]["author"][0],
        "entry": [{"item": {"reference": f"DocumentReference/{d['id']}"}} for d in documents],
    }  # fmt: skip


def demo_documents() -> list[dict[str, Any]]:
    """Binaries, DocumentReferences and one SubmissionSet per patient, in the order a provide stores them."""
    first = ["DISCHARGE", "LABRESULT", "IMAGING", "PATSUMMARY"]  # patient 1's, in this order
    counts = demo_counts()
    for code in first:
        counts[code] -= 1
    codes = first + [code for code, n in counts.items() for _ in range(n)]
    patients = cycle(f"pat-{k:04d}" for k in range(2, DEMO_PATIENTS + 1))
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for n, code in enumerate(codes, start=1):
        patient = "pat-0001" if n <= len(first) else next(patients)
        by_patient.setdefault(patient, []).extend(_document(n, code, patient))
    replacing = len(codes) + 1  # patient 1's summary, written again: the earlier one is superseded
    by_patient["pat-0001"] += _document(replacing, "PATSUMMARY", "pat-0001", replaces=f"doc-{len(first):04d}")
    resources: list[dict[str, Any]] = []
    for patient, written in by_patient.items():
        documents = [r for r in written if r["resourceType"] == "DocumentReference"]
        resources += [*written, _submission_set(patient, documents)]
    return resources
