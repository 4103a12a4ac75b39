"""FHIR JSON never holds an empty array or object (fhir@50, FHIR R4 json.html)."""

from __future__ import annotations

from typing import Any

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import body_of, bundle_request, create, patient, post_bundle, read, scope, search


def empty_paths(value: Any, path: str = "$") -> list[str]:
    """Where ``value`` holds an empty array or object, as JSON paths ($.link, $.entry[0].resource)."""
    if value in ([], {}):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in empty_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in empty_paths(item, f"{path}[{i}]")]
    return []


@pytest.mark.requirement("fhir@50")
def test_no_empty_arrays_or_objects(fhir_client: EvidenceClient, unique: str) -> None:
    """the CapabilityStatement, reads, searches and batch/transaction answers hold no empty array or object"""
    created = create(fhir_client, patient(unique))
    answers = {
        "GET metadata": body_of(fhir_client.get("metadata"), "metadata"),
        "read": read(fhir_client, "Patient", created["id"]),
        "search": search(fhir_client, "Patient", {"identifier": scope(unique)}),
    }
    for kind in ("batch", "transaction"):
        items = [bundle_request("POST", "Patient", patient(unique, kind.capitalize()))]
        answers[kind] = body_of(post_bundle(fhir_client, kind, items), kind)
    found = [f"{what}: {path}" for what, body in answers.items() for path in empty_paths(body)]
    assert not found, "FHIR JSON forbids empty arrays and objects; found " + ", ".join(found)
