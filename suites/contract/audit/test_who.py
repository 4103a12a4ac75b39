"""Who accessed, for what purpose: the agents and the purpose of use of an AuditEvent (audit@5, 6).

The lab knows who it is from its own tokens (their claims: person_id, subject_role, client_id,
purpose_of_use) and looks for exactly that in the AuditEvent of its access.
"""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.audit.support import (
    Tokens,
    agents,
    codes,
    identifies,
    one_event,
    purposes,
    since,
    trail,
    trail_reader,
)
from suites.contract.auth.support import claims_of
from suites.contract.fhir_toolkit import Resource, create, observation, patient, shown


def _read_by(
    fhir_client: EvidenceClient, tokens: Tokens, principal: str, unique: str
) -> tuple[Resource, dict[str, object]]:
    """The AuditEvent of one read by ``principal`` ("system" or a role) of a fresh observation, and the token's claims.

    For the plan's patient the observation is about the patient (their own data); otherwise about
    a patient the check creates."""
    if principal == "patient":
        owner = f"Patient/{tokens.user('patient').patient}"
    else:
        owner = f"Patient/{create(fhir_client, patient(unique))['id']}"
    obs = create(fhir_client, observation(unique, owner))
    started = since(obs)
    token = tokens.system() if principal == "system" else tokens.user(principal).access_token
    with tokens.client_for(principal) as client:
        response = client.get(f"Observation/{obs['id']}")
    assert response.status_code == 200, f"the {principal} reading Observation/{obs['id']} got {shown(response)}"
    found = trail(trail_reader(tokens, fhir_client), entity=f"Observation/{obs['id']}", date=f"ge{started}")
    reads = [e for e in found if e.get("action") == "R"]
    return one_event(reads, f"after one read of Observation/{obs['id']} by the {principal}"), claims_of(token)


@pytest.mark.requirement("audit@5")
def test_the_person_their_role_and_the_client_are_named(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str
) -> None:
    """a practitioner's read names the person (person_id) with the role as requestor, and the client"""
    event, claims = _read_by(fhir_client, tokens, "practitioner", unique)
    if not claims.get("person_id"):
        pytest.skip("the practitioner's token has no person_id (auth@21): the AuditEvent's agent cannot be compared")
    person_id, role, client_id = (str(claims.get(c)) for c in ("person_id", "subject_role", "client_id"))
    people = [a for a in agents(event) if identifies(a, person_id)]
    assert people, f"no agent of the AuditEvent identifies the practitioner by person_id {person_id}: {agents(event)}"
    person = people[0]
    assert person.get("requestor") is True, "the agent naming the practitioner is not marked requestor"
    assert role in codes(person.get("role") or [], person.get("type")), (
        f"the practitioner's agent has role/type codes {sorted(codes(person.get('role') or [], person.get('type')))}; "
        f"expected their subject_role {role!r}"
    )
    assert any(identifies(a, client_id) for a in agents(event)), (
        f"no agent of the AuditEvent names the client application {client_id}"
    )


@pytest.mark.requirement("audit@5")
def test_a_system_client_is_named_as_requestor(fhir_client: EvidenceClient, tokens: Tokens, unique: str) -> None:
    """a system client's read names the client application as the requestor"""
    event, claims = _read_by(fhir_client, tokens, "system", unique)
    client_id = str(claims.get("client_id"))
    named = [a for a in agents(event) if identifies(a, client_id)]
    assert named, f"no agent of the AuditEvent names the system client {client_id}: {agents(event)}"
    assert any(a.get("requestor") is True for a in named), (
        f"the agent naming the system client {client_id} is not marked requestor"
    )


@pytest.mark.requirement("audit@6")
@pytest.mark.parametrize("role", ["practitioner", "patient"])
def test_the_purpose_of_use_is_recorded(fhir_client: EvidenceClient, tokens: Tokens, unique: str, role: str) -> None:
    """the AuditEvent of an access carries the token's purpose_of_use as its purpose of event"""
    event, claims = _read_by(fhir_client, tokens, role, unique)
    purpose = claims.get("purpose_of_use")
    if not isinstance(purpose, str) or not purpose:
        pytest.skip(f"the {role}'s token has no purpose_of_use (auth@21): nothing to compare the AuditEvent with")
    assert purpose in purposes(event), (
        f"the AuditEvent of the {role}'s read has purposes {sorted(purposes(event))}; expected {purpose} "
        "(purposeOfEvent or agent.purposeOfUse)"
    )
