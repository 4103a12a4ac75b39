from __future__ import annotations

import pytest

from reference_impl.fhir.fhirpath import UnsupportedExpression, compile_for_type, evaluate, reference_type
from reference_impl.fhir.structure import structure


def values(expression: str, resource: dict[str, object]) -> list[tuple[object, str]]:
    paths = compile_for_type(expression, str(resource["resourceType"]))
    return [(n.value, n.type_name) for n in evaluate(paths, resource, structure())]


def test_choice_elements_resolve_by_type() -> None:
    obs = {"resourceType": "Observation", "effectivePeriod": {"start": "2020"}, "valueQuantity": {"value": 1}}
    assert values("Observation.effective", obs) == [({"start": "2020"}, "Period")]
    assert values("(Observation.value as Quantity)", obs) == [({"value": 1}, "Quantity")]
    assert values("(Observation.value as CodeableConcept)", obs) == []


def test_union_keeps_only_parts_for_the_type() -> None:
    expression = "Patient.birthDate | Person.birthDate | RelatedPerson.birthDate"
    assert values(expression, {"resourceType": "Patient", "birthDate": "1980"}) == [("1980", "date")]


def test_where_resolve_is_filters_references_by_target_type() -> None:
    resource = {"resourceType": "Observation", "subject": {"reference": "Group/1"}}
    assert values("Observation.subject.where(resolve() is Patient)", resource) == []
    resource["subject"] = {"reference": "http://other/fhir/Patient/7/_history/2"}
    assert len(values("Observation.subject.where(resolve() is Patient)", resource)) == 1


def test_where_equals_and_backbone_paths() -> None:
    patient = {
        "resourceType": "Patient",
        "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}],
    }
    assert values("Patient.telecom.where(system='email')", patient) == [
        ({"system": "email", "value": "a@b"}, "ContactPoint")
    ]
    bundle = {"resourceType": "Bundle", "entry": [{"request": {"method": "POST"}}]}
    assert values("Bundle.entry.request.method", bundle) == [("POST", "code")]


def test_content_reference_elements_recurse() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "item": [{"linkId": "1", "item": [{"linkId": "1.1", "code": [{"code": "x"}]}]}],
    }
    assert values("Questionnaire.item.code", questionnaire) == []
    paths = compile_for_type("Questionnaire.item.item.code", "Questionnaire")
    assert [n.value for n in evaluate(paths, questionnaire, structure())] == [{"code": "x"}]


def test_exists() -> None:
    assert values("Patient.deceased.exists()", {"resourceType": "Patient", "deceasedBoolean": False}) == [
        (True, "boolean")
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.name.select(given)",
        "Patient.deceased.exists() and Patient.deceased != false",
        "Bundle.entry[0].resource",
        "Observation.value as",
    ],
)
def test_unsupported_expressions_are_refused(expression: str) -> None:
    with pytest.raises(UnsupportedExpression):
        compile_for_type(expression, expression.split(".", maxsplit=1)[0])


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ({"reference": "Patient/1"}, "Patient"),
        ({"reference": "urn:uuid:1"}, None),
        ({"reference": "#c1"}, None),
        ({"type": "Device"}, "Device"),
        ("Patient/1", None),
    ],
)
def test_reference_type(reference: object, expected: str | None) -> None:
    assert reference_type(reference) == expected
