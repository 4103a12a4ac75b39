"""Patient $merge (mpi@20-25): two records of the check's own person, one with an Encounter, an
Observation and a DocumentReference, merged; then what the merge must have done, looked at through the
API: the records, searches, PIXm, the re-pointed resources and the audit trail."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx
import pytest

from eqlab.checks import EvidenceClient
from suites.contract.audit.support import Tokens, codes, describe, since, trail, trail_reader
from suites.contract.fhir_toolkit import Resource, body_of, create, ids, observation, read, search, shown, tag
from suites.contract.mpi.support import (
    assert_error,
    cross_references,
    fed,
    identifier_values,
    matricule,
    national,
    person,
    pix,
    register_institution,
)


@dataclass
class Duplicate:
    """The source and target records of one person (two institutions) and the source's documents."""

    source_system: str
    source: Resource
    target: Resource
    referring: list[Resource]

    @property
    def source_ref(self) -> str:
        return f"Patient/{self.source['id']}"

    @property
    def target_ref(self) -> str:
        return f"Patient/{self.target['id']}"


def duplicate(client: EvidenceClient, unique: str) -> Duplicate:
    source_system, target_system = register_institution(client, unique), register_institution(client, unique)
    source = fed(client, person(unique, source_system, "M-1", national(matricule())), source_system, "M-1")
    target = fed(client, person(unique, target_system, "N-1", national(matricule())), target_system, "N-1")
    subject = {"reference": f"Patient/{source['id']}"}
    encounter = {
        "resourceType": "Encounter",
        "identifier": [tag(unique)],
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": subject,
    }
    document = {
        "resourceType": "DocumentReference",
        "identifier": [tag(unique)],
        "status": "current",
        "type": {"coding": [{"system": "urn:oid:1.3.182.6.1", "code": "DISCHARGE"}]},  # a DSP document type (SPEC §5)
        "subject": subject,
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(b"letter").decode()}}],
    }
    referring = [create(client, r) for r in (encounter, observation(unique, subject["reference"]), document)]
    return Duplicate(source_system, source, target, referring)


def merge_parameters(source: dict[str, object], target: dict[str, object]) -> Resource:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "source-patient", **source}, {"name": "target-patient", **target}],
    }


def by_ref(reference: str) -> dict[str, object]:
    return {"valueReference": {"reference": reference}}


def merge(client: EvidenceClient, parameters: Resource) -> httpx.Response:
    return client.post("Patient/$merge", json=parameters)


def merged(client: EvidenceClient, unique: str) -> tuple[Duplicate, Resource]:
    """A duplicate merged by reference; (the duplicate, the merge's Parameters answer)."""
    found = duplicate(client, unique)
    response = merge(
        client,
        merge_parameters(by_ref(found.source_ref), by_ref(found.target_ref)),
    )
    assert response.status_code == 200, (
        f"POST Patient/$merge of {found.source_ref} into {found.target_ref} answered {shown(response)}; expected 200"
    )
    return found, body_of(response, "the $merge answer")


def links(patient: Resource) -> set[tuple[str, str]]:
    return {
        (str(link.get("type")), str((link.get("other") or {}).get("reference", "")).rsplit("/_history", 1)[0])
        for link in patient.get("link") or []
        if isinstance(link, dict)
    }


@pytest.mark.requirement("mpi@20")
def test_the_source_is_retired_and_linked_to_the_target(fhir_client: EvidenceClient, unique: str) -> None:
    """after $merge: source active=false replaced-by target, target replaces source, result = target"""
    found, answer = merged(fhir_client, unique)
    results = [p.get("resource") for p in answer.get("parameter") or [] if p.get("name") == "result"]
    assert results and isinstance(results[0], dict) and results[0].get("id") == found.target["id"], (
        f"the $merge answer's result parameter is {results[:1]}; expected the target {found.target_ref}"
    )
    source, target = read(fhir_client, "Patient", found.source["id"]), read(fhir_client, "Patient", found.target["id"])
    problems = []
    if source.get("active") is not False:
        problems.append(f"the source {found.source_ref} has active={source.get('active')!r}, expected false")
    if not any(t == "replaced-by" and r.endswith(found.target_ref) for t, r in links(source)):
        problems.append(f"the source's links are {sorted(links(source))}, expected replaced-by {found.target_ref}")
    if not any(t == "replaces" and r.endswith(found.source_ref) for t, r in links(target)):
        problems.append(f"the target's links are {sorted(links(target))}, expected replaces {found.source_ref}")
    assert not problems, "after the merge: " + "; ".join(problems)


@pytest.mark.requirement("mpi@21")
def test_the_sources_identifiers_find_the_survivor(fhir_client: EvidenceClient, unique: str) -> None:
    """after $merge, a search by the source's local id and matricule finds the target"""
    found, _ = merged(fhir_client, unique)
    for identifier in [i for i in found.source["identifier"] if i.get("system") != "urn:eqlab:contract"]:
        query = f"{identifier['system']}|{identifier['value']}"
        hits = ids(search(fhir_client, "Patient", {"identifier": query}))
        assert found.target["id"] in hits, (
            f"after merging {found.source_ref} into {found.target_ref}, Patient?identifier={query} (an identifier "
            f"of the source) found {hits}; expected the surviving {found.target_ref} among them"
        )


@pytest.mark.requirement("mpi@22")
def test_pixm_on_the_old_local_id_answers_the_survivor(fhir_client: EvidenceClient, unique: str) -> None:
    """after $merge, $ihe-pix on the source's local identifier answers the target"""
    found, _ = merged(fhir_client, unique)
    source = f"{found.source_system}|M-1"
    _, records = cross_references(pix(fhir_client, source), f"$ihe-pix?sourceIdentifier={source} after the merge")
    assert found.target_ref in records and found.source_ref not in records, (
        f"after merging {found.source_ref} into {found.target_ref}, $ihe-pix on the source's local id {source} "
        f"answered the records {sorted(records)}; expected the survivor {found.target_ref} (not the retired source)"
    )


@pytest.mark.requirement("mpi@23")
def test_what_referenced_the_source_now_references_the_target(fhir_client: EvidenceClient, unique: str) -> None:
    """after $merge, the source's Encounter, Observation and DocumentReference reference the target"""
    found, _ = merged(fhir_client, unique)
    problems = []
    for before in found.referring:
        after = read(fhir_client, before["resourceType"], before["id"])
        subject = str((after.get("subject") or {}).get("reference", ""))
        where = f"{before['resourceType']}/{before['id']}"
        if not subject.endswith(found.target_ref):
            problems.append(f"{where}.subject is {subject!r}, expected {found.target_ref}")
        elif (after.get("meta") or {}).get("versionId") == (before.get("meta") or {}).get("versionId"):
            problems.append(f"{where} was changed without a new version (meta.versionId unchanged)")
    assert not problems, f"after merging {found.source_ref} into {found.target_ref}: " + "; ".join(problems)


@pytest.mark.requirement("mpi@24")
def test_impossible_merges_are_refused_and_change_nothing(fhir_client: EvidenceClient, unique: str) -> None:
    """merging into an inactive patient or into itself is 422, an unknown patient 404; nothing changes"""
    found, _ = merged(fhir_client, unique)
    other = duplicate(fhir_client, unique)
    cases = [
        (
            merge_parameters(by_ref(other.source_ref), by_ref(found.source_ref)),
            422,
            "into an inactive (merged) patient",
        ),
        (merge_parameters(by_ref(other.source_ref), by_ref(other.source_ref)), 422, "of a patient into itself"),
        (merge_parameters(by_ref(other.source_ref), by_ref(f"Patient/{unique}-none")), 404, "into an unknown patient"),
        (merge_parameters(by_ref(f"Patient/{unique}-none"), by_ref(other.target_ref)), 404, "of an unknown patient"),
        (
            merge_parameters(
                {"valueIdentifier": {"system": other.source_system, "value": "NOBODY"}}, by_ref(other.target_ref)
            ),
            404,
            "of a patient no one has the identifier of",
        ),
    ]
    for parameters, status, what in cases:
        assert_error(merge(fhir_client, parameters), status, f"POST Patient/$merge {what}")
    after = read(fhir_client, "Patient", other.source["id"])
    assert after.get("meta", {}).get("versionId") == other.source.get("meta", {}).get("versionId"), (
        f"refused merges changed {other.source_ref} (now version {after.get('meta', {}).get('versionId')})"
    )


@pytest.mark.requirement("mpi@25")
def test_a_merge_is_audited(fhir_client: EvidenceClient, tokens: Tokens, unique: str) -> None:
    """after $merge, an AuditEvent about the surviving patient names the merge"""
    found, _ = merged(fhir_client, unique)
    started = since(found.target)
    events = trail(trail_reader(tokens, fhir_client), patient=found.target_ref, date=f"ge{started}")

    def names_merge(event: Resource) -> bool:
        words = [*codes(event.get("type"), event.get("subtype") or []), str(event.get("outcomeDesc", ""))]
        words += [
            str(entity.get("description", "")) for entity in event.get("entity") or [] if isinstance(entity, dict)
        ]
        return any("merge" in word.lower() for word in words)

    assert any(names_merge(e) for e in events), (
        f"no AuditEvent about {found.target_ref} since {started} names the merge (in its type, subtype, outcomeDesc "
        f"or an entity's description); found: {describe(events)}"
    )


@pytest.mark.requirement("mpi@20")
def test_patients_can_be_named_by_identifier(fhir_client: EvidenceClient, unique: str) -> None:
    """$merge accepts source-patient and target-patient as valueIdentifier"""
    found = duplicate(fhir_client, unique)
    target_local = next(i for i in found.target["identifier"] if i.get("value") == "N-1")
    parameters = merge_parameters(
        {"valueIdentifier": {"system": found.source_system, "value": "M-1"}},
        {"valueIdentifier": {"system": target_local["system"], "value": "N-1"}},
    )
    response = merge(fhir_client, parameters)
    assert response.status_code == 200, f"POST Patient/$merge by identifiers answered {shown(response)}; expected 200"
    source = read(fhir_client, "Patient", found.source["id"])
    assert source.get("active") is False, (
        f"after a merge naming the patients by identifier, the source has active={source.get('active')!r}"
    )
    assert identifier_values(source, "urn:oid:1.3.182.4.4"), "the source lost its matricule"
