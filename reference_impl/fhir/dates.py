"""FHIR date, dateTime and instant values as half-open UTC ranges in epoch microseconds.

A value stands for the whole interval its precision implies: ``2020`` is the year 2020,
``2020-03-01T10:00:00Z`` that second. Search prefixes compare such intervals (FHIR R4 search,
"date"). Values without a time zone are taken as UTC, the server's time zone.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = -(2**62)
MAX_US = 2**62

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?)?)?)?\Z"
)


class InvalidDate(ValueError):
    pass


def to_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def parse_range(text: str) -> tuple[int, int]:
    """The interval ``[low, high)`` that a FHIR date/dateTime/instant literal denotes."""
    interval = _interval_of(text) if isinstance(text, str) else None
    if interval is None:
        raise InvalidDate(f"'{text}' is not a FHIR date, dateTime or instant")
    return interval


# Remembered: a store indexes the same dates again and again (birth dates, a day's documents); a
# national load spent 7% of its index rows' time here.
@functools.lru_cache(maxsize=65_536)
def _interval_of(text: str) -> tuple[int, int] | None:
    """``text``'s interval; None if it is not shaped as a date."""
    m = _DATE.match(text.strip())
    if m is None:
        return None
    try:
        return _interval(m.groupdict())
    except ValueError as exc:  # e.g. February 30th
        raise InvalidDate(f"'{text}' is not a valid calendar date: {exc}") from None


_DURATIONS_US = {"d": 86_400_000_000, "M": 60_000_000, "S": 1_000_000}


def _interval(g: dict[str, str | None]) -> tuple[int, int]:
    # Arithmetic in microseconds rather than datetimes: a time zone can move a valid local time
    # past year 9999 or before year 1 in UTC, which datetime cannot represent.
    year, month, day = int(g["y"] or 1), int(g["m"] or 1), int(g["d"] or 1)
    hour, minute, second = int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0)
    fraction = g["f"] or ""
    local = datetime(year, month, day, hour, minute, second, int((fraction + "000000")[:6]), tzinfo=UTC)
    zone = g["tz"]
    offset = 0
    if zone and zone != "Z":
        offset = (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 1_000_000
    start = to_us(local) - offset
    if g["m"] is None:
        return start, to_us(local.replace(year=year + 1)) - offset if year < 9999 else MAX_US
    if g["d"] is None:
        last = year == 9999 and month == 12
        return start, MAX_US if last else to_us(local.replace(year=year + month // 12, month=month % 12 + 1)) - offset
    if g["H"] is None:
        return start, start + _DURATIONS_US["d"]
    if g["S"] is None:
        return start, start + _DURATIONS_US["M"]
    if not fraction:
        return start, start + _DURATIONS_US["S"]
    return start, start + max(1, 10 ** (6 - min(len(fraction), 6)))


def now_instant() -> tuple[int, str]:
    """The current time as epoch microseconds and as a FHIR instant (millisecond precision)."""
    moment = datetime.now(UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return to_us(moment), format_instant(moment)


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def http_date(us: int) -> str:
    return from_us(us).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parse_http_date(text: str) -> int | None:
    try:
        moment = datetime.strptime(text.strip(), "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    except ValueError:
        return None
    return to_us(moment)
