"""The matching model alone (no server): names, birth dates, grades, and the cases SPEC section 3 names."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from reference_impl.naming import NATIONAL_ID, PLATFORM_ID
from reference_impl.services.mpi import matricule
from reference_impl.services.mpi.demo import demo_patients
from reference_impl.services.mpi.matching import Demographics, Grade, compare, is_certain_match, score
from reference_impl.services.mpi.similarity import DateLevel, Day, Level, Name, date_level, date_variants, name_level

DEMO = {p["id"]: p for p in demo_patients()}
BORN = date(1983, 8, 12)
PHONE = [{"system": "phone", "value": "+352 621 482 913"}]


def patient(
    given: str = "Maddy",
    family: str = "Schmitt",
    born: str | None = "1983-08-12",
    gender: str | None = "female",
    postal: str | None = "3510",
    sequence: int | None = None,
    **more: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], **more}
    if born is not None:
        resource["birthDate"] = born
    if gender is not None:
        resource["gender"] = gender
    if postal is not None:
        resource["address"] = [{"postalCode": postal, "city": "Dudelange"}]
    if sequence is not None:
        resource["identifier"] = [{"system": NATIONAL_ID, "value": matricule.make(BORN, sequence)}]
    return resource


def grade_of(probe: dict[str, Any], stored: dict[str, Any]) -> Grade | None:
    found = score(Demographics.of(probe), Demographics.of(stored))
    return found.grade if found else None


def names(*texts: str) -> list[Name]:
    return [n for t in texts if (n := Name.of(t)) is not None]


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("Léa", "LEA", Level.EXACT),  # accents and case
        ("Müller", "Mueller", Level.EXACT),  # the umlaut written out
        ("Gonçalves", "Goncalves", Level.EXACT),
        ("da Silva", "Silva", Level.EXACT),  # a particle
        ("Schmitt", "Schmit", Level.CLOSE),
        ("Meyer", "Meier", Level.CLOSE),  # the same to the ear
        ("Hoffmann", "Hofmann", Level.CLOSE),
        ("Maddy", "Maggy", Level.SIMILAR),
        ("Luc", "Tom", Level.DIFFERENT),
        ("Philippe", "Filipe", Level.CLOSE),
        ("Schmidt", "Schmitt", Level.CLOSE),
        ("Schmitt", "Weber", Level.DIFFERENT),
    ],
)
def test_names_are_compared_folded_by_spelling_and_sound(a: str, b: str, level: Level) -> None:
    assert name_level(names(a), names(b)) is level


def test_a_missing_name_is_no_evidence() -> None:
    assert name_level(names("Schmitt"), []) is Level.MISSING


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("1983-08-12", "1983-08-12", DateLevel.EXACT),
        ("1983-08-12", "1983-12-08", DateLevel.TRANSPOSED),
        ("1983-08-12", "1983-08-13", DateLevel.TYPO),  # one digit off
        ("1983-08-12", "1993-08-12", DateLevel.TYPO),
        ("1983-08-12", "1983-08-21", DateLevel.TYPO),  # two adjacent digits swapped
        ("1983-08-12", "1983", DateLevel.PARTIAL),
        ("1983-08-12", "1984-09-12", DateLevel.DIFFERENT),
        ("1983-08-12", "1938-08-12", DateLevel.TYPO),  # the year's digits swapped
        ("1983-08-12", "1958-03-27", DateLevel.DIFFERENT),
        ("1983-08-12", None, DateLevel.MISSING),
    ],
)
def test_birth_dates_agree_exactly_transposed_or_by_a_typo(a: str, b: str | None, level: DateLevel) -> None:
    assert date_level(Day.of(a), Day.of(b)) is level


def test_the_date_variants_are_every_day_the_model_matches() -> None:
    born = Day.of("1983-08-12")
    assert born is not None
    variants = date_variants(born)
    assert {"1983-08-12", "1983-12-08", "1983-08-13", "1993-08-12", "1983-08-21"} <= set(variants)
    assert "1983-08-32" not in variants and "1983-13-12" not in variants  # no day that does not exist
    assert all(date_level(born, Day.of(v)) > DateLevel.DIFFERENT for v in variants)


def test_the_same_matricule_with_agreeing_demographics_is_certain() -> None:
    assert grade_of(patient(sequence=467), patient(sequence=467)) is Grade.CERTAIN
    assert is_certain_match(DEMO["mpi-maddy-chl"], DEMO["mpi-maddy-hrs"])


def test_the_same_platform_id_is_certain() -> None:
    platform = {"identifier": [{"system": PLATFORM_ID, "value": "p-1"}]}
    assert grade_of(patient(**platform), patient(given="Mady", **platform)) is Grade.CERTAIN


def test_equal_demographics_without_an_identifier_are_probable_not_certain() -> None:
    assert grade_of(patient(), patient(sequence=467)) is Grade.PROBABLE
    assert not is_certain_match(patient(sequence=467), patient())


@pytest.mark.parametrize(
    "contradiction",
    [
        {"given": "Roger"},
        {"born": "1938-02-01"},
        {"gender": "male"},
        {"family": "Weber", "given": "Mady"},
    ],
)
def test_an_agreeing_matricule_with_contradicting_demographics_is_not_certain(contradiction: dict[str, str]) -> None:
    assert grade_of(patient(sequence=467, **contradiction), patient(sequence=467)) is not Grade.CERTAIN


def test_a_changed_family_name_with_the_same_given_name_and_matricule_stays_certain() -> None:
    assert grade_of(patient(family="Weber", sequence=467), patient(sequence=467)) is Grade.CERTAIN


def test_twins_are_neither_certain_nor_probable() -> None:
    luc, tom = DEMO["mpi-luc-hoffmann"], DEMO["mpi-tom-hoffmann"]
    assert grade_of(luc, tom) in (Grade.POSSIBLE, None)
    luc_without_ids = {k: v for k, v in luc.items() if k != "identifier"}
    assert grade_of(luc_without_ids, tom) in (Grade.POSSIBLE, None)
    assert not is_certain_match(tom, luc)


def test_maddy_and_maggy_are_probable_with_or_without_their_matricules() -> None:
    maddy, maggy = DEMO["mpi-maddy-chl"], DEMO["mpi-maggy-chdn"]
    assert grade_of(maggy, maddy) is Grade.PROBABLE
    assert grade_of({k: v for k, v in maggy.items() if k != "identifier"}, maddy) is Grade.PROBABLE


def test_swapped_given_and_family_names_are_recognised() -> None:
    evidence = compare(Demographics.of(patient(given="Schmitt", family="Maddy")), Demographics.of(patient()))
    assert evidence.swapped and (evidence.family, evidence.given) == (Level.EXACT, Level.EXACT)
    assert grade_of(patient(given="Schmitt", family="Maddy"), patient()) is Grade.PROBABLE


@pytest.mark.parametrize(
    "probe",
    [
        patient(family="Schmit"),
        patient(given="Madyy"),
        patient(born="1983-12-08"),
        patient(born="1983-08-13"),
        patient(given="MADDY", family="schmítt"),
        patient(born=None, telecom=PHONE),
        patient(gender=None, postal=None),
    ],
    ids=["family typo", "given typo", "transposed", "digit off", "case and accents", "no birth date", "no address"],
)
def test_entry_errors_and_missing_fields_stay_probable(probe: dict[str, Any]) -> None:
    assert grade_of(probe, patient(sequence=467, telecom=PHONE)) is Grade.PROBABLE


def test_without_a_birth_date_names_and_a_postal_code_are_not_enough_for_probable() -> None:
    """namesakes in one town are common: the phone (or a birth date) has to agree as well"""
    assert grade_of(patient(born=None), patient(sequence=467)) is Grade.POSSIBLE


def test_strangers_are_not_matched() -> None:
    assert grade_of(patient(given="Jean", family="Weber", born="1971-11-02", gender="male"), patient()) is None


def test_scores_order_the_grades_and_stay_within_0_and_1() -> None:
    probe = Demographics.of(patient(sequence=467))
    found = [
        score(probe, Demographics.of(stored))
        for stored in (patient(sequence=467), patient(given="Maggy"), patient(given="Luc", postal="9170"))
    ]
    grades = [f.grade for f in found if f]
    scores = [f.score for f in found if f]
    assert grades == [Grade.CERTAIN, Grade.PROBABLE, Grade.POSSIBLE]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
