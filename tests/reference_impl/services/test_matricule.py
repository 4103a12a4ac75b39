from __future__ import annotations

import random
from datetime import date

import pytest
from stdnum import luhn, verhoeff

from reference_impl.services.mpi.matricule import make, problem, with_check_digits

# SPEC section 3, word for word.
VALID = [
    "1893120105732",
    "1983081246785",
    "2003042581939",
    "1971110258749",
    "2012051469331",
    "1994092874550",
    "1980000012324",
]
INVALID = ["1893120105733", "1893120105742", "1994789587182", "2000060500127", "1998041799999"]


@pytest.mark.parametrize("value", VALID)
def test_spec_valid_examples_are_valid(value: str) -> None:
    assert problem(value) is None
    assert with_check_digits(value[:11]) == value


@pytest.mark.parametrize("value", INVALID)
def test_spec_invalid_examples_are_invalid(value: str) -> None:
    assert problem(value) is not None


def test_make_builds_the_spec_numbers() -> None:
    assert make(date(1893, 12, 1), 57) == "1893120105732"
    assert make(date(1983, 8, 12), 467) == "1983081246785"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("198308124678", "13 digits"),
        ("19830812467851", "13 digits"),
        ("1983o81246785", "13 digits"),
        ("1983131246785", "month 13"),
        ("1983023046785", "day 30"),
        ("1983081246795", "Luhn"),
        ("1983081246784", "Verhoeff"),
    ],
)
def test_each_problem_is_named(value: str, why: str) -> None:
    found = problem(value)
    assert found is not None and why in found, found


def test_a_thousand_generated_numbers_agree_with_python_stdnum() -> None:
    """Each generated matricule (month and day 00 included) passes the library's Luhn over digits 1-12
    and Verhoeff over digits 1-11 + 13; every other 12th or 13th digit fails."""
    rng = random.Random(11)
    for _ in range(1000):
        year, month = rng.randrange(1890, 2026), rng.choice([0, *range(1, 13)])
        day = 0 if month == 0 or rng.random() < 0.1 else rng.randrange(1, 29)
        value = with_check_digits(f"{year:04d}{month:02d}{day:02d}{rng.randrange(1000):03d}")
        assert luhn.is_valid(value[:12]) and verhoeff.is_valid(value[:11] + value[12]), value
        assert problem(value) is None, value
        for position in (11, 12):
            wrong = (int(value[position]) + rng.randrange(1, 10)) % 10
            altered = value[:position] + str(wrong) + value[position + 1 :]
            assert problem(altered) is not None, altered
