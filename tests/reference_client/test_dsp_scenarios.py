"""The reference client's shared care record scenarios against the reference implementation: as a
document source a signed-in doctor publishes ITI-65 transactions and replaces what they correct; as a
consumer they declare a care relationship, find and retrieve in each document's media type, and take a
403 as final. Each DSP fault changes the request it names."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from reference_impl.seed import accounts
from tests.reference_client.conftest import Lab, Run, Sent
from tests.support.servers import sqlite_url

pytestmark = pytest.mark.slow

SCOPE = "openid fhirUser user/DocumentReference.crs user/Binary.cr user/List.cr user/CareTeam.crs"
DOCTOR = "PractitionerRole/role-001"
APP = "dsp-professional-app"
REDIRECT = "http://127.0.0.1:8405/callback"
PUBLISH = {"patient": "pat-0002", "doc_type": "MEDREPORT", "title": "Rapport", "text": "Rapport de consultation"}


@pytest.fixture(scope="module", autouse=True)
def professional_app(lab: Lab) -> None:
    """A public app registered with the user scopes a professional's records system asks for."""
    accounts.register_test_client(sqlite_url(lab.directory), APP, "public", SCOPE, redirect_uris=[REDIRECT])


def doctor(lab: Lab, **inputs: str) -> dict[str, str]:
    """The professional app signing doctor1 in."""
    return {
        "EQLAB_FHIR_BASE": lab.fhir_base,
        "EQLAB_CLIENT_ID": APP,
        "EQLAB_REDIRECT_URI": REDIRECT,
        "EQLAB_USERNAME": "doctor1",
        "EQLAB_PASSWORD": accounts.PASSWORD_PREFIX + "doctor1",
        "EQLAB_SCOPE": SCOPE,
        **{f"EQLAB_INPUT_{name.upper()}": value for name, value in inputs.items()},
    }


def bundles(lab: Lab, run: Run) -> list[dict[str, Any]]:
    return [json.loads(s.line["body"]) for s in run.sent if s.method == "POST" and s.path == lab.fhir_path]


def fhir_sent(lab: Lab, run: Run) -> list[Sent]:
    return [s for s in run.sent if s.path.startswith(lab.fhir_path + "/") and "/.well-known/" not in s.path]


def test_publish_sends_one_iti65_transaction_authored_by_the_signed_in_doctor(lab: Lab) -> None:
    run = lab.run("publish", doctor(lab, **PUBLISH))
    assert run.status == 0, run.output
    [bundle] = bundles(lab, run)
    assert bundle["type"] == "transaction"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["List", "DocumentReference", "Binary"]
    submission_set, document, binary = (e["resource"] for e in bundle["entry"])
    assert submission_set["entry"] == [{"item": {"reference": bundle["entry"][1]["fullUrl"]}}]
    assert document["author"] == [{"reference": DOCTOR}]
    assert document["type"]["coding"] == [{"system": "urn:oid:1.3.182.6.1", "code": "MEDREPORT"}]
    assert document["subject"] == submission_set["subject"] == {"reference": "Patient/pat-0002"}
    attachment = document["content"][0]["attachment"]
    assert attachment["url"] == bundle["entry"][2]["fullUrl"]
    assert attachment["contentType"] == binary["contentType"] == "application/pdf"
    assert base64.b64decode(binary["data"]).startswith(b"%PDF-1.4")
    [care_team] = [s for s in fhir_sent(lab, run) if s.path.endswith("/CareTeam")]
    assert care_team.method == "POST" and care_team.time < run.to(lab.fhir_path, "POST")[-1].time


def test_wrong_media_type_labels_the_pdf_text_plain(lab: Lab) -> None:
    run = lab.run("publish", doctor(lab, **PUBLISH), "source-wrong-media-type")
    assert run.status == 0, run.output
    [bundle] = bundles(lab, run)
    document, binary = bundle["entry"][1]["resource"], bundle["entry"][2]["resource"]
    assert document["content"][0]["attachment"]["contentType"] == binary["contentType"] == "text/plain"
    assert base64.b64decode(binary["data"]).startswith(b"%PDF-")


def test_a_correction_replaces_the_document_unless_corrections_are_duplicated(lab: Lab) -> None:
    inputs = {**PUBLISH, "title": "Bilan", "corrected_text": "Rapport corrige"}
    run = lab.run("correct", doctor(lab, **inputs))
    first, second = bundles(lab, run)
    assert "relatesTo" not in first["entry"][1]["resource"]
    [relation] = second["entry"][1]["resource"]["relatesTo"]
    assert relation["code"] == "replaces" and relation["target"]["reference"].startswith("DocumentReference/")
    assert run.status == 0, run.output
    duplicating = lab.run("correct", doctor(lab, **{**inputs, "title": "Bilan 2"}), "source-duplicates-corrections")
    assert duplicating.status == 0, duplicating.output
    assert ["relatesTo" in b["entry"][1]["resource"] for b in bundles(lab, duplicating)] == [False, False]


def test_read_record_declares_care_then_finds_and_retrieves_in_each_media_type(lab: Lab) -> None:
    run = lab.run("read-record", doctor(lab, patient="pat-0001"))
    assert run.status == 0, run.output
    sent = fhir_sent(lab, run)
    assert (sent[0].method, sent[0].path) == ("POST", f"{lab.fhir_path}/CareTeam")
    assert (sent[1].path, sent[1].query) == (
        f"{lab.fhir_path}/DocumentReference",
        {"patient": "Patient/pat-0001", "status": "current"},
    )
    retrieves = [s for s in sent if "/Binary/" in s.path]
    assert retrieves, run.output
    assert {s.headers["accept"] for s in retrieves} >= {"application/pdf", "text/plain"}
    assert "application/fhir+json" not in {s.headers["accept"] for s in retrieves}


def test_without_care_relationship_the_search_is_refused_and_not_retried(lab: Lab) -> None:
    run = lab.run("read-record", doctor(lab, patient="pat-0003"), "consumer-no-care-relationship")
    assert run.status == 0, run.output
    assert "refuses access to the documents of pat-0003 (HTTP 403)" in run.output
    assert [s.path.rsplit("/", 1)[-1] for s in fhir_sent(lab, run)] == ["DocumentReference"]


def test_retries_403_sends_a_refused_request_again(lab: Lab) -> None:
    run = lab.run(
        "read-record", doctor(lab, patient="pat-0003"), "consumer-no-care-relationship", "consumer-retries-403"
    )
    assert run.status == 0, run.output
    assert [s.path.rsplit("/", 1)[-1] for s in fhir_sent(lab, run)] == ["DocumentReference"] * 4


def test_a_masked_document_is_left_out_and_the_rest_retrieved(lab: Lab) -> None:
    found = lab.run("read-record", doctor(lab, patient="pat-0001"))
    binaries = [s.path for s in fhir_sent(lab, found) if "/Binary/" in s.path]
    lab.injector.answer("GET", binaries[0], 403, {})
    try:
        run = lab.run("read-record", doctor(lab, patient="pat-0001"))
    finally:
        lab.injector.canned.clear()
    assert run.status == 0, run.output
    again = [s.path for s in fhir_sent(lab, run) if "/Binary/" in s.path]
    assert again.count(binaries[0]) == 1 and set(again) == set(binaries)
    assert "not available (HTTP 403), left out" in run.output
