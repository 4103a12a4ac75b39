"""batch and transaction Bundles (fhir@11-13)."""

from __future__ import annotations

import uuid

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import (
    Resource,
    body_of,
    bundle_request,
    create,
    entries,
    family_of,
    ids,
    observation,
    patient,
    post_bundle,
    read,
    scope,
    search,
    shown,
    updated,
    version_of,
)


def _statuses(bundle: Resource) -> list[str]:
    return [str((e.get("response") or {}).get("status", "")) for e in bundle.get("entry") or []]


def _answer(response_bundle: Resource, kind: str, count: int) -> list[str]:
    assert response_bundle.get("resourceType") == "Bundle" and response_bundle.get("type") == f"{kind}-response", (
        f"a {kind} was answered with a {response_bundle.get('resourceType')} of type "
        f"{response_bundle.get('type')!r}; expected a {kind}-response Bundle"
    )
    statuses = _statuses(response_bundle)
    assert len(statuses) == count, f"the {kind}-response has {len(statuses)} entries for {count} requests"
    return statuses


@pytest.mark.requirement("fhir@11")
def test_batch_answers_every_entry(fhir_client: EvidenceClient, unique: str) -> None:
    """a batch answers every entry with its own status, failures included"""
    items = [
        bundle_request("POST", "Patient", patient(unique, "Batched")),
        bundle_request("GET", f"Patient/{unique}-missing"),
        bundle_request("POST", "Patient", patient(unique, "Invalid", gender="robot")),
        bundle_request("POST", "Patient", patient(unique, "AfterFailure")),
    ]
    response = post_bundle(fhir_client, "batch", items)
    assert response.status_code == 200, f"a batch with failing entries answered {shown(response)}; expected 200"
    statuses = _answer(body_of(response, "batch"), "batch", 4)
    expected = ("201", "404", "4", "201")
    wrong = [
        f"entry {i}: {status!r}"
        for i, (status, prefix) in enumerate(zip(statuses, expected, strict=True))
        if not status.startswith(prefix) or (prefix == "4" and status[:3] not in ("400", "422"))
    ]
    assert not wrong, f"batch entry statuses {statuses}; expected 201, 404, 400/422, 201 ({', '.join(wrong)})"
    stored = sorted(family_of(r) or "" for r in entries(search(fhir_client, "Patient", {"identifier": scope(unique)})))
    assert stored == ["AfterFailure", "Batched"], f"after the batch the server holds {stored}"


@pytest.mark.requirement("fhir@11")
def test_batch_entries_read_and_update(fhir_client: EvidenceClient, unique: str) -> None:
    """a batch runs reads and updates as separate interactions"""
    existing = create(fhir_client, patient(unique, "Before"))
    items = [
        bundle_request("PUT", f"Patient/{existing['id']}", {**existing, "name": [{"family": "After"}]}),
        bundle_request("GET", f"Patient?identifier={scope(unique)}"),
        bundle_request("PUT", f"Patient/{existing['id']}", {**existing, "id": "wrong-id"}),
    ]
    response = post_bundle(fhir_client, "batch", items)
    assert response.status_code == 200, f"the batch answered {shown(response)}; expected 200"
    answer = body_of(response, "batch")
    statuses = _answer(answer, "batch", 3)
    assert statuses[0].startswith("200") and statuses[1].startswith("200") and statuses[2].startswith("400"), (
        f"batch entry statuses {statuses}; expected 200 (update), 200 (search), 400 (wrong id)"
    )
    searched = (answer["entry"][1].get("resource") or {}).get("type")
    assert searched == "searchset", f"the batch search entry returned a {searched!r} Bundle, not a searchset"
    assert family_of(read(fhir_client, "Patient", existing["id"])) == "After", "the batch update was not stored"


@pytest.mark.requirement("fhir@12")
def test_transaction_applies_every_entry(fhir_client: EvidenceClient, unique: str) -> None:
    """a transaction whose entries all succeed applies them all"""
    existing = create(fhir_client, patient(unique, "Existing"))
    items = [
        bundle_request("POST", "Patient", patient(unique, "New")),
        bundle_request("PUT", f"Patient/{existing['id']}", {**existing, "name": [{"family": "Updated"}]}),
    ]
    response = post_bundle(fhir_client, "transaction", items)
    assert response.status_code == 200, f"a valid transaction answered {shown(response)}; expected 200"
    statuses = _answer(body_of(response, "transaction"), "transaction", 2)
    assert statuses[0].startswith("201") and statuses[1].startswith("200"), f"transaction statuses {statuses}"
    families = sorted(
        family_of(r) or "" for r in entries(search(fhir_client, "Patient", {"identifier": scope(unique)}))
    )
    assert families == ["New", "Updated"], f"after the transaction the server holds {families}"


@pytest.mark.requirement("fhir@12")
def test_failing_transaction_leaves_nothing(fhir_client: EvidenceClient, unique: str) -> None:
    """a transaction with one invalid entry fails whole and stores nothing"""
    items = [
        bundle_request("POST", "Patient", patient(unique, "First")),
        bundle_request("POST", "Patient", patient(unique, "Second")),
        bundle_request("POST", "Patient", patient(unique, "Invalid", gender="robot")),
    ]
    response = post_bundle(fhir_client, "transaction", items)
    assert 400 <= response.status_code < 500, (
        f"a transaction with an invalid entry answered {shown(response)}; expected a 4xx failure"
    )
    stored = ids(search(fhir_client, "Patient", {"identifier": scope(unique)}))
    assert stored == [], f"the failed transaction left {len(stored)} of its entries stored: {stored}"


@pytest.mark.requirement("fhir@12")
def test_failing_transaction_undoes_updates_and_deletes(fhir_client: EvidenceClient, unique: str) -> None:
    """a transaction whose last entry fails undoes its updates and deletes"""
    kept = create(fhir_client, patient(unique, "Kept"))
    spared = create(fhir_client, patient(unique, "Spared"))
    stale = create(fhir_client, patient(unique, "Stale"))
    updated(fhir_client, {**stale, "gender": "female"})
    items = [
        bundle_request("DELETE", f"Patient/{spared['id']}"),
        bundle_request("PUT", f"Patient/{kept['id']}", {**kept, "name": [{"family": "Overwritten"}]}),
        bundle_request("PUT", f"Patient/{stale['id']}", {**stale, "name": [{"family": "Lost"}]}),
    ]
    items[2]["request"]["ifMatch"] = 'W/"1"'
    response = post_bundle(fhir_client, "transaction", items)
    assert 400 <= response.status_code < 500, (
        f"a transaction with a stale If-Match entry answered {shown(response)}; expected a 4xx failure (412)"
    )
    after = read(fhir_client, "Patient", kept["id"])
    assert family_of(after) == "Kept" and version_of(after) == "1", (
        f"the failed transaction still updated Patient/{kept['id']} (family {family_of(after)!r})"
    )
    gone = fhir_client.get(f"Patient/{spared['id']}")
    assert gone.status_code == 200, f"the failed transaction still deleted Patient/{spared['id']} ({gone.status_code})"
    assert family_of(read(fhir_client, "Patient", stale["id"])) == "Stale", "the refused entry changed its resource"


@pytest.mark.requirement("fhir@13")
def test_transaction_rewrites_urn_uuid_references(fhir_client: EvidenceClient, unique: str) -> None:
    """references to a created entry's urn:uuid fullUrl are rewritten to its new id"""
    person = uuid.uuid4().urn
    items = [
        bundle_request("POST", "Observation", observation(unique, person), fullUrl=uuid.uuid4().urn),
        bundle_request("POST", "Patient", patient(unique, "Referenced"), fullUrl=person),
    ]
    items[0]["resource"]["performer"] = [{"reference": person}]
    response = post_bundle(fhir_client, "transaction", items)
    assert response.status_code == 200, f"the transaction answered {shown(response)}; expected 200"
    _answer(body_of(response, "transaction"), "transaction", 2)
    patients = ids(search(fhir_client, "Patient", {"identifier": scope(unique)}))
    assert len(patients) == 1, f"the transaction stored {len(patients)} Patients, not 1"
    stored = search(fhir_client, "Observation", {"identifier": scope(unique)}).get("entry") or []
    assert len(stored) == 1, f"the transaction stored {len(stored)} Observations, not 1"
    obs = stored[0]["resource"]
    for where, reference in (("subject", obs.get("subject")), ("performer[0]", (obs.get("performer") or [{}])[0])):
        value = (reference or {}).get("reference", "")
        assert value.endswith(f"Patient/{patients[0]}"), (
            f"Observation.{where}.reference is {value!r}; the urn:uuid should have become Patient/{patients[0]}"
        )
    found = ids(search(fhir_client, "Observation", {"identifier": scope(unique), "subject": f"Patient/{patients[0]}"}))
    assert found == [obs.get("id")], "the Observation is not found by the rewritten subject reference"


@pytest.mark.requirement("fhir@13")
def test_transaction_rewrites_references_in_conditional_entries(fhir_client: EvidenceClient, unique: str) -> None:
    """a urn:uuid reference to a conditionally created entry becomes the stored id"""
    existing = create(fhir_client, patient(unique, "Existing"))
    person = uuid.uuid4().urn
    items = [
        bundle_request("POST", "Patient", patient(unique, "Duplicate"), fullUrl=person),
        bundle_request("POST", "Observation", observation(unique, person)),
    ]
    items[0]["request"]["ifNoneExist"] = f"identifier={scope(unique)}"
    response = post_bundle(fhir_client, "transaction", items)
    assert response.status_code == 200, f"the transaction answered {shown(response)}; expected 200"
    obs = search(fhir_client, "Observation", {"identifier": scope(unique)}).get("entry") or []
    assert len(obs) == 1, f"the transaction stored {len(obs)} Observations, not 1"
    value = (obs[0]["resource"].get("subject") or {}).get("reference", "")
    assert value.endswith(f"Patient/{existing['id']}"), (
        f"Observation.subject.reference is {value!r}; the urn:uuid names the existing Patient/{existing['id']}"
    )
