"""The DSP over real HTTP: document types, provide, find, retrieve, replace, and the demo documents."""

from __future__ import annotations

import json

import pytest

from reference_impl.naming import NATIONAL_ID, PLATFORM_ID
from reference_impl.services.dsp.demo import PUBLISHED_COUNTS, demo_counts, demo_documents, minimal_pdf
from reference_impl.services.dsp.doctypes import CODE_SYSTEM_FILE, SYSTEM, document_types
from tests.reference_impl.services.dsp.conftest import Platform, document, ref


def expressions(response_json: dict[str, object]) -> list[str]:
    return [e for issue in response_json["issue"] for e in issue.get("expression", [])]  # type: ignore[attr-defined]


def test_the_code_system_has_the_27_types_with_french_and_english() -> None:
    code_system = json.loads(CODE_SYSTEM_FILE.read_text(encoding="utf-8"))
    assert code_system["url"] == SYSTEM and code_system["count"] == 27 == len(code_system["concept"])
    assert set(document_types()) == set(PUBLISHED_COUNTS)
    assert document_types()["DISCHARGE"] == "CR de séjours hospitaliers et lettres de sortie"
    assert all([d["language"] for d in c["designation"]] == ["en"] for c in code_system["concept"])


def test_the_code_system_is_served(platform: Platform) -> None:
    bundle = platform.client.get("CodeSystem", params={"url": SYSTEM}).json()
    assert bundle["total"] == 1 and len(bundle["entry"][0]["resource"]["concept"]) == 27


@pytest.mark.parametrize("coding", [{"system": SYSTEM, "code": "NOPE"}, {"system": "http://loinc.org", "code": "1"}])
def test_an_unknown_or_missing_dsp_type_is_422_on_type(platform: Platform, coding: dict[str, str]) -> None:
    patient = platform.patient()
    response = platform.provide((document(ref(patient), type={"coding": [coding]}), b"x", "text/plain"))
    assert response.status_code == 422
    assert expressions(response.json()) == ["DocumentReference.type"]


def test_a_provide_stores_all_and_rewrites_the_attachment_url(platform: Platform) -> None:
    patient = platform.patient()
    stored = platform.provided((document(ref(patient)), b"lettre", "text/plain"))
    assert stored[0].startswith("List/") and stored[1].startswith("Binary/")
    doc = platform.client.get(stored[2]).json()
    assert doc["content"][0]["attachment"]["url"] == stored[1]
    assert platform.client.get(stored[0]).json()["entry"][0]["item"]["reference"] == stored[2]


def test_a_refused_document_rolls_the_whole_provide_back(platform: Platform) -> None:
    patient = platform.patient()
    response = platform.provide(
        (document(ref(patient)), b"ok", "text/plain"), (document(ref(patient), "NOPE"), b"ko", "text/plain")
    )
    assert response.status_code == 422
    found = platform.client.get("DocumentReference", params={"patient": patient["id"]}).json()
    assert found["total"] == 0


@pytest.mark.parametrize("system", [PLATFORM_ID, NATIONAL_ID])
def test_an_identifier_subject_is_resolved(platform: Platform, system: str) -> None:
    patient = platform.patient()
    patient = platform.client.get(f"Patient/{patient['id']}").json()
    value = next(i["value"] for i in patient["identifier"] if i["system"] == system)
    stored = platform.provided((document({"identifier": {"system": system, "value": value}}), b"x", "text/plain"))
    assert platform.client.get(stored[2]).json()["subject"]["reference"] == f"Patient/{patient['id']}"
    unknown = platform.provide((document({"identifier": {"system": system, "value": "0"}}), b"x", "text/plain"))
    assert unknown.status_code == 422 and expressions(unknown.json()) == ["DocumentReference.subject"]


def test_a_merged_patient_is_refused_naming_the_survivor(platform: Platform) -> None:
    patient, survivor = platform.patient(), platform.patient()
    merged = {**patient, "active": False, "link": [{"other": ref(survivor), "type": "replaced-by"}]}
    assert platform.client.put(f"Patient/{patient['id']}", json=merged).status_code == 200
    response = platform.provide((document(ref(patient)), b"x", "text/plain"))
    assert response.status_code == 422 and f"Patient/{survivor['id']}" in response.text


def test_attachments_and_status_are_checked(platform: Platform) -> None:
    patient = platform.patient()
    bare = {**document(ref(patient), status="entered-in-error"), "content": [{"attachment": {"url": "http://x/y"}}]}
    response = platform.client.post("DocumentReference", json=bare)
    assert response.status_code == 422
    assert sorted(expressions(response.json())) == [
        "DocumentReference.content[0].attachment.contentType",
        "DocumentReference.content[0].attachment.url",
        "DocumentReference.status",
    ]
    inline = {**document(ref(patient)), "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}
    assert platform.client.post("DocumentReference", json=inline).status_code == 201


def test_find_retrieve_and_replace(platform: Platform) -> None:
    patient = platform.patient()
    pdf = minimal_pdf(["Compte rendu"])
    _, binary, old = platform.provided((document(ref(patient), "IMAGING"), pdf, "application/pdf"))
    raw = platform.client.get(binary, headers={"Accept": "application/pdf"})
    assert raw.headers["content-type"] == "application/pdf" and raw.content == pdf
    assert platform.client.get(binary).json()["contentType"] == "application/pdf"
    replaces = [{"code": "replaces", "target": {"reference": old}}]
    new = platform.provided((document(ref(patient), "IMAGING", relatesTo=replaces), pdf, "application/pdf"))[2]
    current = platform.client.get(
        "DocumentReference", params={"patient": patient["id"], "status": "current", "type": f"{SYSTEM}|IMAGING"}
    ).json()
    assert [e["resource"]["id"] for e in current["entry"]] == [new.split("/")[1]]
    assert platform.client.get(old).json()["status"] == "superseded"
    again = platform.provide((document(ref(patient), "IMAGING", relatesTo=replaces), pdf, "application/pdf"))
    assert again.status_code == 422 and expressions(again.json()) == ["DocumentReference.relatesTo[0].target"]


def test_demo_documents_follow_the_published_proportions(platform: Platform) -> None:
    counts = demo_counts()
    assert set(counts) == set(document_types()) and min(counts.values()) == 1
    assert max(counts, key=lambda code: counts[code]) == "PATSUMMARY"
    documents = [r for r in demo_documents() if r["resourceType"] == "DocumentReference"]
    assert len(documents) == sum(counts.values()) + 1  # patient 1's summary was written twice
    mine = platform.client.get("DocumentReference", params={"patient": "pat-0001", "_count": "50"}).json()
    statuses = sorted(e["resource"]["status"] for e in mine["entry"])
    assert statuses == ["current"] * 4 + ["superseded"]
    letter = platform.client.get("Binary/bin-0001", headers={"Accept": "text/plain"})
    assert "Compte rendu d'hospitalisation" in letter.text
    assert platform.client.get("Binary/bin-0003", headers={"Accept": "application/pdf"}).content.startswith(b"%PDF-1.4")
