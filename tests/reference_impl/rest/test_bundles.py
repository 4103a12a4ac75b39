"""Batch and transaction Bundles: atomicity, urn:uuid references, ordering, conditional entries."""

from __future__ import annotations

from typing import Any

import httpx

from tests.reference_impl.rest.helpers import JSON_HEADERS, assert_outcome, create, ids, patient, search


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(resource: dict[str, Any], full_url: str | None = None, **request: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def observation_of(subject: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "note"},
        "subject": {"reference": subject},
    }


def test_transaction_rewrites_urn_uuid_references(fhir: httpx.Client) -> None:
    urn = "urn:uuid:0c0d56e6-3f25-4c1b-8f0a-2b2d9fd5e0a1"
    response = fhir.post(
        "", json=bundle("transaction", post(observation_of(urn)), post(patient("Reuter"), urn)), headers=JSON_HEADERS
    )
    assert response.status_code == 200
    result = response.json()
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    observation, patient_entry = (e["resource"] for e in result["entry"])
    assert observation["subject"]["reference"] == f"Patient/{patient_entry['id']}"
    assert result["entry"][1]["response"]["location"].endswith("/_history/1")
    assert ids(search(fhir, f"Observation?subject=Patient/{patient_entry['id']}")) == [observation["id"]]


def test_transaction_is_atomic(fhir: httpx.Client) -> None:
    existing = create(fhir, patient("Before"))
    entries = [
        post(patient("Ghost")),
        {"resource": {**existing, "active": True}, "request": {"method": "PUT", "url": f"Patient/{existing['id']}"}},
        {"request": {"method": "DELETE", "url": f"Patient/{existing['id']}"}},
        post({"resourceType": "Observation", "status": "final"}),  # no code: invalid
    ]
    outcome = assert_outcome(fhir.post("", json=bundle("transaction", *entries), headers=JSON_HEADERS), 400)
    assert "entry 3" in outcome["issue"][0]["diagnostics"]
    assert search(fhir, "Patient?family=ghost")["total"] == 0
    assert fhir.get(f"Patient/{existing['id']}").json()["meta"]["versionId"] == "1"


def test_transaction_fails_as_a_whole_on_a_412(fhir: httpx.Client) -> None:
    existing = create(fhir, patient())
    entries = [
        post(patient("Ghost")),
        {"resource": existing, "request": {"method": "PUT", "url": f"Patient/{existing['id']}", "ifMatch": 'W/"5"'}},
    ]
    assert_outcome(fhir.post("", json=bundle("transaction", *entries), headers=JSON_HEADERS), 412)
    assert search(fhir, "Patient?family=ghost")["total"] == 0


def test_transaction_processing_order_and_reads(fhir: httpx.Client) -> None:
    doomed = create(fhir, patient("Doomed"))
    entries = [
        {"request": {"method": "GET", "url": "Patient?family=Created"}},
        post(patient("Created")),
        {"request": {"method": "DELETE", "url": f"Patient/{doomed['id']}"}},
    ]
    result = fhir.post("", json=bundle("transaction", *entries), headers=JSON_HEADERS).json()
    search_result = result["entry"][0]["resource"]
    assert search_result["type"] == "searchset" and search_result["total"] == 1  # GET runs after POST
    assert result["entry"][2]["response"]["status"] == "200 OK"
    assert fhir.get(f"Patient/{doomed['id']}").status_code == 410


def test_transaction_conditional_create_reuses_existing_resource_in_references(fhir: httpx.Client) -> None:
    existing = create(fhir, patient(identifier=[{"system": "urn:mrn", "value": "7"}]))
    urn = "urn:uuid:5f0c2bd5-34a8-4e8e-9b3e-8a2b8f0b9c11"
    entries = [
        post(patient(identifier=[{"system": "urn:mrn", "value": "7"}]), urn, ifNoneExist="identifier=urn:mrn|7"),
        post(observation_of(urn)),
    ]
    result = fhir.post("", json=bundle("transaction", *entries), headers=JSON_HEADERS).json()
    assert result["entry"][0]["response"]["status"] == "200 OK"
    assert result["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    assert search(fhir, "Patient")["total"] == 1


def test_transaction_conditional_update_and_placeholder_in_search_url(fhir: httpx.Client) -> None:
    urn = "urn:uuid:9b1a0c55-5ad2-4f11-a3d0-1c2b3d4e5f60"
    entries = [
        {
            "fullUrl": urn,
            "resource": patient(identifier=[{"system": "urn:mrn", "value": "8"}]),
            "request": {"method": "PUT", "url": "Patient?identifier=urn:mrn|8"},
        },
        post(observation_of(urn)),
    ]
    result = fhir.post("", json=bundle("transaction", *entries), headers=JSON_HEADERS).json()
    patient_id = result["entry"][0]["resource"]["id"]
    assert result["entry"][0]["response"]["status"] == "201 Created"
    assert result["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"


def test_batch_entries_succeed_or_fail_on_their_own(fhir: httpx.Client) -> None:
    existing = create(fhir, patient())
    entries = [
        post(patient("BatchOk")),
        {"request": {"method": "GET", "url": "Patient/not-there"}},
        post({"resourceType": "Patient", "gender": "robot"}),
        {"request": {"method": "GET", "url": f"Patient/{existing['id']}"}},
        {"request": {"method": "GET", "url": "Nonsense/1"}},
    ]
    result = fhir.post("", json=bundle("batch", *entries), headers=JSON_HEADERS).json()
    assert result["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "404 Not Found", "400 Bad Request", "200 OK", "404 Not Found"]
    assert result["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert result["entry"][3]["resource"]["id"] == existing["id"]
    assert search(fhir, "Patient?family=batchok")["total"] == 1


def test_bad_bundles(fhir: httpx.Client) -> None:
    assert_outcome(fhir.post("", json=bundle("collection"), headers=JSON_HEADERS), 400)
    assert_outcome(fhir.post("", json={"resourceType": "Patient"}, headers=JSON_HEADERS), 400)
    assert_outcome(fhir.post("", json=bundle("transaction", {"resource": patient()}), headers=JSON_HEADERS), 400)
    assert_outcome(
        fhir.post("", json=bundle("batch", {"request": {"method": "TRACE", "url": "Patient"}}), headers=JSON_HEADERS),
        400,
    )
    assert_outcome(fhir.post("", json=bundle("batch", "not an entry"), headers=JSON_HEADERS), 400)  # type: ignore[arg-type]
    nested = bundle("transaction", {"resource": bundle("batch"), "request": {"method": "POST", "url": ""}})
    assert_outcome(fhir.post("", json=nested, headers=JSON_HEADERS), 400)
    assert_outcome(fhir.post("", content=b"{}", headers={"Content-Type": "text/plain"}), 415)


def test_empty_transaction_and_document_bundle_storage(fhir: httpx.Client) -> None:
    result = fhir.post("", json=bundle("transaction"), headers=JSON_HEADERS).json()
    assert result["type"] == "transaction-response" and "entry" not in result
    document = {
        "resourceType": "Bundle",
        "type": "document",
        "identifier": {"system": "urn:oid:1.3.182.5.1", "value": "RX-1"},
        "timestamp": "2026-01-01T10:00:00Z",
        "entry": [
            {
                "fullUrl": "urn:uuid:1",
                "resource": {
                    "resourceType": "Composition",
                    "status": "final",
                    "type": {"text": "x"},
                    "date": "2026-01-01",
                    "author": [{"display": "Dr"}],
                    "title": "T",
                },
            }
        ],
    }
    stored = create(fhir, document)
    assert ids(search(fhir, "Bundle?identifier=urn:oid:1.3.182.5.1|RX-1")) == [stored["id"]]
