"""The patient matching model of ``$match`` (IHE ITI-119) and the feed: pure scoring, no HTTP, no SQL.

A probe Patient and a stored one are compared field by field; each comparison gives an agreement
level, each level a weight (log-odds-like points, in the manner of Fellegi-Sunter record linkage),
and the points add up to one total. The grade is a decision on that evidence, not a mere threshold:

- ``certain`` only when a matricule or platform id agrees and the demographics do not contradict it
  (another birth date or gender, another given name, or another family name without the same given
  name): an identifier copied onto the wrong record never makes a certain match.
- ``probable`` from enough points, but never when a given or family name is unlike the other (less
  than similar) or the birth dates disagree beyond a typo: twins share family, birth date and address
  and are two people. Without birth dates to compare it takes more points: namesakes share names.
- ``possible`` from fewer points; below that a candidate is not returned.

How alike names and birth dates are is similarity.py's answer; a probe whose given and family names
are swapped is compared both ways.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reference_impl.naming import LOCAL_ID_PREFIX, NATIONAL_ID, PLATFORM_ID
from reference_impl.services.mpi.similarity import (
    DateLevel,
    Day,
    Level,
    Name,
    date_level,
    name_level,
    tokens,
)

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


class Grade(enum.IntEnum):
    """Match grades of the match-grade extension, best last (so that max() picks the best)."""

    POSSIBLE = 1
    PROBABLE = 2
    CERTAIN = 3

    @property
    def code(self) -> str:
        return self.name.lower()


FAMILY_POINTS = {Level.MISSING: 0.0, Level.DIFFERENT: -3.0, Level.WEAK: 0.0, Level.SIMILAR: 1.5, Level.CLOSE: 3.0}
GIVEN_POINTS = {Level.MISSING: 0.0, Level.DIFFERENT: -4.0, Level.WEAK: -1.0, Level.SIMILAR: 1.5, Level.CLOSE: 3.0}
NAME_EXACT_POINTS = 4.0
SWAPPED_PENALTY = 0.5  # given and family swapped: most likely the same person, entered the wrong way round
DATE_POINTS = {
    DateLevel.MISSING: 0.0,
    DateLevel.DIFFERENT: -6.0,
    DateLevel.PARTIAL: 1.0,
    DateLevel.TYPO: 3.0,
    DateLevel.TRANSPOSED: 3.0,
    DateLevel.EXACT: 5.0,
}
GENDER_AGREES, GENDER_DIFFERS = 0.5, -3.0
POSTAL_CODE_AGREES, CITY_AGREES, PHONE_AGREES = 1.5, 1.0, 1.5
NATIONAL_AGREES, NATIONAL_DIFFERS = 10.0, -2.0  # two valid matricules: another person, or Maddy/Maggy
PLATFORM_AGREES = 10.0  # differing platform ids say nothing: a duplicate is a record with a platform id of its own
LOCAL_AGREES, LOCAL_DIFFERS = 8.0, -1.0  # the same institution's id, agreeing or not
PROBABLE_POINTS, POSSIBLE_POINTS = 8.0, 4.0
# Without a birth date on both sides, namesakes are common: probable then needs contact details too
# (the same names, gender, postal code and phone reach it; the same names and postal code do not).
PROBABLE_WITHOUT_BIRTH_DATE = 11.0
# search.score: each grade a band of [0, 1], the points placed inside their band by a logistic curve.
SCORE_BANDS = {Grade.CERTAIN: (0.95, 1.0), Grade.PROBABLE: (0.75, 0.95), Grade.POSSIBLE: (0.5, 0.75)}
SCORE_MIDPOINT, SCORE_SCALE = 8.0, 3.0


@dataclass(frozen=True)
class Demographics:
    """What the model compares of a Patient, folded and parsed once."""

    families: tuple[Name, ...]
    givens: tuple[Name, ...]
    birth: Day | None
    gender: str | None
    postal_codes: frozenset[str]
    cities: frozenset[str]
    phones: frozenset[str]
    identifiers: frozenset[tuple[str, str]]  # (system, value) of the person's domains, "old" ones left out

    @classmethod
    def of(cls, patient: dict[str, Any]) -> Demographics:
        names = [n for n in _list(patient.get("name")) if n.get("use") not in ("old", "anonymous")]
        families = [Name.of(n["family"]) for n in names if isinstance(n.get("family"), str)]
        givens = [Name.of(" ".join(g for g in _list_of_str(n.get("given")))) for n in names]
        addresses = [a for a in _list(patient.get("address")) if a.get("use") != "old"]
        gender = patient.get("gender")
        return cls(
            families=tuple(f for f in families if f is not None),
            givens=tuple(g for g in givens if g is not None),
            birth=Day.of(patient.get("birthDate")),
            gender=gender if gender in ("male", "female", "other") else None,
            postal_codes=frozenset(
                "".join(a["postalCode"].split()).upper() for a in addresses if isinstance(a.get("postalCode"), str)
            ),
            cities=frozenset(" ".join(tokens(a["city"])) for a in addresses if isinstance(a.get("city"), str)),
            phones=frozenset(_phone(t["value"]) for t in _list(patient.get("telecom")) if _is_phone(t)),
            identifiers=frozenset(
                (i["system"], i["value"])
                for i in _list(patient.get("identifier"))
                if isinstance(i.get("system"), str) and isinstance(i.get("value"), str) and i.get("use") != "old"
            ),
        )

    def values_of(self, system: str) -> frozenset[str]:
        return frozenset(v for s, v in self.identifiers if s == system)


def _list(value: Any) -> Iterator[dict[str, Any]]:
    return (v for v in value if isinstance(v, dict)) if isinstance(value, list) else iter(())


def _list_of_str(value: Any) -> Iterator[str]:
    return (v for v in value if isinstance(v, str)) if isinstance(value, list) else iter(())


def _is_phone(telecom: dict[str, Any]) -> bool:
    return telecom.get("system") in ("phone", "sms") and isinstance(telecom.get("value"), str)


def _phone(value: str) -> str:
    digits = "".join(c for c in value if c.isdigit())
    return digits[-8:]  # without country or trunk prefix: +352 621 482 913 and 621482913 agree


@dataclass(frozen=True)
class Evidence:
    """The comparison of a probe with a candidate, field by field, and the points it adds up to."""

    family: Level
    given: Level
    swapped: bool
    birth: DateLevel
    gender_differs: bool
    address: bool  # the postal code or the city agrees
    national: bool | None  # None: not on both sides
    platform: bool | None
    points: float

    @property
    def contradicted(self) -> bool:
        """Demographics that make an agreeing identifier a data error rather than the same person."""
        return (
            self.birth is DateLevel.DIFFERENT
            or self.gender_differs
            or self.given in (Level.DIFFERENT, Level.WEAK)
            or (self.family is Level.DIFFERENT and self.given is not Level.EXACT)
        )


@dataclass(frozen=True)
class Match:
    grade: Grade
    score: float  # 0..1, higher for a better grade, then for more points
    evidence: Evidence


def compare(probe: Demographics, candidate: Demographics) -> Evidence:
    family, given, swapped = _names(probe, candidate)
    birth = date_level(probe.birth, candidate.birth)
    gender_differs = probe.gender is not None and candidate.gender is not None and probe.gender != candidate.gender
    points = _name_points(family, FAMILY_POINTS) + _name_points(given, GIVEN_POINTS) + DATE_POINTS[birth]
    points -= SWAPPED_PENALTY if swapped else 0.0
    if probe.gender is not None and candidate.gender is not None:
        points += GENDER_DIFFERS if gender_differs else GENDER_AGREES
    postal_code, city = bool(probe.postal_codes & candidate.postal_codes), bool(probe.cities & candidate.cities)
    points += POSTAL_CODE_AGREES if postal_code else CITY_AGREES if city else 0.0
    if probe.phones & candidate.phones:
        points += PHONE_AGREES
    national = _agreement(probe, candidate, NATIONAL_ID)
    platform = _agreement(probe, candidate, PLATFORM_ID)
    points += _identifier_points(national, NATIONAL_AGREES, NATIONAL_DIFFERS)
    points += _identifier_points(platform, PLATFORM_AGREES, 0.0)
    for system in {s for s, _ in probe.identifiers if s.startswith(LOCAL_ID_PREFIX)}:
        points += _identifier_points(_agreement(probe, candidate, system), LOCAL_AGREES, LOCAL_DIFFERS)
    return Evidence(family, given, swapped, birth, gender_differs, postal_code or city, national, platform, points)


def _names(probe: Demographics, candidate: Demographics) -> tuple[Level, Level, bool]:
    """(family level, given level, swapped): the probe's names as given, or swapped when that fits better."""
    family = name_level(probe.families, candidate.families)
    given = name_level(probe.givens, candidate.givens)
    swapped_family = name_level(probe.givens, candidate.families)
    swapped_given = name_level(probe.families, candidate.givens)
    if min(swapped_family, swapped_given) >= Level.CLOSE and swapped_family + swapped_given > family + given:
        return swapped_family, swapped_given, True
    return family, given, False


def _name_points(level: Level, points: dict[Level, float]) -> float:
    return NAME_EXACT_POINTS if level is Level.EXACT else points[level]


def _agreement(probe: Demographics, candidate: Demographics, system: str) -> bool | None:
    mine, theirs = probe.values_of(system), candidate.values_of(system)
    if not mine or not theirs:
        return None
    return bool(mine & theirs)


def _identifier_points(agrees: bool | None, agree: float, differ: float) -> float:
    return 0.0 if agrees is None else agree if agrees else differ


def grade(evidence: Evidence) -> Grade | None:
    """The decision on the evidence (see the module's docstring); None: not even a possible match."""
    if (evidence.national or evidence.platform) and not evidence.contradicted:
        return Grade.CERTAIN
    unlike = (Level.DIFFERENT, Level.WEAK)
    outright = evidence.given in unlike or evidence.family in unlike or evidence.birth is DateLevel.DIFFERENT
    dated = evidence.birth > DateLevel.PARTIAL
    if evidence.points >= (PROBABLE_POINTS if dated else PROBABLE_WITHOUT_BIRTH_DATE) and not outright:
        return Grade.PROBABLE
    if evidence.points >= POSSIBLE_POINTS:
        return Grade.POSSIBLE
    return None


def score(probe: Demographics, candidate: Demographics) -> Match | None:
    """How ``candidate`` matches ``probe``: grade, score and the evidence; None below a possible match."""
    evidence = compare(probe, candidate)
    found = grade(evidence)
    if found is None:
        return None
    low, high = SCORE_BANDS[found]
    within = 1.0 / (1.0 + math.exp(-(evidence.points - SCORE_MIDPOINT) / SCORE_SCALE))
    return Match(found, round(low + (high - low) * within, 4), evidence)


def is_certain_match(stored: dict[str, Any], patient: dict[str, Any]) -> bool:
    """Whether the stored Patient ``stored`` is a certain match of ``patient`` (the feed links such records)."""
    found = score(Demographics.of(patient), Demographics.of(stored))
    return found is not None and found.grade is Grade.CERTAIN
