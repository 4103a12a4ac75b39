"""FHIR JSON answers hold no empty arrays or objects; large answers are gzipped; /metadata?_summary=true is small."""

from __future__ import annotations

from typing import Any

import httpx

from tests.reference_impl.rest.helpers import JSON_HEADERS, patient


def empties(value: Any, path: str = "$") -> list[str]:
    if value in ([], {}):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in empties(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in empties(item, f"{path}[{i}]")]
    return []


def test_batch_answer_and_capability_statement_hold_no_empty_arrays(fhir: httpx.Client) -> None:
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": patient("Leer"), "request": {"method": "POST", "url": "Patient"}}],
    }
    answer = fhir.post("", json=batch, headers=JSON_HEADERS)
    assert answer.status_code == 200
    assert empties(answer.json()) == []
    assert empties(fhir.get("metadata").json()) == []


def test_large_answers_are_gzipped_when_asked(fhir: httpx.Client) -> None:
    zipped = fhir.get("metadata", headers={"Accept-Encoding": "gzip"})
    plain = fhir.get("metadata", headers={"Accept-Encoding": "identity"})
    assert zipped.headers.get("content-encoding") == "gzip"
    assert "content-encoding" not in plain.headers
    assert zipped.json()["rest"] == plain.json()["rest"]
    small = fhir.get("Patient/missing-one", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under the 1 KB threshold


def test_metadata_summary_is_much_smaller(fhir: httpx.Client) -> None:
    whole = fhir.get("metadata")
    summary = fhir.get("metadata", params={"_summary": "true"})
    assert summary.status_code == 200
    body = summary.json()
    assert body["resourceType"] == "CapabilityStatement" and "searchParam" not in body["rest"][0]["resource"][0]
    assert any(t.get("code") == "SUBSETTED" for t in body["meta"]["tag"])
    assert len(summary.content) * 4 < len(whole.content)
