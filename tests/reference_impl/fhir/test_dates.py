from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reference_impl.fhir.dates import MAX_US, InvalidDate, from_us, parse_range, to_us


def us(*parts: int) -> int:
    return to_us(datetime(*parts, tzinfo=UTC))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2020", us(2020, 1, 1), us(2021, 1, 1)),
        ("2020-02", us(2020, 2, 1), us(2020, 3, 1)),
        ("2020-12", us(2020, 12, 1), us(2021, 1, 1)),
        ("2020-02-29", us(2020, 2, 29), us(2020, 3, 1)),
        ("2020-02-29T10:15", us(2020, 2, 29, 10, 15), us(2020, 2, 29, 10, 16)),
        ("2020-02-29T10:15:30Z", us(2020, 2, 29, 10, 15, 30), us(2020, 2, 29, 10, 15, 31)),
        ("2020-02-29T10:15:30+02:00", us(2020, 2, 29, 8, 15, 30), us(2020, 2, 29, 8, 15, 31)),
        ("2020-02-29T10:15:30.5-01:30", us(2020, 2, 29, 11, 45, 30) + 500_000, us(2020, 2, 29, 11, 45, 30) + 600_000),
        ("9999", us(9999, 1, 1), MAX_US),
        ("9999-12", us(9999, 12, 1), MAX_US),
        ("9999-12-31", us(9999, 12, 31), us(9999, 12, 31) + 86_400_000_000),
        (
            "9999-12-31T23:59:59-14:00",
            us(9999, 12, 31, 23, 59, 59) + 14 * 3_600_000_000,
            us(9999, 12, 31, 23, 59, 59) + 14 * 3_600_000_000 + 1_000_000,
        ),
        ("0001-01-01T00:00:00+14:00", us(1, 1, 1) - 14 * 3_600_000_000, us(1, 1, 1) - 14 * 3_600_000_000 + 1_000_000),
    ],
)
def test_ranges(text: str, low: int, high: int) -> None:
    assert parse_range(text) == (low, high)


@pytest.mark.parametrize(
    "text",
    ["", "20", "2020-13", "2021-02-29", "2020-01-01T25:00:00Z", "2020/01/01", "yesterday", "2020-01-01T10:00:00+2"],
)
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidDate):
        parse_range(text)


def test_microsecond_round_trip() -> None:
    moment = datetime(1893, 12, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert from_us(to_us(moment)) == moment


@pytest.mark.parametrize("value", [{"start": "2020"}, ["2020"], 2020, None])
def test_a_value_that_is_not_text_is_an_invalid_date(value: object) -> None:
    # Not a TypeError from the memory of parsed dates (a dict or a list cannot be its key).
    with pytest.raises(InvalidDate):
        parse_range(value)  # type: ignore[arg-type]


def test_an_invalid_date_asked_again_is_invalid_again() -> None:
    for _ in range(2):
        with pytest.raises(InvalidDate):
            parse_range("2021-02-29")
    assert parse_range("2021-02-28") == parse_range("2021-02-28")
