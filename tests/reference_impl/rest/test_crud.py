"""read, vread, create, update, patch, delete, history and their headers (SPEC section 1)."""

from __future__ import annotations

import httpx

from tests.reference_impl.rest.helpers import JSON_HEADERS, assert_outcome, create, patient, put


def test_create_assigns_id_version_and_headers(fhir: httpx.Client) -> None:
    response = fhir.post("Patient", json=patient(id="ignored-on-create"), headers=JSON_HEADERS)
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "ignored-on-create"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert response.headers["location"].startswith("http")


def test_read_returns_what_was_stored(fhir: httpx.Client) -> None:
    created = create(fhir, patient("Weber", birthDate="1980-02-29"))
    response = fhir.get(f"Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"


def test_read_unknown_id_is_404(fhir: httpx.Client) -> None:
    assert_outcome(fhir.get("Patient/does-not-exist"), 404, "not-found")


def test_update_bumps_version_and_keeps_history(fhir: httpx.Client) -> None:
    created = create(fhir, patient("Thill"))
    changed = {**created, "gender": "female"}
    response = put(fhir, changed)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.headers["location"].endswith("/_history/2")
    old = fhir.get(f"Patient/{created['id']}/_history/1")
    assert old.status_code == 200 and "gender" not in old.json()
    assert fhir.get(f"Patient/{created['id']}/_history/2").json()["gender"] == "female"
    assert_outcome(fhir.get(f"Patient/{created['id']}/_history/3"), 404)


def test_update_as_create_uses_client_id(fhir: httpx.Client) -> None:
    response = put(fhir, patient(id="client-chosen-1"))
    assert response.status_code == 201
    assert fhir.get("Patient/client-chosen-1").json()["meta"]["versionId"] == "1"


def test_update_with_matching_if_match_succeeds_and_stale_one_is_412(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    assert put(fhir, created, **{"If-Match": 'W/"1"'}).status_code == 200
    assert_outcome(put(fhir, created, **{"If-Match": 'W/"1"'}), 412, "conflict")
    assert fhir.get(f"Patient/{created['id']}").json()["meta"]["versionId"] == "2"


def test_delete_then_read_is_410_and_vread_of_deletion_is_410(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    response = fhir.delete(f"Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json()["resourceType"] == "OperationOutcome"
    assert_outcome(fhir.get(f"Patient/{created['id']}"), 410, "deleted")
    assert_outcome(fhir.get(f"Patient/{created['id']}/_history/2"), 410)
    assert fhir.get(f"Patient/{created['id']}/_history/1").status_code == 200
    assert fhir.delete(f"Patient/{created['id']}").status_code == 200  # idempotent
    assert_outcome(fhir.delete("Patient/never-existed"), 404)


def test_deleted_resource_can_be_recreated_with_next_version(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    fhir.delete(f"Patient/{created['id']}")
    response = put(fhir, created)
    assert response.status_code == 201
    assert response.json()["meta"]["versionId"] == "3"


def test_delete_with_stale_if_match_is_412(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    assert_outcome(fhir.delete(f"Patient/{created['id']}", headers={"If-Match": 'W/"7"'}), 412)
    assert fhir.get(f"Patient/{created['id']}").status_code == 200


def test_instance_type_and_system_history(fhir: httpx.Client) -> None:
    first = create(fhir, patient("One"))
    put(fhir, {**first, "active": True})
    create(fhir, {"resourceType": "Organization", "name": "Org"})
    fhir.delete(f"Patient/{first['id']}")
    instance = fhir.get(f"Patient/{first['id']}/_history").json()
    assert instance["type"] == "history" and instance["total"] == 3
    methods = [e["request"]["method"] for e in instance["entry"]]
    assert methods == ["DELETE", "PUT", "POST"]  # newest first
    assert "resource" not in instance["entry"][0]
    assert instance["entry"][2]["response"]["status"] == "201 Created"
    assert fhir.get("Patient/_history").json()["total"] == 3
    system = fhir.get("_history", params={"_count": 1000}).json()["entry"]
    written_here = [e for e in system if e["request"]["url"].split("/")[0] in ("Patient", "Organization")]
    assert len(written_here) == 4  # beside the audit trail and the services' terminology
    assert_outcome(fhir.get("Patient/unknown/_history"), 404)


def test_history_since_and_paging(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    for active in (True, False, True, False):
        put(fhir, {**created, "active": active})
    page = fhir.get(f"Patient/{created['id']}/_history", params={"_count": 2}).json()
    assert page["total"] == 5 and len(page["entry"]) == 2
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    second = fhir.get(next_url).json()
    assert [e["resource"]["meta"]["versionId"] for e in second["entry"]] == ["3", "2"]
    latest = page["entry"][0]["resource"]["meta"]["lastUpdated"]
    assert fhir.get(f"Patient/{created['id']}/_history", params={"_since": latest}).json()["total"] >= 1
    assert_outcome(fhir.get("_history", params={"_since": "yesterday"}), 400)


def test_conditional_create(fhir: httpx.Client) -> None:
    resource = patient(identifier=[{"system": "urn:test:mrn", "value": "A-1"}])
    headers = {**JSON_HEADERS, "If-None-Exist": "identifier=urn:test:mrn|A-1"}
    first = fhir.post("Patient", json=resource, headers=headers)
    second = fhir.post("Patient", json=resource, headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    create(fhir, resource)  # now two match
    assert_outcome(fhir.post("Patient", json=resource, headers=headers), 412)


def test_conditional_update_creates_updates_or_refuses(fhir: httpx.Client) -> None:
    resource = patient(identifier=[{"system": "urn:test:mrn", "value": "B-2"}])
    url = "Patient?identifier=urn:test:mrn|B-2"
    first = fhir.put(url, json=resource, headers=JSON_HEADERS)
    assert first.status_code == 201
    second = fhir.put(url, json={**resource, "active": True}, headers=JSON_HEADERS)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["meta"]["versionId"] == "2"
    assert_outcome(fhir.put(url, json={**resource, "id": "other"}, headers=JSON_HEADERS), 400)
    create(fhir, resource)
    assert_outcome(fhir.put(url, json=resource, headers=JSON_HEADERS), 412, "multiple-matches")


def test_conditional_delete(fhir: httpx.Client) -> None:
    created = create(fhir, patient(identifier=[{"system": "urn:test:mrn", "value": "C-3"}]))
    assert fhir.delete("Patient?identifier=urn:test:mrn|C-3").status_code == 200
    assert fhir.get(f"Patient/{created['id']}").status_code == 410


def test_json_patch(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    ops = [
        {"op": "add", "path": "/active", "value": True},
        {"op": "replace", "path": "/name/0/family", "value": "Patched"},
    ]
    response = fhir.patch(f"Patient/{created['id']}", json=ops, headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True and body["name"][0]["family"] == "Patched"
    assert body["meta"]["versionId"] == "2"


def test_json_patch_failures(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    url, headers = f"Patient/{created['id']}", {"Content-Type": "application/json-patch+json"}
    assert_outcome(fhir.patch(url, json=[{"op": "test", "path": "/active", "value": True}], headers=headers), 422)
    assert_outcome(fhir.patch(url, json=[{"op": "replace", "path": "/id", "value": "x"}], headers=headers), 422)
    assert_outcome(fhir.patch(url, json=[{"op": "add", "path": "/gender", "value": "robot"}], headers=headers), 422)
    assert_outcome(fhir.patch(url, json={"op": "add"}, headers=headers), 400)
    assert_outcome(fhir.patch(url, json=[{"op": "add", "path": "/active", "value": True}], headers=JSON_HEADERS), 415)
    assert_outcome(
        fhir.patch(
            url, json=[{"op": "add", "path": "/active", "value": True}], headers={**headers, "If-Match": 'W/"9"'}
        ),
        412,
    )
    assert fhir.get(url).json()["meta"]["versionId"] == "1"


def test_prefer_return(fhir: httpx.Client) -> None:
    minimal = fhir.post("Patient", json=patient(), headers={**JSON_HEADERS, "Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.content == b"" and "location" in minimal.headers
    outcome = fhir.post("Patient", json=patient(), headers={**JSON_HEADERS, "Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201 and outcome.json()["resourceType"] == "OperationOutcome"


def test_conditional_read(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    url = f"Patient/{created['id']}"
    assert fhir.get(url, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert fhir.get(url, headers={"If-None-Match": 'W/"0"'}).status_code == 200
    last_modified = fhir.get(url).headers["last-modified"]
    assert fhir.get(url, headers={"If-Modified-Since": last_modified}).status_code == 304


def test_binary_raw_upload_and_read(fhir: httpx.Client) -> None:
    pdf = b"%PDF-1.4 fake document bytes \x00\x01"
    response = fhir.post("Binary", content=pdf, headers={"Content-Type": "application/pdf"})
    assert response.status_code == 201
    binary_id = response.json()["id"]
    raw = fhir.get(f"Binary/{binary_id}", headers={"Accept": "application/pdf"})
    assert raw.content == pdf and raw.headers["content-type"] == "application/pdf"
    as_fhir = fhir.get(f"Binary/{binary_id}", headers={"Accept": "application/fhir+json"}).json()
    assert as_fhir["contentType"] == "application/pdf" and as_fhir["resourceType"] == "Binary"


def test_read_with_summary_and_elements_is_subsetted(fhir: httpx.Client) -> None:
    created = create(
        fhir,
        patient(
            gender="male", text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}
        ),
    )
    summary = fhir.get(f"Patient/{created['id']}", params={"_summary": "true"}).json()
    assert "text" not in summary and summary["gender"] == "male"
    assert {"code": "SUBSETTED"}.items() <= summary["meta"]["tag"][0].items()
    elements = fhir.get(f"Patient/{created['id']}", params={"_elements": "gender"}).json()
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
