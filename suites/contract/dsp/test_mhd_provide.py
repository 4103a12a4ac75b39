"""Document types and provide (ITI-65): dsp@1-8, with patients and documents of the check's own."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.dsp.support import (
    DOCUMENT_TYPES,
    DSP_TYPES,
    NATIONAL_ID,
    PLATFORM_ID,
    Provide,
    assert_refused_naming,
    document,
    identifier_of,
    new_patient,
    ref,
)
from suites.contract.fhir_toolkit import entries, read, search, shown


@pytest.mark.requirement("dsp@1")
def test_the_document_types_code_system_is_served(fhir_client: EvidenceClient) -> None:
    """CodeSystem urn:oid:1.3.182.6.1 lists the 27 document types of SPEC section 5 with their displays"""
    found = entries(search(fhir_client, "CodeSystem", {"url": DSP_TYPES}))
    assert len(found) == 1, f"CodeSystem?url={DSP_TYPES} found {len(found)} CodeSystems; expected exactly one"
    concepts = {str(c.get("code")): c.get("display") for c in found[0].get("concept") or [] if isinstance(c, dict)}
    assert set(concepts) == set(DOCUMENT_TYPES), (
        f"the CodeSystem's codes differ from SPEC section 5: missing {sorted(set(DOCUMENT_TYPES) - set(concepts))}, "
        f"extra {sorted(set(concepts) - set(DOCUMENT_TYPES))}"
    )
    wrong = {code: shown_display for code, shown_display in concepts.items() if shown_display != DOCUMENT_TYPES[code]}
    assert not wrong, f"displays differ from SPEC section 5: {wrong}"


@pytest.mark.requirement("dsp@2")
@pytest.mark.parametrize(
    "coding", [{"system": DSP_TYPES, "code": "NOSUCHTYPE"}, {"system": "http://loinc.org", "code": "18842-5"}]
)
def test_a_document_without_a_known_dsp_type_is_refused(
    fhir_client: EvidenceClient, unique: str, coding: dict[str, str]
) -> None:
    """a document typed by an unknown DSP code, or by no DSP code at all, is refused with 422 on its type"""
    patient = new_patient(fhir_client, unique)
    provide = Provide(unique, ref(patient))
    provide.add(document(unique, ref(patient), type={"coding": [coding]}))
    response = provide.send(fhir_client)
    assert_refused_naming(response, "DocumentReference.type", f"a document typed {coding['system']}|{coding['code']}")


@pytest.mark.requirement("dsp@3")
def test_a_provide_stores_submission_set_documents_and_binaries(fhir_client: EvidenceClient, unique: str) -> None:
    """a provide transaction stores its SubmissionSet, documents and Binaries, linked to each other"""
    patient = new_patient(fhir_client, unique)
    provide = Provide(unique, ref(patient))
    provide.add(document(unique, ref(patient), "DISCHARGE"))
    provide.add(document(unique, ref(patient), "LABRESULT"), b"Hemoglobine 13.9 g/dL", "text/plain")
    stored = provide.stored(fhir_client)
    submission_set, binaries, documents = stored[0], stored[1::2], stored[2::2]
    assert submission_set.startswith("List/"), (
        f"the provide's first entry was stored as {submission_set}; expected a List"
    )
    listed = read(fhir_client, *submission_set.split("/"))
    items = [(e.get("item") or {}).get("reference", "") for e in listed.get("entry") or []]
    listed_keys = {"/".join(str(i).split("/_history")[0].split("/")[-2:]) for i in items}
    assert listed_keys == set(documents), (
        f"the stored SubmissionSet {submission_set} lists {items}; expected the stored documents {documents}"
    )
    for binary, doc_key in zip(binaries, documents, strict=True):
        doc = read(fhir_client, *doc_key.split("/"))
        url = str(doc["content"][0]["attachment"].get("url", ""))
        assert url.endswith(binary), (
            f"{doc_key} has content.attachment.url {url!r}; expected it to name the stored {binary} (the "
            "transaction replaces the Binary's urn:uuid: full URL)"
        )


@pytest.mark.requirement("dsp@4")
def test_a_provide_with_a_refused_document_stores_nothing(fhir_client: EvidenceClient, unique: str) -> None:
    """when one document of a provide is refused, neither the SubmissionSet nor any Binary or document is stored"""
    patient = new_patient(fhir_client, unique)
    provide = Provide(unique, ref(patient))
    provide.add(document(unique, ref(patient), "DISCHARGE"))
    provide.add(document(unique, ref(patient), "NOSUCHTYPE"))
    response = provide.send(fhir_client)
    assert response.status_code >= 400, f"a provide with a document of an unknown type answered {shown(response)}"
    for type_name in ("DocumentReference", "List"):
        left = entries(search(fhir_client, type_name, {"identifier": f"urn:eqlab:contract|{unique}"}))
        assert not left, f"the refused provide left {len(left)} {type_name}(s) stored; a transaction is atomic"


@pytest.mark.requirement("dsp@5")
def test_a_document_of_no_active_patient_is_refused(fhir_client: EvidenceClient, unique: str) -> None:
    """a document whose subject is an unknown or inactive Patient is refused with 422 on its subject"""
    unknown = {"reference": f"Patient/{unique}-nobody"}
    provide = Provide(unique, unknown)
    provide.add(document(unique, unknown))
    assert_refused_naming(provide.send(fhir_client), "DocumentReference.subject", "a document of an unknown Patient")
    patient = new_patient(fhir_client, unique)
    inactive = fhir_client.put(f"Patient/{patient['id']}", json={**patient, "active": False})
    assert inactive.status_code == 200, f"making this check's Patient inactive answered {shown(inactive)}"
    provide = Provide(unique, ref(patient))
    provide.add(document(unique, ref(patient)))
    assert_refused_naming(provide.send(fhir_client), "DocumentReference.subject", "a document of an inactive Patient")


@pytest.mark.requirement("dsp@6")
@pytest.mark.parametrize("system", [PLATFORM_ID, NATIONAL_ID])
def test_a_subject_given_by_identifier_is_resolved_to_the_patient(
    fhir_client: EvidenceClient, unique: str, system: str
) -> None:
    """a document whose subject is the patient's platform id or matricule is stored as that Patient's"""
    patient = new_patient(fhir_client, unique)
    by_identifier = {"identifier": {"system": system, "value": identifier_of(patient, system)}}
    provide = Provide(unique, ref(patient))
    provide.add(document(unique, by_identifier))
    doc_key = provide.stored(fhir_client)[2]
    stored = read(fhir_client, *doc_key.split("/"))
    subject = str((stored.get("subject") or {}).get("reference", ""))
    assert subject.endswith(f"Patient/{patient['id']}"), (
        f"{doc_key}, provided with subject.identifier {system}|…, was stored with subject.reference {subject!r}; "
        f"expected Patient/{patient['id']}"
    )
    found = entries(search(fhir_client, "DocumentReference", {"patient": patient["id"]}))
    assert doc_key.split("/")[1] in [d.get("id") for d in found], (
        f"DocumentReference?patient={patient['id']} does not find {doc_key}, provided for that patient by identifier"
    )
    nobody = Provide(unique, ref(patient))
    nobody.add(document(unique, {"identifier": {"system": system, "value": f"{unique}-nobody"}}))
    assert_refused_naming(nobody.send(fhir_client), "DocumentReference.subject", "a document of an unknown identifier")


@pytest.mark.requirement("dsp@7")
def test_an_attachment_without_media_type_or_content_is_refused(fhir_client: EvidenceClient, unique: str) -> None:
    """an attachment without contentType, or with neither a Binary url nor data, is refused with 422"""
    patient = new_patient(fhir_client, unique)
    for attachment, what in (
        ({"url": "Binary/eqlab-nothing", "title": "x"}, "an attachment without contentType"),
        ({"contentType": "text/plain", "title": "x"}, "an attachment with neither url nor data"),
    ):
        doc = {**document(unique, ref(patient)), "content": [{"attachment": attachment}]}
        response = fhir_client.post("DocumentReference", json=doc)
        assert_refused_naming(response, "attachment", what)


@pytest.mark.requirement("dsp@8")
def test_a_document_is_provided_current(fhir_client: EvidenceClient, unique: str) -> None:
    """a new document with a status other than current is refused with 422 on its status"""
    patient = new_patient(fhir_client, unique)
    provide = Provide(unique, ref(patient))
    provide.add(document(unique, ref(patient), status="superseded"))
    assert_refused_naming(provide.send(fhir_client), "DocumentReference.status", "a document provided superseded")
