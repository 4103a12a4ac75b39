"""The national identification number ("matricule"), SPEC section 3: 13 digits, ``YYYYMMDD`` (month
and day may be ``00``) + a 3-digit sequence + a Luhn check digit and a Verhoeff check digit, both
computed over digits 1-11 with the standard algorithms (python-stdnum's, not tables of our own).
"""

from __future__ import annotations

import calendar
from datetime import date

from stdnum import luhn, verhoeff

from reference_impl.naming import NATIONAL_ID as SYSTEM

__all__ = ["SYSTEM", "luhn_problem", "make", "problem"]


def make(birth_date: date, sequence: int) -> str:
    return with_check_digits(f"{birth_date:%Y%m%d}{sequence:03d}")


def with_check_digits(body: str) -> str:
    """The 11 digits of ``body`` followed by their Luhn and Verhoeff check digits."""
    return f"{body}{luhn.calc_check_digit(body)}{verhoeff.calc_check_digit(body)}"


def problem(value: str) -> str | None:
    """Why ``value`` is not a valid matricule, or None when it is one."""
    if len(value) != 13 or not value.isascii() or not value.isdigit():
        return "a matricule is 13 digits"
    year, month, day = int(value[:4]), int(value[4:6]), int(value[6:8])
    if month > 12:
        return f"a matricule starts with a birth date YYYYMMDD: month {value[4:6]} does not exist"
    last_day = calendar.monthrange(year, month)[1] if month else 31
    if day > last_day:
        return f"a matricule starts with a birth date YYYYMMDD: day {value[6:8]} does not exist in that month"
    body = value[:11]
    if value[11] != luhn.calc_check_digit(body):
        return "the Luhn check digit (12th digit) does not match digits 1-11"
    if value[12] != verhoeff.calc_check_digit(body):
        return "the Verhoeff check digit (13th digit) does not match digits 1-11"
    return None


def luhn_problem(value: str) -> str | None:
    """The Luhn digit alone (the fault "matricule-luhn-only": what a server checking only that accepts)."""
    if len(value) != 13 or not value.isascii() or not value.isdigit():
        return "a matricule is 13 digits"
    if value[11] != luhn.calc_check_digit(value[:11]):
        return "the Luhn check digit (12th digit) does not match digits 1-11"
    return None
