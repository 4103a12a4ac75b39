"""The shared care record's client checks (suites/client/dsp) on hand-made journals: each passes what a
well-behaved document source or consumer sends, fails what breaks its rule citing the request that
proves it, and skips a run with nothing to judge."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from suites.client.dsp import test_document_consumer as consumer
from suites.client.dsp import test_document_source as source
from tests.support.journals import TARGET, fails, passes, request, run_of

DOCTOR = "PractitionerRole/role-001"
PDF = base64.b64encode(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n").decode()
TOKEN = "[SEALED s256=" + "a" * 43 + " len=300]"
CODE = "[SEALED s256=" + "c" * 43 + " len=40]"


# --- document source ----------------------------------------------------------------------------


def document(title: str = "Bilan", code: str = "LABRESULT", **changes: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "urn:oid:1.3.182.6.1", "code": code}]},
        "subject": {"reference": "Patient/pat-0002"},
        "author": [{"reference": DOCTOR}],
        "content": [{"attachment": {"contentType": "application/pdf", "url": "urn:uuid:b", "title": title}}],
    }
    resource.update(changes)
    return {k: v for k, v in resource.items() if v is not None}


def provide(
    doc: dict[str, Any] | None = None, binary: dict[str, Any] | None = None, answered: str = "d1", **fields: Any
) -> dict[str, Any]:
    submission_set = {
        "resourceType": "List",
        "code": {"coding": [{"code": "submissionset"}]},
        "subject": {"reference": "Patient/pat-0002"},
        "entry": [{"item": {"reference": "urn:uuid:d"}}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:s", "resource": submission_set, "request": {"method": "POST", "url": "List"}},
            {"fullUrl": "urn:uuid:d", "resource": doc or document(), "request": {"method": "POST", "url": "x"}},
            {
                "fullUrl": "urn:uuid:b",
                "resource": binary or {"resourceType": "Binary", "contentType": "application/pdf", "data": PDF},
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    }
    response = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {"response": {"status": "201 Created", "location": "List/s1/_history/1"}},
            {"response": {"status": "201 Created", "location": f"DocumentReference/{answered}/_history/1"}},
            {"response": {"status": "201 Created", "location": "Binary/b1/_history/1"}},
        ],
    }
    return request("POST", "", json_body=bundle, response_json=response, **fields)


USERINFO = {"method": "GET", "path": "/auth/userinfo", "response_json": {"sub": "doctor1", "fhirUser": DOCTOR}}

SOURCE_CHECKS = (
    source.test_documents_are_provided_as_iti65_transactions,
    source.test_every_document_has_a_type_of_the_national_list,
    source.test_documents_name_their_patient_by_the_platform,
    source.test_documents_are_authored_by_the_signed_in_professional,
    source.test_document_content_has_its_true_media_type,
    source.test_a_corrected_document_replaces_the_one_it_corrects,
)


def test_a_clean_source_passes_every_source_check() -> None:
    replacing = document(relatesTo=[{"code": "replaces", "target": {"reference": "DocumentReference/d1"}}])
    run = run_of(
        dict(USERINFO), provide(), provide(replacing, answered="d2"), provide(document("Autre"), answered="d3")
    )
    for check in SOURCE_CHECKS:
        assert passes(check, run)


def test_a_document_outside_an_iti65_transaction_fails() -> None:
    check = source.test_documents_are_provided_as_iti65_transactions
    assert fails(
        check, run_of(request("POST", "DocumentReference", json_body=document())), "sent on its own", "#1 POST"
    )
    batch = provide()
    batch["json_body"]["type"] = "batch"
    assert fails(check, run_of(batch), "in a batch Bundle, not a transaction")
    unlisted = provide()
    unlisted["json_body"]["entry"][0]["resource"]["entry"] = []
    assert fails(check, run_of(unlisted), "is not listed by the SubmissionSet")
    no_set = provide()
    del no_set["json_body"]["entry"][0]
    assert fails(check, run_of(no_set), "0 SubmissionSet Lists")
    elsewhere = document()
    elsewhere["content"][0]["attachment"]["url"] = "http://elsewhere/doc.pdf"
    assert fails(check, run_of(provide(elsewhere)), "not to a Binary of the Bundle")


@pytest.mark.parametrize(
    ("changes", "why"),
    [({"type": {"text": "lab"}}, "no type coding of urn:oid:1.3.182.6.1"), ({"code": "XRAY"}, "['XRAY'] is not one")],
)
def test_a_document_without_a_national_type_fails(changes: dict[str, Any], why: str) -> None:
    doc = document(code=changes.pop("code", "LABRESULT"), **changes)
    assert fails(
        source.test_every_document_has_a_type_of_the_national_list, run_of(provide(doc)), why, "(Bundle entry 1)"
    )


def test_a_patient_named_otherwise_than_by_the_platform_fails() -> None:
    check = source.test_documents_name_their_patient_by_the_platform
    local = {"identifier": {"system": "urn:oid:1.3.182.2.4.2.1004", "value": "HRS-1"}}
    assert fails(check, run_of(provide(document(subject=local))), "is no patient of the platform")
    platform_id = {"identifier": {"system": "urn:oid:1.3.182.2.4.2", "value": "p-1"}}
    assert fails(check, run_of(provide(document(subject=platform_id))), "one SubmissionSet for several patients")
    contained = {"reference": "#p"}
    assert fails(check, run_of(provide(document(subject=contained))), "is no patient of the platform")


def test_an_author_other_than_the_signed_in_professional_fails() -> None:
    check = source.test_documents_are_authored_by_the_signed_in_professional
    other = document(author=[{"reference": "PractitionerRole/role-002"}])
    assert fails(check, run_of(dict(USERINFO), provide(other)), f"the signed-in professional {DOCTOR} is not among")
    both = document(author=[{"reference": DOCTOR}, {"reference": "Practitioner/prac-009"}])
    assert fails(check, run_of(dict(USERINFO), provide(both)), "authored by ['Practitioner/prac-009'] besides")
    nobody = document(author=[{"reference": "Organization/o1"}])
    assert fails(check, run_of(provide(nobody)), "no Practitioner or PractitionerRole among the authors")


@pytest.mark.parametrize(
    ("declared", "binary_type", "data", "why"),
    [
        ("text/plain", "text/plain", PDF, "pdf content labelled text/plain"),
        ("application/pdf", "text/plain", PDF, "its Binary's contentType text/plain"),
        ("application/pdf", "application/pdf", base64.b64encode(b"<ClinicalDocument/>").decode(), "xml content"),
        ("", "application/pdf", PDF, "an attachment without contentType"),
    ],
)
def test_content_labelled_with_a_wrong_media_type_fails(declared: str, binary_type: str, data: str, why: str) -> None:
    doc = document()
    doc["content"][0]["attachment"]["contentType"] = declared
    binary = {"resourceType": "Binary", "contentType": binary_type, "data": data}
    assert fails(source.test_document_content_has_its_true_media_type, run_of(provide(doc, binary)), why)


def test_media_types_name_what_the_bytes_are() -> None:
    assert source.sniffed(b'{"resourceType": "Bundle"}') == "json"
    assert source.sniffed("Résultats".encode()) == "text"
    assert source.sniffed(b"\x89PNG\r\n\x1a\n...") == "png"
    assert source.sniffed(b"\x00\x01\x02\xff") is None
    assert source.admits("xml", "application/hl7-cda+xml") and source.admits("text", "text/plain; charset=utf-8")
    assert not source.admits("text", "text/html")


def test_a_correction_published_as_a_new_document_fails_naming_the_first() -> None:
    check = source.test_a_corrected_document_replaces_the_one_it_corrects
    assert fails(check, run_of(provide(), provide(answered="d2")), "published again as a new document, not replacing")
    by_uuid = document(relatesTo=[{"code": "replaces", "target": {"reference": "urn:uuid:d"}}])
    assert fails(check, run_of(provide(), provide(by_uuid, answered="d2")), "not DocumentReference/<id>")
    refused = provide()
    refused["response_json"]["entry"][1]["response"]["status"] = "422 Unprocessable Entity"
    assert passes(check, run_of(refused, provide(answered="d2")))  # the first never entered the record


# --- document consumer --------------------------------------------------------------------------


def signed_in(purpose: str | None = "TREAT") -> list[dict[str, Any]]:
    """The consent form sent (its answer redirects back with the code) and the code exchanged for a token."""
    consent = {
        "method": "POST",
        "path": "/auth/consent",
        "form": [("decision", "allow")] + ([("purpose_of_use", purpose)] if purpose else []),
        "status": 303,
        "response_headers": {"location": f"http://127.0.0.1:8404/callback?code={CODE}&state=x"},
    }
    token = {
        "method": "POST",
        "path": "/auth/token",
        "form": [("grant_type", "authorization_code"), ("code", CODE)],
        "response_json": {"access_token": TOKEN, "token_type": "Bearer"},
    }
    return [consent, token]


def as_user(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "headers": {"authorization": f"Bearer {TOKEN}", **entry.get("headers", {})}}


CARE_TEAM = {"resourceType": "CareTeam", "status": "active", "subject": {"reference": "Patient/pat-0001"}}
FOUND = {
    "resourceType": "Bundle",
    "type": "searchset",
    "entry": [
        {
            "resource": {
                "resourceType": "DocumentReference",
                "id": "d1",
                "subject": {"reference": "Patient/pat-0001"},
                "content": [{"attachment": {"contentType": "application/pdf", "url": "Binary/b1"}}],
            }
        }
    ],
}


def declare() -> dict[str, Any]:
    return as_user(request("POST", "CareTeam", json_body=CARE_TEAM, status=201))


def find(**fields: Any) -> dict[str, Any]:
    return as_user(request("GET", "DocumentReference", "patient=Patient/pat-0001&status=current", **fields))


def retrieve(accept: str = "application/pdf", **fields: Any) -> dict[str, Any]:
    return as_user(request("GET", "Binary/b1", headers={"accept": accept}, **fields))


CONSUMER_CHECKS = (
    consumer.test_documents_are_found_for_a_patient_with_a_purpose_of_use,
    consumer.test_a_care_relationship_is_declared_before_reading,
    consumer.test_content_is_retrieved_with_its_media_type,
)


def test_a_clean_consumer_passes_every_consumer_check() -> None:
    run = run_of(*signed_in(), declare(), find(response_json=FOUND), retrieve(), retrieve("*/*"))
    for check in CONSUMER_CHECKS:
        assert passes(check, run)
    refused = run_of(*signed_in(), declare(), find(response_json=FOUND), retrieve(status=403), find(status=200))
    assert passes(consumer.test_a_403_is_not_retried_as_if_transient, refused)
    assert passes(consumer.test_a_refused_document_is_never_used_again, refused)


def test_a_search_without_patient_or_purpose_fails() -> None:
    check = consumer.test_documents_are_found_for_a_patient_with_a_purpose_of_use
    no_patient = as_user(request("GET", "DocumentReference", "status=current"))
    assert fails(check, run_of(*signed_in(), no_patient), "naming no patient", "#3 GET /fhir/DocumentReference")
    assert fails(check, run_of(*signed_in(purpose=None), find()), "granted without a purpose of use")
    assert fails(check, run_of(*signed_in("PATRQT"), find()), "a token granted for PATRQT")
    system = {
        "method": "POST",
        "path": "/auth/token",
        "form": [("grant_type", "client_credentials")],
        "response_json": {"access_token": TOKEN},
    }
    assert fails(check, run_of(system, find()), "a token of the client_credentials grant")
    assert fails(check, run_of(find()), "a token the platform did not issue in this run")


def test_a_refreshed_token_keeps_the_purpose_it_was_granted_for() -> None:
    refreshed = "[SEALED s256=" + "r" * 43 + " len=300]"
    rotated = "[SEALED s256=" + "t" * 43 + " len=40]"
    consent, token = signed_in()
    token["response_json"]["refresh_token"] = rotated
    refresh = {
        "method": "POST",
        "path": "/auth/token",
        "form": [("grant_type", "refresh_token"), ("refresh_token", rotated)],
        "response_json": {"access_token": refreshed},
    }
    search = request("GET", "DocumentReference", "patient=pat-0001", headers={"authorization": f"Bearer {refreshed}"})
    check = consumer.test_documents_are_found_for_a_patient_with_a_purpose_of_use
    assert passes(check, run_of(consent, token, refresh, search))


def test_reading_before_a_care_relationship_fails() -> None:
    check = consumer.test_a_care_relationship_is_declared_before_reading
    assert fails(check, run_of(*signed_in(), find(), declare()), "documents of Patient/pat-0001 read with no care")
    refused = as_user(request("POST", "CareTeam", json_body=CARE_TEAM, status=403))
    assert fails(check, run_of(refused, find()), "no care relationship declared")
    other = {**CARE_TEAM, "subject": {"reference": "Patient/pat-0002"}}
    assert fails(check, run_of(as_user(request("POST", "CareTeam", json_body=other, status=201)), find()), "pat-0001")
    found = as_user(
        request(
            "GET",
            "CareTeam",
            "patient=pat-0001",
            response_json={"resourceType": "Bundle", "entry": [{"resource": CARE_TEAM}]},
        )
    )
    assert passes(check, run_of(found, find()))
    elsewhere = run_of(declare(), find(scenario="t"))
    assert fails(check, elsewhere, "read with no care relationship")


def test_a_retrieve_that_does_not_admit_the_media_type_fails() -> None:
    check = consumer.test_content_is_retrieved_with_its_media_type
    for accept in ("application/fhir+json", "text/*", "application/pdf;q=0, */*;q=0"):
        assert fails(
            check, run_of(find(response_json=FOUND), retrieve(accept)), f"Accept {accept!r}", "#2 GET /fhir/Binary/b1"
        )
    assert passes(check, run_of(find(response_json=FOUND), retrieve("application/*")))
    with pytest.raises(pytest.skip.Exception, match="nothing to judge"):
        check(run_of(retrieve("application/fhir+json")), TARGET)  # a Binary no document listed


def test_a_403_sent_again_fails_unless_something_changed() -> None:
    check = consumer.test_a_403_is_not_retried_as_if_transient
    assert fails(
        check, run_of(find(status=403), find(status=403), find()), "sent again after the 403 of #1", ": #2 GET"
    )
    assert passes(check, run_of(find(status=403), declare(), find()))
    assert passes(check, run_of(find(status=403), *signed_in(), find()))
    assert passes(check, run_of(find(status=403), find(scenario="t")))


def test_a_refused_document_used_again_fails() -> None:
    check = consumer.test_a_refused_document_is_never_used_again
    read_again = as_user(request("GET", "DocumentReference/d1"))
    assert fails(
        check, run_of(find(response_json=FOUND), retrieve(status=404), read_again), "DocumentReference/d1 used after #2"
    )
    cited = as_user(
        request("POST", "Communication", json_body={"payload": [{"contentReference": {"reference": "Binary/b1"}}]})
    )
    read_refused = as_user(request("GET", "DocumentReference/d1", status=403, response_json=None))
    assert fails(check, run_of(find(response_json=FOUND), read_refused, cited), "Binary/b1 used after #2")


def test_consumer_checks_with_nothing_to_judge_skip() -> None:
    empty = run_of(*signed_in(), as_user(request("GET", "Patient/pat-0001")))
    for check in (*SOURCE_CHECKS, *CONSUMER_CHECKS, consumer.test_a_403_is_not_retried_as_if_transient,
                  consumer.test_a_refused_document_is_never_used_again):  # fmt: skip
        with pytest.raises(pytest.skip.Exception, match="nothing to judge"):
            check(copy.deepcopy(empty), TARGET)
