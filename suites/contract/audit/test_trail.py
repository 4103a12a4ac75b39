"""Every access to patient data leaves exactly one AuditEvent: reads, searches, writes, refusals
(audit@1-4).

Each check creates a patient and an observation of its own with the plan's system token, accesses
them, and reads the AuditEvents about them (``entity`` or ``patient`` search from the start time).
"""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.audit.support import (
    FAILURES,
    Tokens,
    codes,
    describe,
    one_event,
    queries,
    references,
    shape_problems,
    since,
    trail,
    trail_reader,
)
from suites.contract.fhir_toolkit import JSON_PATCH, Resource, create, observation, patient, read, scope, search, shown


def _data(fhir_client: EvidenceClient, unique: str) -> tuple[str, Resource, str]:
    """(the patient's reference, an observation about them, the start time)."""
    subject = create(fhir_client, patient(unique))
    return (
        f"Patient/{subject['id']}",
        create(fhir_client, observation(unique, f"Patient/{subject['id']}")),
        since(subject),
    )


@pytest.mark.requirement("audit@1")
@pytest.mark.parametrize("interaction", ["read", "vread"])
def test_a_read_leaves_one_audit_event(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str, interaction: str
) -> None:
    """a read of patient data is recorded by exactly one AuditEvent (action R) naming patient and resource"""
    subject, obs, started = _data(fhir_client, unique)
    target = f"Observation/{obs['id']}" + ("/_history/1" if interaction == "vread" else "")
    response = fhir_client.get(target)
    assert response.status_code == 200, f"{interaction} of {target} (the access to audit) answered {shown(response)}"
    found = trail(trail_reader(tokens, fhir_client), entity=f"Observation/{obs['id']}", date=f"ge{started}")
    event = one_event(
        [e for e in found if e.get("action") == "R"], f"after one {interaction} of Observation/{obs['id']}"
    )
    problems = shape_problems(event, "R", ("0",), started)
    if interaction not in codes(event.get("subtype")):
        problems.append(f"subtype is {sorted(codes(event.get('subtype')))}, expected the interaction {interaction}")
    if not {subject, f"Observation/{obs['id']}"} <= references(event):
        problems.append(f"its entities are {sorted(references(event))}, expected {subject} and Observation/{obs['id']}")
    assert not problems, f"the AuditEvent of a {interaction}: " + "; ".join(problems)


@pytest.mark.requirement("audit@2")
def test_a_search_leaves_one_audit_event_with_its_query(
    fhir_client: EvidenceClient, tokens: Tokens, unique: str
) -> None:
    """a search of patient data is recorded by exactly one AuditEvent (action E) with the query and the patient"""
    subject, _, started = _data(fhir_client, unique)
    search(fhir_client, "Observation", {"identifier": scope(unique)})
    found = trail(trail_reader(tokens, fhir_client), patient=subject, date=f"ge{started}")
    ours = [e for e in found if e.get("action") == "E" and any(unique in q for q in queries(e))]
    event = one_event(ours, "after one search of Observation?identifier=... (an entity.query naming it)")
    problems = shape_problems(event, "E", ("0",), started)
    if not codes(event.get("subtype")) & {"search-type", "search"}:
        problems.append(f"subtype is {sorted(codes(event.get('subtype')))}, expected search-type")
    if subject not in references(event):
        problems.append(f"its entities are {sorted(references(event))}, expected the patient {subject}")
    assert not problems, "the AuditEvent of a search: " + "; ".join(problems)


@pytest.mark.requirement("audit@3")
def test_each_write_leaves_one_audit_event(fhir_client: EvidenceClient, tokens: Tokens, unique: str) -> None:
    """create, update, patch and delete of patient data are each recorded by one AuditEvent (C, U, U, D)"""
    subject, obs, started = _data(fhir_client, unique)
    where = f"Observation/{obs['id']}"
    changed = fhir_client.put(where, json={**obs, "status": "amended"})
    assert changed.status_code == 200, f"updating {where} answered {shown(changed)}"
    patch = b'[{"op": "replace", "path": "/status", "value": "corrected"}]'
    patched = fhir_client.patch(where, content=patch, headers={"Content-Type": JSON_PATCH})
    assert patched.status_code == 200, f"patching {where} answered {shown(patched)}"
    read(fhir_client, "Observation", obs["id"])
    deleted = fhir_client.delete(where)
    assert deleted.status_code in (200, 204), f"deleting {where} answered {shown(deleted)}"
    found = trail(trail_reader(tokens, fhir_client), entity=where, date=f"ge{started}")
    writes = [e for e in found if e.get("action") in ("C", "U", "D")]
    actions = sorted(str(e.get("action")) for e in writes)
    assert actions == ["C", "D", "U", "U"], (
        f"after create, update, patch and delete of {where} the AuditEvents about it are {describe(writes)}; "
        "expected exactly one per write: C, U, U, D"
    )
    problems = [p for e in writes for p in shape_problems(e, str(e.get("action")), ("0",), started)]
    # Every write names the patient whose data it wrote, the delete too (audit@3: the patient and the
    # resource as entities): a deletion belongs in that patient's access log.
    problems += [
        f"the {e.get('action')} event names {sorted(references(e))}, not the patient {subject}"
        for e in writes
        if subject not in references(e)
    ]
    assert not problems, "the AuditEvents of the writes: " + "; ".join(problems)


@pytest.mark.requirement("audit@4")
def test_refused_attempts_leave_failure_events(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens, unique: str
) -> None:
    """each refused attempt (no token: 401; scope or compartment: 403) is one failure AuditEvent naming the patient"""
    subject, _, started = _data(fhir_client, unique)
    attempts = {"without a token": anonymous_client.get(subject)}
    with tokens.client_for("patient") as a_patient:  # the plan's patient is not this one
        attempts["with another patient's token"] = a_patient.get(subject)
    narrow = tokens.system("system/Observation.rs")
    attempts["with a token lacking the scope"] = anonymous_client.get(
        subject, headers={"Authorization": f"Bearer {narrow}"}
    )
    # Whether they should have been refused is for auth@24, 30, 31: here only what was refused counts.
    refused = [what for what, r in attempts.items() if r.status_code in (401, 403)]
    if not refused:
        pytest.skip(f"none of the attempts at {subject} was refused, so no refusal could be audited")
    found = trail(trail_reader(tokens, fhir_client), patient=subject, date=f"ge{started}")
    failures = [e for e in found if e.get("outcome") in FAILURES]
    assert len(failures) == len(refused), (
        f"after {len(refused)} refused attempts at {subject} ({', '.join(refused)}) the trail holds "
        f"{len(failures)} failure AuditEvents about the patient: {describe(failures)}"
    )
    problems = [p for e in failures for p in shape_problems(e, str(e.get("action")), FAILURES, started)]
    assert not problems, "the AuditEvents of the refused attempts: " + "; ".join(problems)
