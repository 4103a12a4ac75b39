"""A patient's access log holds that patient's accesses and nothing else (audit@12, audit@13).

A search over two patients' data must leave one AuditEvent per patient (IHE BALP, Patient Query),
each naming that patient alone; and no client can write an AuditEvent of its own into anyone's log.
"""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.audit.support import Tokens, describe, queries, references, since, trail, trail_reader
from suites.contract.fhir_toolkit import create, entries, observation, patient, scope, search, shown


@pytest.mark.requirement("audit@12")
def test_a_search_over_two_patients_leaves_each_their_own_event(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str
) -> None:
    """a search returning two patients' observations leaves one AuditEvent per patient, naming that patient alone"""
    first, second = (create(fhir_client, patient(unique, family)) for family in ("Thill", "Reuter"))
    for subject in (first, second):
        create(fhir_client, observation(unique, f"Patient/{subject['id']}"))
    started = since(first)
    found = entries(search(fhir_client, "Observation", {"identifier": scope(unique)}))
    assert len(found) == 2, f"the search for the check's two observations found {len(found)}"
    reader = trail_reader(tokens, fhir_client)
    for mine, theirs in ((first, second), (second, first)):
        log = trail(reader, patient=f"Patient/{mine['id']}", date=f"ge{started}")
        ours = [e for e in log if any(unique in q for q in queries(e))]
        assert ours, (
            f"Patient/{mine['id']}'s log holds no AuditEvent of the search that returned their observation "
            f"({describe(log)})"
        )
        naming_other = [e for e in ours if f"Patient/{theirs['id']}" in references(e)]
        assert not naming_other, (
            f"Patient/{mine['id']}'s log shows the search's AuditEvent naming another patient, Patient/{theirs['id']} "
            f"({describe(naming_other)}): write one AuditEvent per patient, each naming that patient alone (BALP)"
        )


@pytest.mark.requirement("audit@13")
@pytest.mark.parametrize("who", ["patient", "system"])
def test_no_client_writes_an_audit_event(fhir_client: EvidenceClient, tokens: Tokens, unique: str, who: str) -> None:
    """a client's POST of an AuditEvent naming a patient is refused with 403 and shows in no log"""
    victim = create(fhir_client, patient(unique))
    fake = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "action": "R",
        "recorded": "2026-01-01T00:00:00Z",
        "outcome": "0",
        "outcomeDesc": f"forged by {unique}",
        "agent": [{"who": {"display": "Dr Nobody"}, "requestor": True}],
        "source": {"observer": {"display": "a client"}},
        "entity": [{"what": {"reference": f"Patient/{victim['id']}"}}],
    }
    with tokens.client_for(who) as client:
        response = client.post("AuditEvent", json=fake)
    log = trail(trail_reader(tokens, fhir_client), patient=f"Patient/{victim['id']}")
    forged = [e for e in log if unique in str(e.get("outcomeDesc", ""))]
    assert response.status_code == 403 and not forged, (
        f"the {who} token's POST AuditEvent naming Patient/{victim['id']} answered {shown(response)}"
        f"{' and now shows in their access log' if forged else ''}; expected 403: only the platform writes AuditEvents"
    )
