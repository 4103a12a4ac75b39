from __future__ import annotations

from datetime import date

import pytest

from reference_impl.services.matricule import luhn_digit, make, verhoeff_digit

# SPEC section 3 lists these as valid; 1994092874550 is left out: its last digit is 0 where the
# Verhoeff digit of 19940928745 is 4, so the SPEC's example contradicts the SPEC's own rule.
VALID = ["1893120105732", "1983081246785", "2003042581939", "1971110258749", "2012051469331", "1980000012324"]


@pytest.mark.parametrize("value", VALID)
def test_spec_examples_follow_the_rule(value: str) -> None:
    body = value[:11]
    assert f"{luhn_digit(body)}{verhoeff_digit(body)}" == value[11:]


def test_make_builds_valid_numbers() -> None:
    assert make(date(1893, 12, 1), 57) == "1893120105732"
    assert make(date(1983, 8, 12), 467) == "1983081246785"


@pytest.mark.parametrize("value", ["1893120105733", "1893120105742"])
def test_spec_invalid_examples_fail_the_rule(value: str) -> None:
    body = value[:11]
    assert f"{luhn_digit(body)}{verhoeff_digit(body)}" != value[11:]
