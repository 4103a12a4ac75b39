from __future__ import annotations

import pytest

from reference_impl.fhir.errors import FhirError
from reference_impl.fhir.indexing import normalize, split_reference
from reference_impl.fhir.query import QueryParser
from reference_impl.fhir.searchparams import registry


def parser() -> QueryParser:
    return QueryParser(registry(), 50, 1000, "http://host/fhir")


def test_normalize_folds_case_accents_and_spaces() -> None:
    assert normalize("  Müller-Lüdenscheidt  Ørsted ") == "muller-ludenscheidt ørsted"
    assert normalize("ÉLOÏSE") == "eloise"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("Patient/1", ("Patient", "1")),
        ("http://x/fhir/Patient/1/_history/3", ("Patient", "1")),
        ("urn:uuid:abc", (None, None)),
        ("abc", (None, None)),
    ],
)
def test_split_reference(ref: str, expected: tuple[str | None, str | None]) -> None:
    assert split_reference(ref) == expected


def test_prefixes_only_on_ordered_types() -> None:
    request = parser().parse("Patient", [("birthdate", "ge2020"), ("family", "eq")], strict=True)
    date, family = request.criteria
    assert date.values[0].prefix == "ge"  # type: ignore[union-attr]
    assert family.values[0].raw == "eq"  # type: ignore[union-attr]


def test_escaped_comma_is_a_literal() -> None:
    request = parser().parse("Patient", [("family", r"a\,b,c")], strict=True)
    assert [v.raw for v in request.criteria[0].values] == ["a,b", "c"]  # type: ignore[union-attr]


def test_local_absolute_reference_becomes_relative() -> None:
    request = parser().parse("Observation", [("subject", "http://host/fhir/Patient/9")], strict=True)
    value = request.criteria[0].values[0]  # type: ignore[union-attr]
    assert (value.ref_type, value.code, value.system) == ("Patient", "9", None)
    foreign = parser().parse("Observation", [("subject", "http://elsewhere/fhir/Patient/9")], strict=True)
    assert foreign.criteria[0].values[0].system == "http://elsewhere/fhir/Patient/9"  # type: ignore[union-attr]


def test_count_is_capped_and_flagged() -> None:
    request = parser().parse("Patient", [("_count", "5000")], strict=True)
    assert request.count == 1000 and request.count_capped


def test_chain_over_several_target_types_matches_any_of_them() -> None:
    (criterion,) = (
        parser().parse("MedicationRequest", [("patient.identifier", "urn:oid:1.3.182.4.4|1")], strict=True).criteria
    )
    assert {target for target, _ in criterion.chains} == {"Patient", "Group"}  # type: ignore[union-attr]
    with pytest.raises(FhirError) as caught:
        parser().parse("Observation", [("subject.nosuch", "x")], strict=True)
    assert "no target of 'subject' has a search parameter 'nosuch'" in str(caught.value)


def test_number_precision_ranges() -> None:
    value = parser().parse("RiskAssessment", [("probability", "0.25")], strict=True).criteria[0].values[0]  # type: ignore[union-attr]
    assert (value.low, value.high) == pytest.approx((0.245, 0.255))
