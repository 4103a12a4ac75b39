"""Small helpers for talking FHIR to the server under test."""

from __future__ import annotations

from typing import Any

import httpx

FHIR_JSON = "application/fhir+json"
JSON_HEADERS = {"Content-Type": FHIR_JSON}


def create(fhir: httpx.Client, resource: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = fhir.post(resource["resourceType"], json=resource, headers={**JSON_HEADERS, **headers})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def put(fhir: httpx.Client, resource: dict[str, Any], **headers: str) -> httpx.Response:
    path = f"{resource['resourceType']}/{resource['id']}"
    return fhir.put(path, json=resource, headers={**JSON_HEADERS, **headers})


def search(fhir: httpx.Client, query: str, **headers: str) -> dict[str, Any]:
    response = fhir.get(query, headers=headers)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def assert_outcome(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with an OperationOutcome whose issues all say something."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome: dict[str, Any] = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"], "an OperationOutcome needs at least one issue"
    for issue in outcome["issue"]:
        assert issue["severity"] in ("fatal", "error", "warning", "information")
        assert issue["code"]
        assert issue["diagnostics"].strip()
    if code is not None:
        assert code in [i["code"] for i in outcome["issue"]], outcome
    return outcome


def patient(family: str = "Muller", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": ["Anne"]}], **fields}
