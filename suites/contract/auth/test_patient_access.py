"""A patient's token reaches the patient's own record only, and learns nothing about others (auth@31, 32).

The other patient is one the check creates with the plan's system token, so that the data a
patient must not see surely exists; "nobody" is an id no resource has.
"""

from __future__ import annotations

import re

import httpx
import pytest

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import Tokens
from suites.contract.fhir_toolkit import Resource, create, observation, patient, shown


def _someone_else(fhir_client: EvidenceClient, unique: str) -> tuple[Resource, Resource]:
    other = create(fhir_client, patient(unique, "Someone-Else"))
    return other, create(fhir_client, observation(unique, f"Patient/{other['id']}"))


@pytest.mark.requirement("auth@31")
def test_a_patient_token_reads_the_own_record(tokens: Tokens) -> None:
    """a patient's token reads the patient's own Patient resource (200)"""
    own = tokens.user("patient").patient
    assert own, "the patient's token response names no patient (SMART launch context)"
    with tokens.client_for("patient") as client:
        response = client.get(f"Patient/{own}")
    assert response.status_code == 200, f"the patient reading the own Patient/{own} got {shown(response)}"


@pytest.mark.requirement("auth@31")
@pytest.mark.parametrize("attempt", ["read Patient", "read Observation", "search Observation", "write Observation"])
def test_a_patient_token_cannot_reach_another_patient(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str, attempt: str
) -> None:
    """a patient's token reading, searching or writing another patient's data is refused with 403"""
    other, obs = _someone_else(fhir_client, unique)
    with tokens.client_for("patient") as client:
        if attempt == "read Patient":
            response = client.get(f"Patient/{other['id']}")
        elif attempt == "read Observation":
            response = client.get(f"Observation/{obs['id']}")
        elif attempt == "search Observation":
            response = client.get("Observation", params={"subject": f"Patient/{other['id']}"})
        else:
            response = client.post("Observation", json=observation(unique, f"Patient/{other['id']}"))
    leaked = response.status_code < 300 and (other["id"] in response.text or obs["id"] in response.text)
    assert response.status_code == 403, (
        f"the patient's token, {attempt} of another patient, got {shown(response)}"
        f"{' (with their data)' if leaked else ''}; expected 403"
    )


def _comparable(response: httpx.Response, requested_id: str) -> tuple[int, str, str]:
    """Status, challenge and body with the requested id blanked (the only difference allowed)."""

    def blank(text: str) -> str:
        return re.sub(re.escape(requested_id), "<id>", text)

    return response.status_code, blank(response.headers.get("www-authenticate", "")), blank(response.text)


@pytest.mark.requirement("auth@32")
@pytest.mark.parametrize("type_name", ["Patient", "Observation"])
def test_someone_elses_record_and_no_record_are_refused_alike(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str, type_name: str
) -> None:
    """for a patient's token, another patient's record and a missing record get the same refusal"""
    other, obs = _someone_else(fhir_client, unique)
    existing = other["id"] if type_name == "Patient" else obs["id"]
    missing = f"{unique}-nobody"
    with tokens.client_for("patient") as client:
        theirs = client.get(f"{type_name}/{existing}")
        nobodys = client.get(f"{type_name}/{missing}")
    assert theirs.status_code == 403, f"another patient's {type_name}/{existing} answered {shown(theirs)}; expected 403"
    assert _comparable(theirs, existing) == _comparable(nobodys, missing), (
        f"a patient's token tells another patient's {type_name} from a missing one: {shown(theirs)} versus "
        f"{shown(nobodys)} (SPEC §2: 404 and 403 must not leak whether the record exists)"
    )
