"""Error answers: 404, 410, 400/422 for bad resources, and OperationOutcomes (fhir@20-25)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import (
    FHIR_JSON,
    body_of,
    bundle_request,
    create,
    expressions,
    family_of,
    ids,
    outcome_problems,
    patient,
    post_bundle,
    read,
    scope,
    search,
    shown,
    tag,
    update,
    updated,
    version_of,
)

UNPRODUCIBLE = "application/x-eqlab-unproducible"


@pytest.mark.requirement("fhir@20")
def test_reading_a_deleted_resource_is_410(fhir_client: EvidenceClient, unique: str) -> None:
    """reading a deleted resource answers 410 Gone"""
    created = create(fhir_client, patient(unique))
    deleted = fhir_client.delete(f"Patient/{created['id']}")
    assert deleted.status_code in (200, 202, 204), f"DELETE Patient/{created['id']} answered {shown(deleted)}"
    response = fhir_client.get(f"Patient/{created['id']}")
    assert response.status_code == 410, f"reading a deleted Patient answered {shown(response)}; expected 410 Gone"


@pytest.mark.requirement("fhir@20")
def test_reading_a_deleted_organization_is_410(fhir_client: EvidenceClient, unique: str) -> None:
    """reading a deleted resource of another type answers 410 Gone"""
    org = create(fhir_client, {"resourceType": "Organization", "identifier": [tag(unique)], "name": unique})
    deleted = fhir_client.delete(f"Organization/{org['id']}")
    assert deleted.status_code in (200, 202, 204), f"DELETE Organization/{org['id']} answered {shown(deleted)}"
    response = fhir_client.get(f"Organization/{org['id']}")
    assert response.status_code == 410, f"reading a deleted Organization answered {shown(response)}; expected 410"


@pytest.mark.requirement("fhir@21")
def test_unknown_id_is_404(fhir_client: EvidenceClient, unique: str) -> None:
    """reading an id that was never created answers 404"""
    for type_name in ("Patient", "Observation"):
        response = fhir_client.get(f"{type_name}/{unique}")
        assert response.status_code == 404, f"GET {type_name}/{unique} (never created) answered {shown(response)}"


UNKNOWN_TYPE_REQUESTS = [
    ("GET", "NotAType/1"),
    ("GET", "NotAType"),
    ("POST", "NotAType"),
    ("PUT", "NotAType/1"),
    ("DELETE", "NotAType/1"),
    ("GET", "NotAType/1/_history"),
]


@pytest.mark.requirement("fhir@21")
def test_unknown_resource_type_is_404(fhir_client: EvidenceClient) -> None:
    """a request naming an unknown resource type answers 404"""
    wrong = []
    for method, path in UNKNOWN_TYPE_REQUESTS:
        body = {"resourceType": "NotAType", "id": "1"} if method in ("POST", "PUT") else None
        response = fhir_client.request(method, path, json=body)
        if response.status_code != 404:
            wrong.append(f"{method} {path} answered {response.status_code}")
    assert not wrong, "requests naming the unknown resource type NotAType must answer 404: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@22")
def test_update_with_another_id_in_the_body_is_400(fhir_client: EvidenceClient, unique: str) -> None:
    """update whose body id differs from the URL is refused with 400"""
    created = create(fhir_client, patient(unique, "Unchanged"))
    other = create(fhir_client, patient(unique, "Other"))
    response = fhir_client.put(f"Patient/{created['id']}", json={**other, "name": [{"family": "Hijack"}]})
    assert response.status_code == 400, (
        f"PUT Patient/{created['id']} with id {other['id']!r} in the body answered {shown(response)}; expected 400"
    )
    for before in (created, other):
        after = read(fhir_client, "Patient", before["id"])
        assert family_of(after) == family_of(before) and version_of(after) == "1", (
            f"the refused update changed Patient/{before['id']}"
        )


@pytest.mark.requirement("fhir@22")
def test_update_without_id_in_the_body_is_400(fhir_client: EvidenceClient, unique: str) -> None:
    """update whose body has no id is refused with 400"""
    created = create(fhir_client, patient(unique, "Unchanged"))
    body = {k: v for k, v in created.items() if k not in ("id", "meta")}
    response = fhir_client.put(f"Patient/{created['id']}", json={**body, "name": [{"family": "NoId"}]})
    assert response.status_code == 400, f"PUT Patient/{created['id']} without an id answered {shown(response)}"
    assert version_of(read(fhir_client, "Patient", created["id"])) == "1", "the refused update made a new version"


def _invalid_bodies(unique: str) -> dict[str, bytes | dict[str, Any]]:
    base = patient(unique)
    return {
        "unknown element": {**base, "favouriteColour": "blue"},
        "number for a date": {**base, "birthDate": 19800517},
        "object for a list": {**base, "name": {"family": "Muller"}},
        "number for a string": {**base, "name": [{"family": 42}]},
        "impossible date": {**base, "birthDate": "1980-13-45"},
        "code outside a required binding": {**base, "gender": "robot"},
        "resourceType other than the URL's": {**base, "resourceType": "Organization"},
        "no resourceType": {k: v for k, v in base.items() if k != "resourceType"},
        "reference id of 65 characters": {**base, "generalPractitioner": [{"reference": "Practitioner/" + "a" * 65}]},
        "absolute reference with such an id": {
            **base,
            "generalPractitioner": [{"reference": "http://other.example/fhir/Practitioner/" + "a" * 65}],
        },
        "malformed JSON": b'{"resourceType": "Patient", "name": [',
        "JSON array": b'[{"resourceType": "Patient"}]',
    }


@pytest.mark.requirement("fhir@23")
def test_invalid_resources_are_refused_and_not_stored(fhir_client: EvidenceClient, unique: str) -> None:
    """invalid resources are refused with 400 or 422 and not stored"""
    wrong = []
    for case, body in _invalid_bodies(unique).items():
        if isinstance(body, bytes):
            response = fhir_client.post("Patient", content=body, headers={"Content-Type": FHIR_JSON})
        else:
            response = fhir_client.post("Patient", json=body)
        if response.status_code not in (400, 422):
            wrong.append(f"{case}: answered {response.status_code}")
    assert not wrong, "POST Patient with an invalid resource must answer 400 or 422: " + "; ".join(wrong)
    for type_name in ("Patient", "Organization"):
        stored = ids(search(fhir_client, type_name, {"identifier": scope(unique)}))
        assert stored == [], f"refused resources were stored anyway as {type_name}/{', '.join(stored)}"


@pytest.mark.requirement("fhir@23")
def test_invalid_update_is_refused_and_changes_nothing(fhir_client: EvidenceClient, unique: str) -> None:
    """an invalid resource in an update is refused and changes nothing"""
    created = create(fhir_client, patient(unique, "Valid"))
    response = update(fhir_client, {**created, "gender": "robot", "name": [{"family": "Invalid"}]})
    assert response.status_code in (400, 422), f"PUT with gender 'robot' answered {shown(response)}; expected 400/422"
    after = read(fhir_client, "Patient", created["id"])
    assert family_of(after) == "Valid" and version_of(after) == "1", "the refused update changed the resource"


def _deleted_read(client: EvidenceClient, unique: str) -> httpx.Response:
    created = create(client, patient(unique))
    client.delete(f"Patient/{created['id']}")
    return client.get(f"Patient/{created['id']}")


def _stale_update(client: EvidenceClient, unique: str) -> httpx.Response:
    created = create(client, patient(unique))
    updated(client, {**created, "gender": "male"})
    return update(client, created, **{"If-Match": 'W/"1"'})


def _mismatched_id(client: EvidenceClient, unique: str) -> httpx.Response:
    created = create(client, patient(unique))
    return client.put(f"Patient/{created['id']}", json={**created, "id": f"{unique}-other"})


ERRORS: dict[str, Callable[[EvidenceClient, str], httpx.Response]] = {
    "unknown id (404)": lambda c, u: c.get(f"Patient/{u}"),
    "unknown type (404)": lambda c, u: c.get("NotAType/1"),
    "deleted resource (410)": _deleted_read,
    "invalid code (400)": lambda c, u: c.post("Patient", json=patient(u, gender="robot")),
    "malformed JSON (400)": lambda c, u: c.post("Patient", content=b"{", headers={"Content-Type": FHIR_JSON}),
    "wrong id in update (400)": _mismatched_id,
    "invalid search value (400)": lambda c, u: c.get("Patient", params={"birthdate": "not-a-date"}),
    "invalid _count (400)": lambda c, u: c.get("Patient", params={"_count": "abc"}),
    "strict unknown parameter (400)": lambda c, u: c.get(
        "Patient", params={"eqlab-unknown": "1"}, headers={"Prefer": "handling=strict"}
    ),
    "stale If-Match (412)": _stale_update,
    "several conditional matches (412)": lambda c, u: c.post(
        "Patient", json=patient(u), headers={"If-None-Exist": f"identifier={scope(u)}"}
    ),
    "unsupported body media type (415)": lambda c, u: c.post(
        "Patient", content=b'{"resourceType":"Patient"}', headers={"Content-Type": "text/plain"}
    ),
    "unacceptable Accept (406)": lambda c, u: c.get("metadata", headers={"Accept": UNPRODUCIBLE}),
    "method not allowed": lambda c, u: c.delete("metadata"),
}


@pytest.mark.requirement("fhir@24")
def test_error_answers_are_operation_outcomes(fhir_client: EvidenceClient, unique: str) -> None:
    """error answers are OperationOutcomes with severity, code and diagnostics"""
    create(fhir_client, patient(unique, "One"))
    create(fhir_client, patient(unique, "Two"))
    wrong = []
    for case, make in ERRORS.items():
        response = make(fhir_client, unique)
        if response.status_code < 400:
            wrong.append(f"{case}: answered {response.status_code}, not an error")
        elif problems := outcome_problems(response):
            wrong.append(
                f"{case}: the {response.status_code} answer is not a proper OperationOutcome: {', '.join(problems)}"
            )
    assert not wrong, "; ".join(wrong)


@pytest.mark.requirement("fhir@25")
def test_outcome_names_the_faulty_element(fhir_client: EvidenceClient, unique: str) -> None:
    """an OperationOutcome about an invalid element names it in issue.expression"""
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("invalid code", "gender", {"gender": "robot"}),
        ("wrong type", "birthDate", {"birthDate": 19800517}),
        ("unknown element", "favouriteColour", {"favouriteColour": "blue"}),
    ]
    wrong = []
    for case, element, fields in cases:
        response = fhir_client.post("Patient", json=patient(unique, **fields))
        named = expressions(response)
        if response.status_code not in (400, 422) or not any(element in e for e in named):
            wrong.append(f"{case} in Patient.{element}: {response.status_code}, issue.expression {named or 'absent'}")
    assert not wrong, "the OperationOutcome should name the faulty element: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@24")
def test_failed_batch_entries_carry_operation_outcomes(fhir_client: EvidenceClient, unique: str) -> None:
    """a failed batch entry carries an OperationOutcome with severity, code and diagnostics"""
    items = [
        bundle_request("GET", f"Patient/{unique}"),
        bundle_request("POST", "Patient", patient(unique, gender="robot")),
    ]
    response = post_bundle(fhir_client, "batch", items)
    assert response.status_code == 200, f"the batch answered {shown(response)}; expected 200"
    wrong = []
    for i, entry in enumerate(body_of(response, "batch").get("entry") or []):
        answer = entry.get("response") or {}
        outcome = answer.get("outcome") or entry.get("resource") or {}
        issues = outcome.get("issue") if outcome.get("resourceType") == "OperationOutcome" else None
        if not issues:
            wrong.append(f"entry {i} ({answer.get('status')}) has no OperationOutcome")
            continue
        for issue in issues:
            if not (issue.get("severity") and issue.get("code") and str(issue.get("diagnostics", "")).strip()):
                wrong.append(f"entry {i} has an issue without severity, code or diagnostics: {issue}")
    assert not wrong, "; ".join(wrong)


@pytest.mark.requirement("fhir@25")
def test_outcome_names_a_nested_element(fhir_client: EvidenceClient, unique: str) -> None:
    """an OperationOutcome about an invalid nested element names its path"""
    resource = patient(unique)
    resource["name"][0]["family"] = 42
    response = fhir_client.post("Patient", json=resource)
    assert response.status_code in (400, 422), f"POST Patient with a number as name.family answered {shown(response)}"
    named = expressions(response)
    assert any("name" in e and "family" in e for e in named), (
        f"the OperationOutcome about Patient.name[0].family names {named or 'no element'} in issue.expression"
    )
