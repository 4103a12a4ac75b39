"""create, read, update, patch and delete, with the headers and metadata they carry (fhir@3-8, 14-16)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import (
    JSON_PATCH,
    body_of,
    bundle_request,
    create,
    entries,
    family_of,
    http_date_ok,
    ids,
    last_updated_of,
    observation,
    patient,
    post_bundle,
    read,
    scope,
    search,
    shown,
    update,
    updated,
    version_of,
)


def _instant(value: str | None) -> datetime:
    assert value, "meta.lastUpdated is missing"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise AssertionError(f"meta.lastUpdated {value!r} is not a FHIR instant") from None


@pytest.mark.requirement("fhir@5")
def test_create_answers_201_and_stores(fhir_client: EvidenceClient, unique: str) -> None:
    """create answers 201 and stores the resource under a new id"""
    response = fhir_client.post("Patient", json=patient(unique, "Created"))
    assert response.status_code == 201, f"POST Patient answered {shown(response)}; expected 201 Created"
    location = response.headers.get("location", "")
    created = body_of(response, "POST Patient") if response.content else {}
    res_id = created.get("id") or (location.split("Patient/", 1)[1].split("/", 1)[0] if "Patient/" in location else "")
    assert res_id, "POST Patient answered 201 but neither the body nor the Location header names the new id"
    stored = read(fhir_client, "Patient", res_id)
    assert family_of(stored) == "Created", f"reading the new Patient/{res_id} gave family {family_of(stored)!r}"
    assert ids(search(fhir_client, "Patient", {"identifier": scope(unique)})) == [res_id], (
        "the created Patient is not found by its identifier"
    )


@pytest.mark.requirement("fhir@5")
def test_create_assigns_its_own_id(fhir_client: EvidenceClient, unique: str) -> None:
    """create ignores an id sent by the client and assigns one"""
    proposed = f"{unique}-client"
    created = create(fhir_client, patient(unique, id=proposed))
    assert created.get("id") and created["id"] != proposed, (
        f"POST Patient with id {proposed!r} in the body stored it as Patient/{created.get('id')}; "
        "the server must assign the id on create"
    )
    response = fhir_client.get(f"Patient/{proposed}")
    assert response.status_code == 404, (
        f"after POST with a client id, GET Patient/{proposed} answered {response.status_code}; expected 404"
    )


@pytest.mark.requirement("fhir@3")
def test_read_returns_the_current_version(fhir_client: EvidenceClient, unique: str) -> None:
    """read returns the current version after an update"""
    created = create(fhir_client, patient(unique, "Before"))
    updated(fhir_client, {**created, "name": [{"family": "After"}]})
    response = fhir_client.get(f"Patient/{created['id']}")
    assert response.status_code == 200, f"GET Patient/{created['id']} answered {shown(response)}; expected 200"
    current = body_of(response, "GET Patient")
    assert current.get("resourceType") == "Patient" and current.get("id") == created["id"], (
        f"GET Patient/{created['id']} returned {current.get('resourceType')}/{current.get('id')}"
    )
    assert family_of(current) == "After", f"read returned family {family_of(current)!r}; the current one is 'After'"
    assert version_of(current) == "2", f"read returned meta.versionId {version_of(current)!r}; expected '2'"


@pytest.mark.requirement("fhir@3")
def test_read_returns_what_was_stored(fhir_client: EvidenceClient, unique: str) -> None:
    """read returns every element that was stored"""
    resource = patient(unique, "Stored", birthDate="1970-02-03", gender="female", active=True)
    created = create(fhir_client, resource)
    current = read(fhir_client, "Patient", created["id"])
    for element in ("birthDate", "gender", "active", "name"):
        assert current.get(element) == resource[element], (
            f"read returned {element}={current.get(element)!r}; it was stored as {resource[element]!r}"
        )
    # A national platform may add the identifiers it assigns (the patient index's platform id, SPEC section 3).
    lost = [i for i in resource["identifier"] if i not in (current.get("identifier") or [])]
    assert not lost, f"read returned identifier={current.get('identifier')!r}; the stored {lost!r} is missing"


@pytest.mark.requirement("fhir@6")
def test_update_stores_a_new_version(fhir_client: EvidenceClient, unique: str) -> None:
    """update answers 200 and increments meta.versionId"""
    created = create(fhir_client, patient(unique, "One"))
    assert version_of(created) == "1", f"a new resource has meta.versionId {version_of(created)!r}; expected '1'"
    for expected, family in (("2", "Two"), ("3", "Three")):
        response = update(fhir_client, {**created, "name": [{"family": family}]})
        assert response.status_code == 200, f"PUT Patient/{created['id']} answered {shown(response)}; expected 200"
        current = read(fhir_client, "Patient", created["id"])
        assert version_of(current) == expected, (
            f"after update the stored meta.versionId is {version_of(current)!r}; expected {expected!r}"
        )
        assert family_of(current) == family, f"after update read returns family {family_of(current)!r}"


@pytest.mark.requirement("fhir@6")
def test_update_to_a_new_id_creates(fhir_client: EvidenceClient, unique: str) -> None:
    """update to an unused id creates the resource (201) when the server allows client ids"""
    statement = body_of(fhir_client.get("metadata"), "GET metadata")
    listed = [r for rest in statement.get("rest") or [] for r in rest.get("resource") or []]
    entry: dict[str, Any] = next((r for r in listed if r.get("type") == "Patient"), {})
    if not entry.get("updateCreate"):
        pytest.skip("the CapabilityStatement does not claim updateCreate for Patient")
    response = update(fhir_client, patient(unique, id=unique))
    assert response.status_code == 201, (
        f"PUT Patient/{unique} (new id, updateCreate claimed) answered {shown(response)}; expected 201 Created"
    )
    assert version_of(read(fhir_client, "Patient", unique)) == "1", "a resource created by update is not version 1"


@pytest.mark.requirement("fhir@7")
def test_json_patch_makes_a_new_version(fhir_client: EvidenceClient, unique: str) -> None:
    """patch applies a JSON Patch as a new version"""
    created = create(fhir_client, patient(unique, "Unpatched"))
    operations = [
        {"op": "replace", "path": "/name/0/family", "value": "Patched"},
        {"op": "add", "path": "/birthDate", "value": "1990-02-03"},
    ]
    response = fhir_client.patch(f"Patient/{created['id']}", json=operations, headers={"Content-Type": JSON_PATCH})
    assert response.status_code == 200, f"PATCH Patient/{created['id']} answered {shown(response)}; expected 200"
    current = read(fhir_client, "Patient", created["id"])
    assert family_of(current) == "Patched", f"after the patch, family is {family_of(current)!r}; expected 'Patched'"
    assert current.get("birthDate") == "1990-02-03", f"after the patch, birthDate is {current.get('birthDate')!r}"
    assert version_of(current) == "2", f"after the patch, meta.versionId is {version_of(current)!r}; expected '2'"


@pytest.mark.requirement("fhir@7")
def test_failing_json_patch_changes_nothing(fhir_client: EvidenceClient, unique: str) -> None:
    """a JSON Patch whose test operation fails is refused whole"""
    created = create(fhir_client, patient(unique, "Kept"))
    operations = [
        {"op": "replace", "path": "/name/0/family", "value": "Changed"},
        {"op": "test", "path": "/gender", "value": "not-this"},
    ]
    response = fhir_client.patch(f"Patient/{created['id']}", json=operations, headers={"Content-Type": JSON_PATCH})
    assert 400 <= response.status_code < 500, (
        f"a JSON Patch with a failing test operation answered {shown(response)}; expected a 4xx refusal (422)"
    )
    current = read(fhir_client, "Patient", created["id"])
    assert family_of(current) == "Kept" and version_of(current) == "1", (
        f"a refused patch still changed the resource: family {family_of(current)!r}, version {version_of(current)!r}"
    )


@pytest.mark.requirement("fhir@8")
def test_delete_removes_from_reads_and_searches(fhir_client: EvidenceClient, unique: str) -> None:
    """delete removes the resource from reads and searches"""
    created = create(fhir_client, patient(unique))
    response = fhir_client.delete(f"Patient/{created['id']}")
    assert response.status_code in (200, 202, 204), (
        f"DELETE Patient/{created['id']} answered {shown(response)}; expected 200, 202 or 204"
    )
    after = fhir_client.get(f"Patient/{created['id']}")
    assert after.status_code in (404, 410), f"reading a deleted Patient answered {after.status_code}; expected 410"
    assert ids(search(fhir_client, "Patient", {"identifier": scope(unique)})) == [], (
        "a search by identifier still finds the deleted Patient"
    )
    assert ids(search(fhir_client, "Patient", {"_id": created["id"]})) == [], (
        "a search by _id still finds the deleted Patient"
    )


@pytest.mark.requirement("fhir@14")
def test_meta_on_every_stored_resource(fhir_client: EvidenceClient, unique: str) -> None:
    """meta.versionId and meta.lastUpdated on create, read, update, search and history"""
    created = create(fhir_client, patient(unique))
    seen = {"create": created, "read": read(fhir_client, "Patient", created["id"])}
    seen["update"] = updated(fhir_client, {**created, "gender": "other"})
    found = search(fhir_client, "Patient", {"identifier": scope(unique)}).get("entry") or [{}]
    seen["search"] = found[0].get("resource") or {}
    history = body_of(fhir_client.get(f"Patient/{created['id']}/_history"), "GET _history")
    for i, entry in enumerate(history.get("entry") or []):
        seen[f"history entry {i}"] = entry.get("resource") or {}
    for where, resource in seen.items():
        assert version_of(resource), f"the resource returned by {where} has no meta.versionId"
        _instant(last_updated_of(resource))
    assert _instant(last_updated_of(seen["update"])) >= _instant(last_updated_of(created)), (
        "meta.lastUpdated of version 2 is earlier than that of version 1"
    )


@pytest.mark.requirement("fhir@15")
def test_etag_and_last_modified_headers(fhir_client: EvidenceClient, unique: str) -> None:
    """ETag W/"<versionId>" and Last-Modified on create, read and update"""
    created = fhir_client.post("Patient", json=patient(unique))
    assert created.status_code == 201, f"POST Patient answered {shown(created)}"
    resource = body_of(created, "POST Patient")
    res_id = resource["id"]
    answers = {
        "create": (created, "1"),
        "read": (fhir_client.get(f"Patient/{res_id}"), "1"),
        "update": (update(fhir_client, {**resource, "gender": "male"}), "2"),
    }
    for interaction, (response, version) in answers.items():
        etag = response.headers.get("etag")
        assert etag == f'W/"{version}"', f'{interaction} answered ETag {etag!r}; expected W/"{version}"'
        modified = response.headers.get("last-modified")
        assert http_date_ok(modified), f"{interaction} answered Last-Modified {modified!r}; expected an HTTP date"


@pytest.mark.requirement("fhir@16")
def test_location_names_the_new_version(fhir_client: EvidenceClient, unique: str) -> None:
    """create and update answer Location [type]/[id]/_history/[vid]"""
    created = fhir_client.post("Patient", json=patient(unique))
    assert created.status_code == 201, f"POST Patient answered {shown(created)}"
    resource = body_of(created, "POST Patient")
    res_id = resource["id"]
    again = update(fhir_client, {**resource, "gender": "female"})
    assert again.status_code == 200, f"PUT Patient/{res_id} answered {shown(again)}"
    for interaction, response, version in (("create", created, 1), ("update", again, 2)):
        location = response.headers.get("location")
        pattern = rf"(^|/)Patient/{re.escape(res_id)}/_history/{version}$"
        assert location and re.search(pattern, location), (
            f"{interaction} answered Location {location!r}; expected one ending Patient/{res_id}/_history/{version}"
        )


@pytest.mark.requirement("fhir@8")
def test_deleted_resource_leaves_other_searches(fhir_client: EvidenceClient, unique: str) -> None:
    """a deleted resource is no longer found by reference, counted or included"""
    person = create(fhir_client, patient(unique))
    obs = create(fhir_client, observation(unique, f"Patient/{person['id']}"))
    deleted = fhir_client.delete(f"Observation/{obs['id']}")
    assert deleted.status_code in (200, 202, 204), f"DELETE Observation/{obs['id']} answered {shown(deleted)}"
    by_subject = search(fhir_client, "Observation", {"subject": f"Patient/{person['id']}"})
    assert ids(by_subject) == [], f"a search by subject still finds the deleted Observation: {ids(by_subject)}"
    counted = search(fhir_client, "Observation", {"identifier": scope(unique), "_summary": "count"})
    assert counted.get("total") == 0, f"_summary=count still counts the deleted Observation: {counted.get('total')}"
    included = search(fhir_client, "Patient", {"_id": person["id"], "_revinclude": "Observation:subject"})
    assert ids(included, "include") == [], "_revinclude still adds the deleted Observation"


@pytest.mark.requirement("fhir@14")
def test_meta_on_resources_created_by_a_transaction(fhir_client: EvidenceClient, unique: str) -> None:
    """resources stored by a transaction carry meta.versionId and meta.lastUpdated"""
    items = [bundle_request("POST", "Patient", patient(unique, f"Tx{i}")) for i in range(2)]
    response = post_bundle(fhir_client, "transaction", items)
    assert response.status_code == 200, f"the transaction answered {shown(response)}; expected 200"
    found = entries(search(fhir_client, "Patient", {"identifier": scope(unique)}))
    assert len(found) == 2, f"the transaction stored {len(found)} Patients, not 2"
    for resource in found:
        assert version_of(resource) == "1", f"Patient/{resource.get('id')} has meta.versionId {version_of(resource)!r}"
        _instant(last_updated_of(resource))


@pytest.mark.requirement("fhir@15")
def test_etag_follows_the_version(fhir_client: EvidenceClient, unique: str) -> None:
    """the ETag of a read names the current meta.versionId after each update"""
    created = create(fhir_client, patient(unique))
    for expected in ("2", "3"):
        again = update(fhir_client, {**created, "birthDate": f"19{expected}0-01-01"})
        assert again.headers.get("etag") == f'W/"{expected}"', (
            f'update to version {expected} answered ETag {again.headers.get("etag")!r}; expected W/"{expected}"'
        )
        response = fhir_client.get(f"Patient/{created['id']}")
        resource = body_of(response, "read")
        assert response.headers.get("etag") == f'W/"{version_of(resource)}"' == f'W/"{expected}"', (
            f"read answered ETag {response.headers.get('etag')!r} with meta.versionId {version_of(resource)!r}; "
            f'expected W/"{expected}"'
        )


@pytest.mark.requirement("fhir@16")
def test_location_on_conditional_update(fhir_client: EvidenceClient, unique: str) -> None:
    """a conditional update answers Location with the version it created or made"""
    criteria = {"identifier": scope(unique)}
    for version, status in ((1, 201), (2, 200)):
        response = fhir_client.put("Patient", params=criteria, json=patient(unique, f"V{version}"))
        assert response.status_code == status, f"conditional update answered {shown(response)}; expected {status}"
        location = response.headers.get("location") or ""
        assert re.search(rf"(^|/)Patient/[A-Za-z0-9.\-]+/_history/{version}$", location), (
            f"conditional update (version {version}) answered Location {location!r}; "
            f"expected Patient/[id]/_history/{version}"
        )
