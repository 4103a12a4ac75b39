"""Request limits: bodies over 10 MiB (fhir@45) and resources nested deeper than 64 levels (fhir@46)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import (
    FHIR_JSON,
    JSON_PATCH,
    bundle_request,
    create,
    ids,
    patient,
    read,
    scope,
    search,
    shown,
    version_of,
)

MIB = 1024 * 1024
OVER_LIMIT = 10 * MIB + 64 * 1024


def _oversized(unique: str) -> bytes:
    """A valid Patient, tagged with ``unique``, whose JSON is just over 10 MiB."""
    resource = patient(unique)
    resource["name"][0]["given"] = ["x" * OVER_LIMIT]
    return json.dumps(resource).encode()


def _chunks(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _send_large(fhir_client: EvidenceClient, method: str, path: str, body: bytes) -> httpx.Response:
    """Send ``body`` with its Content-Length, streamed (the evidence keeps its size, not 10 MiB of text)."""
    headers = {"Content-Type": FHIR_JSON, "Content-Length": str(len(body))}
    return fhir_client.request(method, path, content=_chunks(body), headers=headers)


def _nothing_stored(fhir_client: EvidenceClient, unique: str, what: str) -> None:
    stored = ids(search(fhir_client, "Patient", {"identifier": scope(unique)}))
    assert stored == [], f"{what} was refused but Patient/{stored[0]} was stored anyway"


@pytest.mark.requirement("fhir@45")
def test_body_over_10_mib_is_413(fhir_client: EvidenceClient, unique: str) -> None:
    """a create body over 10 MiB answers 413 and stores nothing"""
    body = _oversized(unique)
    response = _send_large(fhir_client, "POST", "Patient", body)
    assert response.status_code == 413, f"POST Patient with a {len(body)}-byte body answered {shown(response)}"
    _nothing_stored(fhir_client, unique, "the oversized create")


@pytest.mark.requirement("fhir@45")
def test_chunked_body_over_10_mib_is_413(fhir_client: EvidenceClient, unique: str) -> None:
    """a chunked create body (no Content-Length) over 10 MiB is refused and stores nothing"""
    body = _oversized(unique)
    response = fhir_client.post("Patient", content=_chunks(body), headers={"Content-Type": FHIR_JSON})
    assert response.status_code in (411, 413), (
        f"POST Patient with a chunked {len(body)}-byte body answered {shown(response)}; expected 413 (or 411)"
    )
    _nothing_stored(fhir_client, unique, "the oversized chunked create")


@pytest.mark.requirement("fhir@45")
def test_bundle_over_10_mib_is_413(fhir_client: EvidenceClient, unique: str) -> None:
    """a transaction Bundle over 10 MiB answers 413 and stores nothing"""
    entries = [bundle_request("POST", "Patient", patient(unique, "Small"))]
    big = json.loads(_oversized(unique))
    entries.append(bundle_request("POST", "Patient", big))
    body = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode()
    response = _send_large(fhir_client, "POST", "", body)
    assert response.status_code == 413, f"a {len(body)}-byte transaction answered {shown(response)}; expected 413"
    _nothing_stored(fhir_client, unique, "the oversized transaction")


@pytest.mark.requirement("fhir@45")
def test_update_body_over_10_mib_is_413(fhir_client: EvidenceClient, unique: str) -> None:
    """an update body over 10 MiB answers 413 and changes nothing"""
    created = create(fhir_client, patient(unique))
    resource = json.loads(_oversized(unique))
    resource["id"] = created["id"]
    body = json.dumps(resource).encode()
    response = _send_large(fhir_client, "PUT", f"Patient/{created['id']}", body)
    assert response.status_code == 413, f"PUT Patient with a {len(body)}-byte body answered {shown(response)}"
    assert version_of(read(fhir_client, "Patient", created["id"])) == "1", "the oversized update changed the resource"


def _nested_extension(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"url": "http://example.org/eqlab/deep", "valueString": "bottom"}
    for _ in range(levels):
        node = {"url": "http://example.org/eqlab/deep", "extension": [node]}
    return node


@pytest.mark.requirement("fhir@46")
@pytest.mark.parametrize("levels", [40, 100])
def test_deeply_nested_extensions_are_400(fhir_client: EvidenceClient, unique: str, levels: int) -> None:
    """a resource whose extensions nest deeper than 64 levels answers 400 and is not stored"""
    resource = patient(unique, extension=[_nested_extension(levels)])
    response = fhir_client.post("Patient", json=resource)
    assert response.status_code == 400, (
        f"a Patient with extensions nested {levels} deep ({2 * levels + 3} JSON levels) answered {shown(response)}; "
        "expected 400"
    )
    _nothing_stored(fhir_client, unique, "the deeply nested create")


@pytest.mark.requirement("fhir@46")
def test_deeply_nested_arrays_are_400(fhir_client: EvidenceClient, unique: str) -> None:
    """a body of arrays nested 300 deep answers 400, not a server error"""
    body = b'{"resourceType":"Patient","identifier":[{"system":"urn:eqlab:contract","value":"' + unique.encode()
    body += b'"}],"extension":' + b"[" * 300 + b"]" * 300 + b"}"
    response = fhir_client.post("Patient", content=body, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 400, f"a Patient with arrays nested 300 deep answered {shown(response)}"
    _nothing_stored(fhir_client, unique, "the deeply nested create")


@pytest.mark.requirement("fhir@46")
def test_deeply_nested_bundle_is_400(fhir_client: EvidenceClient, unique: str) -> None:
    """a transaction holding a resource nested deeper than 64 levels answers 400"""
    resource = patient(unique, extension=[_nested_extension(40)])
    body = {"resourceType": "Bundle", "type": "transaction", "entry": [bundle_request("POST", "Patient", resource)]}
    response = fhir_client.post("", json=body)
    assert response.status_code == 400, f"a transaction with a 40-deep extension answered {shown(response)}"
    _nothing_stored(fhir_client, unique, "the deeply nested transaction")


@pytest.mark.requirement("fhir@46")
def test_deeply_nested_patch_is_400(fhir_client: EvidenceClient, unique: str) -> None:
    """a JSON Patch adding a value nested deeper than 64 levels answers 400"""
    created = create(fhir_client, patient(unique))
    operations = [{"op": "add", "path": "/extension", "value": [_nested_extension(40)]}]
    response = fhir_client.patch(f"Patient/{created['id']}", json=operations, headers={"Content-Type": JSON_PATCH})
    assert response.status_code in (400, 422), f"a JSON Patch nesting 40 extensions answered {shown(response)}"
    assert version_of(read(fhir_client, "Patient", created["id"])) == "1", "the refused patch changed the resource"
