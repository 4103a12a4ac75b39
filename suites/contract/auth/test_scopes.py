"""SMART scopes at the FHIR API: v2 letters, v1 read/write, 403 insufficient_scope (auth@22, 23, 30).

Each check asks the plan's system client for a narrow scope and tries interactions inside and
outside it on data it created with the plan's full system token.
"""

from __future__ import annotations

import httpx
import pytest

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import Tokens, bearer, challenge
from suites.contract.fhir_toolkit import Resource, create, observation, patient, scope, shown

# (what, method, path) -> the letter of the scope it needs
Attempt = tuple[str, str, str]


def _data(fhir_client: EvidenceClient, unique: str) -> tuple[Resource, Resource]:
    subject = create(fhir_client, patient(unique))
    return subject, create(fhir_client, observation(unique, f"Patient/{subject['id']}"))


def _attempt(client: EvidenceClient, token: str, method: str, path: str, unique: str) -> httpx.Response:
    if method == "POST":
        return client.post(path, json=patient(unique, "Scoped"), headers=bearer(token))
    return client.get(path, headers=bearer(token))


def _attempts(subject: Resource, obs: Resource, unique: str) -> dict[str, Attempt]:
    return {
        "read Patient": ("read", "GET", f"Patient/{subject['id']}"),
        "search Patient": ("search", "GET", f"Patient?identifier={scope(unique)}"),
        "create Patient": ("create", "POST", "Patient"),
        "read Observation": ("read", "GET", f"Observation/{obs['id']}"),
    }


def _check(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens, unique: str,
    granted: str, allowed: set[str],
) -> None:  # fmt: skip
    subject, obs = _data(fhir_client, unique)
    token = tokens.system(granted)
    wrong = []
    for name, (_, method, path) in _attempts(subject, obs, unique).items():
        response = _attempt(anonymous_client, token, method, path, unique)
        ok = response.status_code in (200, 201)
        if ok != (name in allowed):
            expected = "allowed" if name in allowed else "refused with 403"
            wrong.append(f"{name} answered {response.status_code} (expected {expected})")
    assert not wrong, f"with a token of scope {granted!r}: " + "; ".join(wrong)


@pytest.mark.requirement("auth@22")
@pytest.mark.parametrize(
    ("granted", "allowed"),
    [
        ("system/Patient.r", {"read Patient"}),
        ("system/Patient.rs", {"read Patient", "search Patient"}),
        ("system/Patient.c", {"create Patient"}),
        ("system/Observation.rs", {"read Observation"}),
    ],
)
def test_v2_scopes_grant_exactly_their_letters(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens, unique: str,
    granted: str, allowed: set[str],
) -> None:  # fmt: skip
    """a SMART v2 scope allows the interactions of its letters on its type, and no other"""
    _check(fhir_client, anonymous_client, tokens, unique, granted, allowed)


@pytest.mark.requirement("auth@23")
@pytest.mark.parametrize(
    ("granted", "allowed"),
    [
        ("system/Patient.read", {"read Patient", "search Patient"}),
        ("system/Patient.write", {"create Patient"}),
        ("system/*.read", {"read Patient", "search Patient", "read Observation"}),
    ],
)
def test_v1_scopes_are_honoured(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens, unique: str,
    granted: str, allowed: set[str],
) -> None:  # fmt: skip
    """SMART v1 .read and .write scopes grant what their v2 equivalents grant"""
    _check(fhir_client, anonymous_client, tokens, unique, granted, allowed)


@pytest.mark.requirement("auth@30")
@pytest.mark.parametrize("attempt", ["read Patient", "search Patient", "create Patient"])
def test_a_missing_scope_is_403_insufficient_scope(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens, unique: str, attempt: str
) -> None:
    """an interaction the token's scopes do not grant is refused with 403 insufficient_scope"""
    subject, obs = _data(fhir_client, unique)
    _, method, path = _attempts(subject, obs, unique)[attempt]
    response = _attempt(anonymous_client, tokens.system("system/Observation.rs"), method, path, unique)
    assert response.status_code == 403, (
        f"{attempt} with a token of scope system/Observation.rs answered {shown(response)}; expected 403"
    )
    found = challenge(response)
    assert found is not None and found.get("error") == "insufficient_scope", (
        f"the 403 carries WWW-Authenticate {response.headers.get('www-authenticate')!r}; "
        'expected Bearer error="insufficient_scope" (RFC 6750 §3.1)'
    )
