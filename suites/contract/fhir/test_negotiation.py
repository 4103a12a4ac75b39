"""Content negotiation (fhir@26-28), the request id (fhir@47) and server times in UTC (fhir@48)."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import (
    FHIR_JSON,
    JSON_MEDIA_TYPES,
    body_of,
    create,
    family_of,
    ids,
    last_updated_of,
    media_type,
    patient,
    read,
    scope,
    search,
    shown,
    version_of,
)

UNPRODUCIBLE = "application/x-eqlab-unproducible"


def _without_accept(fhir_client: EvidenceClient, path: str) -> tuple[str, str]:
    request = fhir_client.build_request("GET", path)
    del request.headers["Accept"]
    response = fhir_client.send(request)
    assert response.status_code == 200, f"GET {path} without an Accept header answered {shown(response)}"
    return media_type(response), response.headers.get("content-type", "")


@pytest.mark.requirement("fhir@26")
def test_default_media_type_is_fhir_json(fhir_client: EvidenceClient, unique: str) -> None:
    """without an Accept header, answers are application/fhir+json"""
    created = create(fhir_client, patient(unique))
    for path in (f"Patient/{created['id']}", f"Patient?identifier={scope(unique)}", "metadata"):
        kind, header = _without_accept(fhir_client, path)
        assert kind == FHIR_JSON, f"GET {path} without Accept answered Content-Type {header!r}; expected {FHIR_JSON}"


@pytest.mark.requirement("fhir@26")
def test_fhir_json_for_fhir_json_or_wildcards(fhir_client: EvidenceClient, unique: str) -> None:
    """Accept application/fhir+json or a wildcard gets FHIR JSON"""
    created = create(fhir_client, patient(unique))
    wrong = []
    for accept in (FHIR_JSON, "*/*", "application/*", f"{FHIR_JSON}; fhirVersion=4.0", f"text/html;q=0.5, {FHIR_JSON}"):
        response = fhir_client.get(f"Patient/{created['id']}", headers={"Accept": accept})
        if response.status_code != 200 or media_type(response) != FHIR_JSON:
            wrong.append(f"Accept {accept!r}: {response.status_code} {response.headers.get('content-type')!r}")
        elif body_of(response, "read").get("id") != created["id"]:
            wrong.append(f"Accept {accept!r}: the answer is not the resource read")
    assert not wrong, f"reads should answer 200 in {FHIR_JSON}: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@26")
def test_application_json_is_accepted(fhir_client: EvidenceClient, unique: str) -> None:
    """Accept application/json is answered in JSON, and an application/json body is accepted"""
    response = fhir_client.post(
        "Patient",
        json=patient(unique, "Plain"),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert response.status_code == 201, f"POST with Content-Type application/json answered {shown(response)}"
    assert media_type(response) in JSON_MEDIA_TYPES, (
        f"Accept application/json was answered with Content-Type {response.headers.get('content-type')!r}"
    )
    found = search(fhir_client, "Patient", {"identifier": scope(unique)}, Accept="application/json")
    assert len(ids(found)) == 1, "the Patient posted as application/json is not found"


@pytest.mark.requirement("fhir@26")
def test_format_parameter_is_accepted(fhir_client: EvidenceClient, unique: str) -> None:
    """the _format parameter selects JSON, even over an Accept the server cannot produce"""
    created = create(fhir_client, patient(unique))
    wrong = []
    for value in ("json", FHIR_JSON, "application/json"):
        for headers in ({}, {"Accept": UNPRODUCIBLE}):
            response = fhir_client.get(f"Patient/{created['id']}", params={"_format": value}, headers=headers)
            what = f"_format={value}" + (f" with Accept {UNPRODUCIBLE}" if headers else "")
            if response.status_code != 200 or media_type(response) not in JSON_MEDIA_TYPES:
                wrong.append(f"{what}: {response.status_code} {response.headers.get('content-type')!r}")
    assert not wrong, "reads with _format should answer 200 in JSON: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@27")
def test_unproducible_accept_on_read_is_406(fhir_client: EvidenceClient, unique: str) -> None:
    """a read with an Accept the server cannot produce answers 406"""
    created = create(fhir_client, patient(unique))
    wrong = []
    for accept in (UNPRODUCIBLE, "image/png", f"{UNPRODUCIBLE}, image/png;q=0.5"):
        response = fhir_client.get(f"Patient/{created['id']}", headers={"Accept": accept})
        if response.status_code != 406:
            wrong.append(f"Accept {accept!r} answered {response.status_code}")
    assert not wrong, "a read whose Accept names only media types the server cannot produce must answer 406: " + (
        "; ".join(wrong)
    )


@pytest.mark.requirement("fhir@27")
def test_unproducible_accept_on_search_is_406(fhir_client: EvidenceClient, unique: str) -> None:
    """a search with an Accept the server cannot produce answers 406"""
    response = fhir_client.get("Patient", params={"identifier": scope(unique)}, headers={"Accept": UNPRODUCIBLE})
    assert response.status_code == 406, f"a search with Accept {UNPRODUCIBLE} answered {shown(response)}"


@pytest.mark.requirement("fhir@27")
def test_unproducible_accept_on_create_writes_nothing(fhir_client: EvidenceClient, unique: str) -> None:
    """a create with an Accept the server cannot produce answers 406 and stores nothing"""
    response = fhir_client.post("Patient", json=patient(unique), headers={"Accept": UNPRODUCIBLE})
    assert response.status_code == 406, f"POST with Accept {UNPRODUCIBLE} answered {shown(response)}; expected 406"
    stored = ids(search(fhir_client, "Patient", {"identifier": scope(unique)}))
    assert stored == [], f"the create answered 406 but stored Patient/{stored[0]} anyway"


@pytest.mark.requirement("fhir@27")
def test_unproducible_accept_on_update_writes_nothing(fhir_client: EvidenceClient, unique: str) -> None:
    """an update with an Accept the server cannot produce answers 406 and changes nothing"""
    created = create(fhir_client, patient(unique, "Before"))
    response = fhir_client.put(
        f"Patient/{created['id']}", json={**created, "name": [{"family": "After"}]}, headers={"Accept": UNPRODUCIBLE}
    )
    assert response.status_code == 406, f"PUT with Accept {UNPRODUCIBLE} answered {shown(response)}; expected 406"
    after = read(fhir_client, "Patient", created["id"])
    assert family_of(after) == "Before" and version_of(after) == "1", "the update answered 406 but changed the resource"


@pytest.mark.requirement("fhir@28")
def test_unsupported_body_media_type_on_create_is_415(fhir_client: EvidenceClient, unique: str) -> None:
    """a create whose body is in an unsupported media type answers 415 and stores nothing"""
    wrong = []
    for content_type in ("text/plain", "application/x-eqlab-unknown", "application/octet-stream"):
        response = fhir_client.post("Patient", json=patient(unique), headers={"Content-Type": content_type})
        if response.status_code != 415:
            wrong.append(f"{content_type} answered {response.status_code}")
    assert not wrong, "POST Patient with a body in an unsupported media type must answer 415: " + "; ".join(wrong)
    stored = ids(search(fhir_client, "Patient", {"identifier": scope(unique)}))
    assert stored == [], f"a refused create stored Patient/{', '.join(stored)} anyway"


@pytest.mark.requirement("fhir@28")
def test_unsupported_body_media_type_on_update_is_415(fhir_client: EvidenceClient, unique: str) -> None:
    """an update whose body is in an unsupported media type answers 415 and changes nothing"""
    created = create(fhir_client, patient(unique, "Before"))
    response = fhir_client.put(
        f"Patient/{created['id']}",
        json={**created, "name": [{"family": "After"}]},
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 415, f"PUT Patient as text/plain answered {shown(response)}; expected 415"
    assert version_of(read(fhir_client, "Patient", created["id"])) == "1", "the update answered 415 but changed it"


@pytest.mark.requirement("fhir@28")
def test_unsupported_media_type_on_patch_and_search_is_415(fhir_client: EvidenceClient, unique: str) -> None:
    """a patch or POST _search body in an unsupported media type answers 415"""
    created = create(fhir_client, patient(unique))
    patch = fhir_client.patch(
        f"Patient/{created['id']}",
        content=b'[{"op":"replace","path":"/gender","value":"male"}]',
        headers={"Content-Type": "text/plain"},
    )
    assert patch.status_code == 415, f"PATCH with a text/plain body answered {shown(patch)}; expected 415"
    posted = fhir_client.post(
        "Patient/_search", content=f"identifier={scope(unique)}".encode(), headers={"Content-Type": "text/plain"}
    )
    assert posted.status_code == 415, f"POST _search with a text/plain body answered {shown(posted)}; expected 415"


@pytest.mark.requirement("fhir@47")
def test_request_id_is_echoed(fhir_client: EvidenceClient, unique: str) -> None:
    """X-Request-Id is echoed on successes and errors"""
    for path in ("metadata", f"Patient/{unique}"):
        response = fhir_client.get(path, headers={"X-Request-Id": unique})
        echoed = response.headers.get("x-request-id")
        assert echoed == unique, (
            f"GET {path} ({response.status_code}) with X-Request-Id {unique!r} answered X-Request-Id {echoed!r}"
        )


@pytest.mark.requirement("fhir@47")
def test_request_id_is_generated(fhir_client: EvidenceClient, unique: str) -> None:
    """X-Request-Id is generated when the client sends none"""
    seen = []
    for path in ("metadata", f"Patient/{unique}", "metadata"):
        response = fhir_client.get(path)
        generated = response.headers.get("x-request-id")
        assert generated and generated.strip(), f"GET {path} ({response.status_code}) answered without X-Request-Id"
        seen.append(generated)
    assert len(set(seen)) == len(seen), f"generated request ids repeat: {seen}"


def _is_utc(value: str | None) -> bool:
    return bool(value) and (str(value).endswith("Z") or str(value).endswith("+00:00"))


@pytest.mark.requirement("fhir@48")
def test_server_times_are_utc(fhir_client: EvidenceClient, unique: str) -> None:
    """meta.lastUpdated, Bundle timestamps and Last-Modified are in UTC"""
    response = fhir_client.post("Patient", json=patient(unique))
    assert response.status_code == 201, f"POST Patient answered {shown(response)}"
    created = body_of(response, "POST Patient")
    assert _is_utc(last_updated_of(created)), f"meta.lastUpdated {last_updated_of(created)!r} is not in UTC (Z)"
    modified = response.headers.get("last-modified", "")
    assert modified.endswith("GMT"), f"Last-Modified {modified!r} is not in GMT"
    bundle = search(fhir_client, "Patient", {"identifier": scope(unique)})
    for name, value in (("meta.lastUpdated", last_updated_of(bundle)), ("timestamp", bundle.get("timestamp"))):
        assert value is None or _is_utc(value), f"the searchset Bundle's {name} {value!r} is not in UTC"


@pytest.mark.requirement("fhir@48")
def test_bundle_times_are_utc(fhir_client: EvidenceClient, unique: str) -> None:
    """times in transaction-response and history Bundles are in UTC"""
    items = [{"request": {"method": "POST", "url": "Patient"}, "resource": patient(unique)}]
    response = fhir_client.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": items})
    assert response.status_code == 200, f"the transaction answered {shown(response)}"
    answer = body_of(response, "transaction")
    stamps = [("transaction-response meta.lastUpdated", last_updated_of(answer))]
    stamps += [
        ("transaction entry lastModified", (e.get("response") or {}).get("lastModified")) for e in answer["entry"]
    ]
    created = search(fhir_client, "Patient", {"identifier": scope(unique)})["entry"][0]["resource"]
    history = body_of(fhir_client.get(f"Patient/{created['id']}/_history"), "history")
    stamps.append(("history meta.lastUpdated", last_updated_of(history)))
    stamps += [("history entry lastModified", (e.get("response") or {}).get("lastModified")) for e in history["entry"]]
    wrong = [f"{name} {value!r}" for name, value in stamps if value is not None and not _is_utc(value)]
    assert not wrong, "server times not in UTC: " + "; ".join(wrong)
