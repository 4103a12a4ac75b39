"""A successful access is logged for the patients whose data it touched, read off the versions it
touched: for a current version, exactly the patients the search index holds for it."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import Mock

from reference_impl.audit.access import CompartmentMemory, patients_by_resource, patients_in_bodies
from reference_impl.fhir.searchparams import registry
from reference_impl.fhir.structure import patient_compartment
from reference_impl.store import resources as store
from reference_impl.store.database import Database
from reference_impl.store.resources import StoredResource
from tests.support.paths import FIXTURES

SUBJECTS: list[dict[str, Any]] = [
    {"reference": "Patient/p1"},
    {"reference": "Group/g1"},
    {"reference": "https://other.example/fhir/Patient/p2/_history/3"},
    {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
    {"reference": "#contained"},
    {"type": "Patient", "identifier": {"system": "urn:x", "value": "x"}},
    {"display": "nobody"},
]


def _resources() -> list[dict[str, Any]]:
    """Every official example of a type in the patient compartment (and Patients), and references of
    every shape, to one patient or several (subject and performer)."""
    compartment = patient_compartment()
    examples = [json.loads(p.read_text()) for p in sorted((FIXTURES / "r4-examples").glob("*.json"))]
    found = [r for r in examples if r["resourceType"] in compartment or r["resourceType"] == "Patient"]
    found += [{"resourceType": "Observation", "status": "final", "subject": s} for s in SUBJECTS]
    found.append(
        {
            "resourceType": "Observation",
            "status": "final",
            "subject": {"reference": "Patient/p3"},
            "performer": [{"reference": "Patient/p4"}, {"reference": "Practitioner/d1"}],
        }
    )
    return found


def test_the_patients_read_off_current_versions_are_those_the_index_holds(platform_db: Database) -> None:
    resources = _resources()
    stored = platform_db.run(
        lambda conn: [store.save(conn, registry(), r, f"r{n}", None, "POST") for n, r in enumerate(resources)],
        write=True,
    )
    keys = tuple((s.type_name, s.id) for s in stored)
    indexed = platform_db.run(lambda conn: patients_by_resource(conn, keys), write=False)
    assert patients_in_bodies(CompartmentMemory(registry()), stored) == indexed
    others = [s for s in stored if s.type_name != "Patient"]  # the access policy's view (a patient token)
    assert {(s.type_name, s.id): registry().compartment_patients(s.parsed()) for s in others} == {
        (s.type_name, s.id): indexed.get((s.type_name, s.id), set()) for s in others
    }
    named = {key for key, patients in indexed.items() if patients and key[0] != "Patient"}
    assert len(named) >= 20, "many examples are some patient's data"
    assert indexed[("Observation", f"r{len(resources) - 1}")] == {"Patient/p3", "Patient/p4"}


def test_each_version_is_logged_for_its_own_patient_and_a_deletion_for_none(platform_db: Database) -> None:
    def versions(conn: Any) -> list[StoredResource]:
        first = store.save(
            conn, registry(), {"resourceType": "Observation", "status": "final", **_about("p1")}, "o", None, "POST"
        )
        second = store.save(
            conn, registry(), {"resourceType": "Observation", "status": "final", **_about("p2")}, "o", first, "PUT"
        )
        return [first, second, store.mark_deleted(conn, second)]

    first, second, deleted = platform_db.run(versions, write=True)
    memory = CompartmentMemory(registry())  # one per server: the versions are told apart
    assert patients_in_bodies(memory, [first]) == {("Observation", "o"): {"Patient/p1"}}
    assert patients_in_bodies(memory, [second]) == {("Observation", "o"): {"Patient/p2"}}
    assert patients_in_bodies(memory, [deleted]) == {}
    assert patients_in_bodies(memory, [first, second]) == {("Observation", "o"): {"Patient/p1", "Patient/p2"}}


def _about(patient: str) -> dict[str, Any]:
    return {"subject": {"reference": f"Patient/{patient}"}}


def test_a_version_is_read_once_and_a_version_overwritten_in_place_again(platform_db: Database) -> None:
    def versions(conn: Any) -> list[StoredResource]:
        first = store.save(
            conn, registry(), {"resourceType": "Observation", "status": "final", **_about("p1")}, "o", None, "POST"
        )
        # The fault version-not-incremented: version 1 again, written at a later instant.
        again = store.save(
            conn,
            registry(),
            {"resourceType": "Observation", "status": "final", **_about("p2")},
            "o",
            first,
            "PUT",
            reuse_version=True,
        )
        other = store.save(
            conn, registry(), {"resourceType": "Observation", "status": "final", **_about("p3")}, "x", None, "POST"
        )
        return [first, again, other]

    first, again, other = platform_db.run(versions, write=True)
    assert again.version_id == first.version_id
    params = Mock(wraps=registry())
    memory = CompartmentMemory(params, size=2)
    assert memory.patients(first) == memory.patients(first) == ("Patient/p1",)
    assert params.compartment_patients.call_count == 1, "the version's patients are remembered"
    assert memory.patients(other) == ("Patient/p3",)
    assert memory.patients(first) == ("Patient/p1",)
    assert memory.patients(again) == ("Patient/p2",), "a version overwritten in place is read again"
    assert params.compartment_patients.call_count == 3
    assert len(memory) == 2
    assert memory.patients(first) == ("Patient/p1",)
    assert params.compartment_patients.call_count == 3, "used lately: still remembered"
    assert memory.patients(other) == ("Patient/p3",)
    assert params.compartment_patients.call_count == 4, "the least recently used was forgotten"
