"""Versions: vread, history, If-Match, conditional create and conditional update (fhir@4, 9, 17-19)."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import (
    Resource,
    body_of,
    create,
    family_of,
    ids,
    last_updated_of,
    pages,
    patient,
    read,
    scope,
    search,
    shown,
    tag,
    update,
    updated,
    version_of,
)


def _history(fhir_client: EvidenceClient, path: str, params: dict[str, str] | None = None) -> Resource:
    response = fhir_client.get(path, params=params)
    assert response.status_code == 200, f"GET {path} answered {shown(response)}; expected 200"
    bundle = body_of(response, f"GET {path}")
    assert bundle.get("resourceType") == "Bundle" and bundle.get("type") == "history", (
        f"GET {path} answered a {bundle.get('resourceType')} of type {bundle.get('type')!r}; expected a history Bundle"
    )
    return bundle


def _versions(bundle: Resource) -> list[str | None]:
    return [version_of(e.get("resource") or {}) for e in bundle.get("entry") or []]


@pytest.mark.requirement("fhir@4")
def test_vread_returns_each_version(fhir_client: EvidenceClient, unique: str) -> None:
    """vread returns exactly the version asked for"""
    created = create(fhir_client, patient(unique, "First"))
    updated(fhir_client, {**created, "name": [{"family": "Second"}]})
    for version, family in (("1", "First"), ("2", "Second")):
        path = f"Patient/{created['id']}/_history/{version}"
        response = fhir_client.get(path)
        assert response.status_code == 200, f"GET {path} answered {shown(response)}; expected 200"
        resource = body_of(response, f"GET {path}")
        assert version_of(resource) == version, f"GET {path} returned meta.versionId {version_of(resource)!r}"
        assert family_of(resource) == family, (
            f"GET {path} returned family {family_of(resource)!r}; version {version} has {family!r}"
        )


@pytest.mark.requirement("fhir@4")
def test_vread_of_an_unknown_version_is_404(fhir_client: EvidenceClient, unique: str) -> None:
    """vread of a version that does not exist answers 404"""
    created = create(fhir_client, patient(unique))
    for version in ("2", "999"):
        response = fhir_client.get(f"Patient/{created['id']}/_history/{version}")
        assert response.status_code == 404, (
            f"GET Patient/{created['id']}/_history/{version} (only version 1 exists) answered {shown(response)}; "
            "expected 404"
        )


@pytest.mark.requirement("fhir@9")
def test_instance_history_lists_versions_newest_first(fhir_client: EvidenceClient, unique: str) -> None:
    """instance history lists every version, newest first"""
    created = create(fhir_client, patient(unique, "V1"))
    updated(fhir_client, {**created, "name": [{"family": "V2"}]})
    updated(fhir_client, {**created, "name": [{"family": "V3"}]})
    bundle = _history(fhir_client, f"Patient/{created['id']}/_history")
    versions = _versions(bundle)
    assert versions == ["3", "2", "1"], f"the history lists versions {versions}; expected ['3', '2', '1']"
    total = bundle.get("total")
    assert total in (None, 3), f"the history Bundle says total={total}; there are 3 versions"


@pytest.mark.requirement("fhir@9")
def test_history_includes_the_deletion(fhir_client: EvidenceClient, unique: str) -> None:
    """instance history of a deleted resource lists the deletion first"""
    created = create(fhir_client, patient(unique))
    updated(fhir_client, {**created, "gender": "female"})
    deleted = fhir_client.delete(f"Patient/{created['id']}")
    assert deleted.status_code in (200, 202, 204), f"DELETE answered {shown(deleted)}"
    bundle = _history(fhir_client, f"Patient/{created['id']}/_history")
    entries: list[Resource] = bundle.get("entry") or []
    assert len(entries) == 3, f"the history of a created, updated, deleted resource has {len(entries)} entries, not 3"
    newest = entries[0]
    method = (newest.get("request") or {}).get("method")
    assert "resource" not in newest or method == "DELETE", (
        "the newest history entry of a deleted resource is not the deletion (it has a resource and "
        f"request.method {method!r})"
    )
    assert _versions(bundle)[1:] == ["2", "1"], f"the older history entries are versions {_versions(bundle)[1:]}"


@pytest.mark.requirement("fhir@9")
def test_type_history_lists_versions_newest_first(fhir_client: EvidenceClient, unique: str) -> None:
    """type history lists a resource's versions, newest first"""
    substance = {"resourceType": "Substance", "identifier": [tag(unique)], "code": {"text": "eqlab v1"}}
    created = create(fhir_client, substance)
    updated(fhir_client, {**created, "code": {"text": "eqlab v2"}})
    since = last_updated_of(created)
    assert since, "the created Substance has no meta.lastUpdated"
    first = _history(fhir_client, "Substance/_history", {"_since": since})
    found: list[str | None] = []
    for bundle in pages(fhir_client, first, "the Substance type history"):
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") or {}
            if resource.get("id") == created["id"]:
                found.append(version_of(resource))
    assert found == ["2", "1"], (
        f"GET Substance/_history?_since=... lists this Substance's versions as {found}; expected ['2', '1']"
    )


@pytest.mark.requirement("fhir@17")
def test_stale_if_match_on_update_is_412(fhir_client: EvidenceClient, unique: str) -> None:
    """update with a stale If-Match is refused with 412 and changes nothing"""
    created = create(fhir_client, patient(unique, "Original"))
    updated(fhir_client, {**created, "name": [{"family": "Current"}]})
    response = update(fhir_client, {**created, "name": [{"family": "Lost"}]}, **{"If-Match": 'W/"1"'})
    assert response.status_code == 412, (
        f'PUT with If-Match W/"1" while version 2 is current answered {shown(response)}; expected 412'
    )
    current = read(fhir_client, "Patient", created["id"])
    assert family_of(current) == "Current" and version_of(current) == "2", (
        f"a refused update changed the resource: family {family_of(current)!r}, version {version_of(current)!r}"
    )
    response = update(fhir_client, {**created, "name": [{"family": "Next"}]}, **{"If-Match": 'W/"2"'})
    assert response.status_code == 200, f'PUT with the current If-Match W/"2" answered {shown(response)}; expected 200'


@pytest.mark.requirement("fhir@17")
def test_stale_if_match_on_delete_is_412(fhir_client: EvidenceClient, unique: str) -> None:
    """delete with a stale If-Match is refused with 412 and deletes nothing"""
    created = create(fhir_client, patient(unique))
    updated(fhir_client, {**created, "gender": "male"})
    response = fhir_client.delete(f"Patient/{created['id']}", headers={"If-Match": 'W/"1"'})
    assert response.status_code == 412, (
        f'DELETE with If-Match W/"1" while version 2 is current answered {shown(response)}; expected 412'
    )
    after = fhir_client.get(f"Patient/{created['id']}")
    assert after.status_code == 200, f"after a refused delete, reading the resource answered {after.status_code}"


@pytest.mark.requirement("fhir@18")
def test_conditional_create_without_match_creates(fhir_client: EvidenceClient, unique: str) -> None:
    """conditional create with no match creates the resource"""
    response = fhir_client.post(
        "Patient", json=patient(unique), headers={"If-None-Exist": f"identifier={scope(unique)}"}
    )
    assert response.status_code == 201, f"conditional create with no match answered {shown(response)}; expected 201"
    assert len(ids(search(fhir_client, "Patient", {"identifier": scope(unique)}))) == 1, (
        "conditional create with no match did not store exactly one resource"
    )


@pytest.mark.requirement("fhir@18")
def test_conditional_create_with_one_match_returns_it(fhir_client: EvidenceClient, unique: str) -> None:
    """conditional create with one match returns the existing resource"""
    existing = create(fhir_client, patient(unique, "Existing"))
    response = fhir_client.post(
        "Patient", json=patient(unique, "Duplicate"), headers={"If-None-Exist": f"identifier={scope(unique)}"}
    )
    assert response.status_code == 200, f"conditional create with one match answered {shown(response)}; expected 200"
    named = body_of(response, "conditional create").get("id") if response.content else None
    location = response.headers.get("location") or ""
    assert named == existing["id"] or f"Patient/{existing['id']}" in location, (
        f"conditional create with one match did not name the existing Patient/{existing['id']} "
        f"(body id {named!r}, Location {location!r})"
    )
    found = ids(search(fhir_client, "Patient", {"identifier": scope(unique)}))
    assert found == [existing["id"]], f"conditional create with one match stored another resource: {found}"


@pytest.mark.requirement("fhir@18")
def test_conditional_create_with_several_matches_is_412(fhir_client: EvidenceClient, unique: str) -> None:
    """conditional create with several matches is refused with 412"""
    create(fhir_client, patient(unique, "One"))
    create(fhir_client, patient(unique, "Two"))
    response = fhir_client.post(
        "Patient", json=patient(unique, "Three"), headers={"If-None-Exist": f"identifier={scope(unique)}"}
    )
    assert response.status_code == 412, (
        f"conditional create matching two resources answered {shown(response)}; expected 412"
    )
    assert len(ids(search(fhir_client, "Patient", {"identifier": scope(unique)}))) == 2, (
        "a refused conditional create stored a resource"
    )


@pytest.mark.requirement("fhir@19")
def test_conditional_update_creates_then_updates(fhir_client: EvidenceClient, unique: str) -> None:
    """conditional update creates on no match, then updates the one match"""
    criteria = {"identifier": scope(unique)}
    first = fhir_client.put("Patient", params=criteria, json=patient(unique, "Made"))
    assert first.status_code == 201, f"conditional update with no match answered {shown(first)}; expected 201"
    made = ids(search(fhir_client, "Patient", {"identifier": scope(unique)}))
    assert len(made) == 1, f"conditional update with no match left {len(made)} matching resources, not 1"
    second = fhir_client.put("Patient", params=criteria, json=patient(unique, "Changed"))
    assert second.status_code == 200, f"conditional update with one match answered {shown(second)}; expected 200"
    current = read(fhir_client, "Patient", made[0])
    assert family_of(current) == "Changed" and version_of(current) == "2", (
        f"conditional update with one match did not update Patient/{made[0]}: "
        f"family {family_of(current)!r}, version {version_of(current)!r}"
    )
    assert ids(search(fhir_client, "Patient", {"identifier": scope(unique)})) == made, (
        "conditional update with one match created another resource"
    )


@pytest.mark.requirement("fhir@19")
def test_conditional_update_with_several_matches_is_412(fhir_client: EvidenceClient, unique: str) -> None:
    """conditional update with several matches is refused with 412"""
    one = create(fhir_client, patient(unique, "One"))
    two = create(fhir_client, patient(unique, "Two"))
    response = fhir_client.put("Patient", params={"identifier": scope(unique)}, json=patient(unique, "Both"))
    assert response.status_code == 412, (
        f"conditional update matching two resources answered {shown(response)}; expected 412"
    )
    for before in (one, two):
        after = read(fhir_client, "Patient", before["id"])
        assert family_of(after) == family_of(before), "a refused conditional update changed a matching resource"
