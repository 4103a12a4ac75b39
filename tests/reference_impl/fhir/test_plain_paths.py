"""Plain child paths are followed without the general evaluator: both must select the same values,
for every search parameter of every official example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference_impl.fhir.fhirpath import evaluate, follow, plain_path
from reference_impl.fhir.searchparams import registry
from tests.support.paths import FIXTURES

EXAMPLES = sorted((FIXTURES / "r4-examples").glob("*.json"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_parameter_selects_what_the_general_evaluator_selects(example: Path) -> None:
    resource = json.loads(example.read_text())
    params = registry().for_type(resource["resourceType"])
    selected = [code for code, param in params.items() if registry().selected(resource, param)]
    assert selected or not params, "the example exercises some parameters"
    for param in params.values():
        assert registry().selected(resource, param) == evaluate(list(param.paths), resource, registry().structure)


def test_most_parameters_take_the_shortcut_and_the_others_do_not() -> None:
    structure = registry().structure
    params = registry().for_type("Observation")
    plain = {code for code, p in params.items() if all(plain_path(x, "Observation", structure) for x in p.paths)}
    assert {"code", "category", "status", "identifier", "performer"} <= plain
    assert "patient" in plain  # subject.where(resolve() is Patient): a plain path ending with a type filter
    assert "value-quantity" not in plain  # a choice element (value[x])


def test_a_plain_path_ending_with_resolve_is_keeps_only_references_to_that_type() -> None:
    structure = registry().structure
    (path,) = registry().get("Observation", "patient").paths  # type: ignore[union-attr]
    plain = plain_path(path, "Observation", structure)
    assert plain is not None and plain.keys == ("subject",) and plain.resolves_to == "Patient"
    subjects = [
        {"reference": "Patient/p1"},
        {"reference": "Group/g1"},
        {"reference": "https://other.example/fhir/Patient/p2/_history/3"},
        {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
        {"reference": "#contained"},
        {"type": "Patient", "identifier": {"value": "x"}},
        {"display": "nobody"},
    ]
    for subject in subjects:
        observation = {"resourceType": "Observation", "status": "final", "subject": subject}
        followed = [n.value for n in follow(plain, observation)]
        assert followed == [n.value for n in evaluate([path], observation, structure)], subject
    kept = [s for s in subjects if follow(plain, {"resourceType": "Observation", "subject": s})]
    assert kept == [subjects[0], subjects[2], subjects[5]]


def test_a_plain_path_follows_lists_and_skips_what_is_absent() -> None:
    structure = registry().structure
    (path,) = registry().get("Patient", "given").paths  # type: ignore[union-attr]
    plain = plain_path(path, "Patient", structure)
    assert plain is not None and plain.keys == ("name", "given")
    patient = {"resourceType": "Patient", "name": [{"given": ["Anne", "Marie"]}, {"family": "Weber"}, {"given": None}]}
    assert [n.value for n in follow(plain, patient)] == ["Anne", "Marie"]
    assert [n.value for n in follow(plain, patient)] == [n.value for n in evaluate([path], patient, structure)]


def test_audit_events_are_indexed_only_by_what_the_access_log_is_searched_by() -> None:
    offered = set(registry().for_type("AuditEvent"))
    assert {"patient", "agent", "entity", "date", "outcome", "_security"} <= offered
    assert not {"address", "site", "policy", "entity-type", "entity-role"} & offered
    event = json.loads((FIXTURES / "r4-examples" / "AuditEvent-example.json").read_text())
    indexed = {code for rows in registry().index_rows(event).values() for code, _ in rows}
    assert indexed <= offered and "address" not in indexed
