"""What a search returns: _sort, _include/_revinclude and _elements (fhir@31, fhir@32, fhir@34)."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import (
    SUBSETTED,
    create,
    entries,
    ids,
    keys,
    observation,
    patient,
    quantity,
    scope,
    search,
    tag,
)

SORTABLE = {
    "a": ("Adam", "female", "1990-01-01"),
    "b": ("Bauer", "male", "1980-01-01"),
    "c": ("Clees", "female", "1970-01-01"),
    "d": ("Dupont", "male", "2000-01-01"),
}


SORTS = [
    ("family", ["a", "b", "c", "d"]),
    ("-family", ["d", "c", "b", "a"]),
    ("birthdate", ["c", "b", "a", "d"]),
    ("-birthdate", ["d", "a", "b", "c"]),
    ("gender,family", ["a", "c", "b", "d"]),
    ("gender,-family", ["c", "a", "d", "b"]),
]


@pytest.mark.requirement("fhir@31")
def test_sort_orders_results(fhir_client: EvidenceClient, unique: str) -> None:
    """_sort orders by parameters, descending with a leading minus"""
    made = {}
    for key in ("b", "d", "a", "c"):  # created out of order
        family, gender, born = SORTABLE[key]
        made[create(fhir_client, patient(unique, family, gender=gender, birthDate=born))["id"]] = key
    wrong = []
    for sort, expected in SORTS:
        found = ids(search(fhir_client, "Patient", {"identifier": scope(unique), "_sort": sort}))
        order = [made.get(i, i) for i in found]
        if order != expected:
            wrong.append(f"_sort={sort} returned {order}, expected {expected}")
    assert not wrong, "a: Adam female 1990, b: Bauer male 1980, c: Clees female 1970, d: Dupont male 2000: " + (
        "; ".join(wrong)
    )


def _linked(fhir_client: EvidenceClient, unique: str) -> dict[str, str]:
    """An Organization, a Patient it manages and an Observation about the Patient: Type/id by role."""
    org = create(fhir_client, {"resourceType": "Organization", "identifier": [tag(unique)], "name": "CHL"})
    person = create(fhir_client, patient(unique, managingOrganization={"reference": f"Organization/{org['id']}"}))
    obs = create(fhir_client, observation(unique, f"Patient/{person['id']}", valueQuantity=quantity(70)))
    return {"org": f"Organization/{org['id']}", "patient": f"Patient/{person['id']}", "obs": f"Observation/{obs['id']}"}


def _included_wrong(fhir_client: EvidenceClient, unique: str, cases: list[tuple[str, str, str, str, str]]) -> list[str]:
    made = _linked(fhir_client, unique)
    wrong = []
    for path, parameter, value, match, included in cases:
        bundle = search(fhir_client, path, {"identifier": scope(unique), parameter: value})
        query = f"{path}?{parameter}={value}"
        if keys(bundle) != {made[match]}:
            wrong.append(f"{query} matched {sorted(keys(bundle))}, expected only {made[match]}")
        elif made[included] not in keys(bundle, "include"):
            shown_included = sorted(keys(bundle, "include")) or "nothing"
            wrong.append(
                f"{query} did not include {made[included]} with search.mode include (included {shown_included})"
            )
        elif bundle.get("total") != 1:
            wrong.append(f"{query} says total={bundle.get('total')!r}; included resources do not count")
    return wrong


@pytest.mark.requirement("fhir@32")
def test_include_adds_referenced_resources(fhir_client: EvidenceClient, unique: str) -> None:
    """_include adds the referenced resources with search.mode include"""
    wrong = _included_wrong(
        fhir_client,
        unique,
        [
            ("Patient", "_include", "Patient:organization", "patient", "org"),
            ("Observation", "_include", "Observation:subject", "obs", "patient"),
            ("Observation", "_include", "Observation:subject:Patient", "obs", "patient"),
            ("Observation", "_include", "Observation:patient", "obs", "patient"),
        ],
    )
    assert not wrong, "; ".join(wrong)


@pytest.mark.requirement("fhir@32")
def test_revinclude_adds_referencing_resources(fhir_client: EvidenceClient, unique: str) -> None:
    """_revinclude adds the referencing resources with search.mode include"""
    wrong = _included_wrong(
        fhir_client,
        unique,
        [
            ("Patient", "_revinclude", "Observation:subject", "patient", "obs"),
            ("Patient", "_revinclude", "Observation:patient", "patient", "obs"),
            ("Organization", "_revinclude", "Patient:organization", "org", "patient"),
        ],
    )
    assert not wrong, "; ".join(wrong)


@pytest.mark.requirement("fhir@34")
def test_elements_returns_only_what_was_asked(fhir_client: EvidenceClient, unique: str) -> None:
    """_elements returns the requested elements only, marked SUBSETTED"""
    create(fhir_client, patient(unique, gender="female", birthDate="1980-05-17", active=True))
    bundle = search(fhir_client, "Patient", {"identifier": scope(unique), "_elements": "birthDate,gender"})
    found = entries(bundle)
    assert len(found) == 1, f"the search with _elements returned {len(found)} matches; expected 1"
    resource = found[0]
    assert resource.get("birthDate") == "1980-05-17" and resource.get("gender") == "female", (
        "_elements=birthDate,gender did not return birthDate and gender"
    )
    extra = sorted(set(resource) & {"name", "active", "identifier"})
    assert not extra, f"_elements=birthDate,gender also returned {extra}"
    tags = [t.get("code") for t in (resource.get("meta") or {}).get("tag") or []]
    assert SUBSETTED in tags, f"the subsetted resource is not tagged SUBSETTED in meta.tag (tags: {tags})"


@pytest.mark.requirement("fhir@34")
def test_elements_keeps_mandatory_elements(fhir_client: EvidenceClient, unique: str) -> None:
    """_elements keeps the mandatory elements of the resource"""
    subject = f"Patient/{create(fhir_client, patient(unique))['id']}"
    create(fhir_client, observation(unique, subject, valueQuantity=quantity(70)))
    bundle = search(fhir_client, "Observation", {"identifier": scope(unique), "_elements": "subject"})
    found = entries(bundle)
    assert len(found) == 1, f"the search with _elements returned {len(found)} matches; expected 1"
    resource = found[0]
    assert "subject" in resource, "_elements=subject did not return subject"
    assert "valueQuantity" not in resource, "_elements=subject also returned valueQuantity"
    missing = [name for name in ("status", "code") if name not in resource]
    assert not missing, f"_elements=subject dropped the mandatory Observation elements {missing}"


@pytest.mark.requirement("fhir@31")
def test_sort_by_date_on_observations(fhir_client: EvidenceClient, unique: str) -> None:
    """_sort orders Observations by their effective date"""
    subject = f"Patient/{create(fhir_client, patient(unique))['id']}"
    made = {}
    for when in ("2024-02-01T10:00:00Z", "2023-05-01T10:00:00Z", "2024-07-01T10:00:00Z"):
        made[create(fhir_client, observation(unique, subject, effectiveDateTime=when))["id"]] = when
    for sort, expected in (("date", sorted(made.values())), ("-date", sorted(made.values(), reverse=True))):
        found = ids(search(fhir_client, "Observation", {"identifier": scope(unique), "_sort": sort}))
        order = [made.get(i, i) for i in found]
        assert order == expected, f"Observation?_sort={sort} returned effective dates {order}; expected {expected}"
