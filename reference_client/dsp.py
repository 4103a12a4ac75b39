"""The shared care record as a client (SPEC §5): a professional's records system publishing documents
(document source: ITI-65 provide, a correction replacing what it corrects) and reading them
(document consumer: care relationship, ITI-67 find, ITI-68 retrieve, refusals taken as final).

The professional signs in (authorization code + PKCE through the platform's pages, as a demo user
such as doctor1) and the client asks the platform who that is (userinfo's fhirUser): the author of
what it publishes and the member of the care team it declares. The patient, the document type and
title come from the scenario's inputs (``EQLAB_INPUT_*``).
"""

from __future__ import annotations

import base64
import datetime
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from reference_client.fhir import expect
from reference_client.smart import ScenarioFailed

if TYPE_CHECKING:
    from reference_client.client import Client

DOCUMENT_TYPES = "urn:oid:1.3.182.6.1"
SUBMISSION_SET = {"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}
UNIQUE_IDS = "urn:ietf:rfc:3986"
RELATIONSHIPS = "urn:oid:1.3.182.6.2"  # the platform's codes of care relationships (treating, referent)
RELATIONSHIP_DAYS = 180  # a treating relationship lasts at most six months
PDF = "application/pdf"
MISLABELLED = "text/plain"  # the source-wrong-media-type fault's label for a PDF
FINAL_REFUSALS = (403, 404)  # the platform's word on a document: not a passing failure
FAULTY_RETRIES = 3  # the consumer-retries-403 fault's attempts


def pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` (ASCII), with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def who_signed_in(client: Client) -> str:
    """The signed-in professional (``PractitionerRole/…``), as the platform's userinfo names them."""
    if client.fhir.token is None:
        client.fhir.token = client.smart.access_token()
    endpoint = client.smart.discover().get("userinfo_endpoint")
    if not endpoint:
        raise ScenarioFailed("the platform announces no userinfo_endpoint: who signed in is unknown")
    answer = client.wire.http.get(
        str(endpoint), headers={"Authorization": f"Bearer {client.fhir.token}", "Accept": "application/json"}
    )
    user = answer.json().get("fhirUser") if answer.status_code == 200 else None
    if not user:
        raise ScenarioFailed(f"userinfo answered HTTP {answer.status_code} without the user's fhirUser")
    return str(user).split("/fhir/")[-1]


def declare_care_relationship(client: Client, patient: str, professional: str) -> None:
    """An active CareTeam of the patient and the professional, created by them (purpose TREAT at sign-in)."""
    today = datetime.datetime.now(datetime.UTC).date()
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "category": [{"coding": [{"system": RELATIONSHIPS, "code": "treating"}]}],
        "name": "Care relationship",
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"member": {"reference": professional}}],
        "period": {"start": today.isoformat(), "end": (today + datetime.timedelta(days=RELATIONSHIP_DAYS)).isoformat()},
    }
    expect(client.fhir.request("POST", "CareTeam", team), 201, what=f"declare care relationship with {patient}")


# --- document source ----------------------------------------------------------------------------


def _inputs(client: Client) -> tuple[str, str, str]:
    patient, kind, title = (client.config.input(name, "") for name in ("patient", "doc_type", "title"))
    client.config.require(input_patient=patient, input_doc_type=kind, input_title=title)
    return patient, kind, title


def provide(client: Client, author: str, text: str, replaces: str | None = None) -> str:
    """ITI-65: a transaction of the SubmissionSet, the DocumentReference and its Binary (a PDF of ``text``);
    the ``DocumentReference/<id>`` the platform gave."""
    patient, kind, title = _inputs(client)
    content = pdf(text)
    media_type = MISLABELLED if "source-wrong-media-type" in client.faults else PDF
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    document_url, binary_url, set_url = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    subject = {"reference": f"Patient/{patient}"}
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": UNIQUE_IDS, "value": f"urn:uuid:{uuid.uuid4()}"},
        "status": "current",
        "type": {"coding": [{"system": DOCUMENT_TYPES, "code": kind}]},
        "subject": subject,
        "date": now,
        "author": [{"reference": author}],
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": media_type,
                    "url": binary_url,
                    "title": title,
                    "size": len(content),
                    "creation": now,
                }
            }
        ],
    }
    if replaces and "source-duplicates-corrections" not in client.faults:
        document["relatesTo"] = [{"code": "replaces", "target": {"reference": replaces}}]
    submission_set = {
        "resourceType": "List",
        "identifier": [{"use": "official", "system": UNIQUE_IDS, "value": f"urn:uuid:{uuid.uuid4()}"}],
        "status": "current",
        "mode": "working",
        "code": {"coding": [SUBMISSION_SET]},
        "subject": subject,
        "date": now,
        "source": {"reference": author},
        "entry": [{"item": {"reference": document_url}}],
    }
    binary = {"resourceType": "Binary", "contentType": media_type, "data": base64.b64encode(content).decode()}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": set_url, "resource": submission_set, "request": {"method": "POST", "url": "List"}},
            {"fullUrl": document_url, "resource": document, "request": {"method": "POST", "url": "DocumentReference"}},
            {"fullUrl": binary_url, "resource": binary, "request": {"method": "POST", "url": "Binary"}},
        ],
    }
    answer = expect(client.fhir.request("POST", "", bundle), 200, what=f"provide {title!r}")
    location = str(answer.get("entry", [{}, {}])[1].get("response", {}).get("location", ""))
    if "DocumentReference/" not in location:
        raise ScenarioFailed(f"provide {title!r}: the transaction-response gives no DocumentReference location")
    return "DocumentReference/" + location.split("DocumentReference/", 1)[1].partition("/")[0]


def _sign_in_for(client: Client) -> str:
    patient, _, _ = _inputs(client)
    author = who_signed_in(client)
    declare_care_relationship(client, patient, author)
    return author


def publish(client: Client) -> None:
    """A professional publishes a document to the patient's record."""
    author = _sign_in_for(client)
    provide(client, author, client.config.input("text", "Compte rendu"))


def correct(client: Client) -> None:
    """A professional publishes a document, finds a mistake and publishes the corrected version."""
    author = _sign_in_for(client)
    first = provide(client, author, client.config.input("text", "Compte rendu"))
    provide(client, author, client.config.input("corrected_text", "Compte rendu (corrige)"), replaces=first)


# --- document consumer --------------------------------------------------------------------------


def _refused_for_good(client: Client, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """One request; a 403 is the platform's decision, sent again only by the consumer-retries-403 fault."""
    answer = client.fhir.request(method, path, headers=headers)
    if "consumer-retries-403" in client.faults:
        for _ in range(FAULTY_RETRIES):
            if answer.status_code != 403:
                break
            answer = client.fhir.request(method, path, headers=headers)
    return answer


def read_record(client: Client) -> None:
    """A professional opens a patient's documents: declares the care relationship, finds the current
    documents, retrieves each one's content in its media type. A document refused (403/404: masked,
    or gone) is left out for good; a refused search means no access to this record: said, not retried."""
    patient = client.config.input("patient", "")
    client.config.require(input_patient=patient)
    professional = who_signed_in(client)
    if "consumer-no-care-relationship" not in client.faults:
        declare_care_relationship(client, patient, professional)
    search = [("patient", f"Patient/{patient}"), ("status", "current")]
    if kind := client.config.input("doc_type", ""):
        search.append(("type", f"{DOCUMENT_TYPES}|{kind}"))
    found = _refused_for_good(client, "GET", "DocumentReference?" + urlencode(search))
    if found.status_code in FINAL_REFUSALS:
        print(f"the platform refuses access to the documents of {patient} (HTTP {found.status_code})")
        return
    bundle = expect(found, 200, what=f"find the documents of {patient}")
    documents = [e["resource"] for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType")]
    retrieved = 0
    for document in documents:
        for content in document.get("content", []):
            attachment = content.get("attachment", {})
            url, media_type = str(attachment.get("url", "")), str(attachment.get("contentType", ""))
            if not url or not media_type:
                continue
            answer = _refused_for_good(client, "GET", url, {"Accept": media_type})
            if answer.status_code in FINAL_REFUSALS:
                print(f"{document.get('id')}: not available (HTTP {answer.status_code}), left out")
                break
            if answer.status_code != 200:
                raise ScenarioFailed(f"retrieve {url}: HTTP {answer.status_code}")
            retrieved += 1
    print(f"{len(documents)} documents of {patient}, {retrieved} retrieved")
