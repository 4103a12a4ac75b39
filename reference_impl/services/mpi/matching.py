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

Names are compared folded (case, accents, German umlauts written out, particles such as "da", "von",
"de" set aside) with rapidfuzz's Jaro-Winkler and normalized Levenshtein on the whole name and token by
token, and by jellyfish's metaphone and NYSIIS codes, which hear "Schmitt"/"Schmit",
"Meyer"/"Meier", "Gonçalves"/"Gonsalves" as one name (with a few spellings of one sound in German and
French names that those English-made codes keep apart). A probe whose given and family names are
swapped is compared both ways. Birth dates agree exactly, with day and month transposed, with one digit
off or two adjacent digits swapped (``date_variants`` lists those days for the candidate search).
"""

from __future__ import annotations

import calendar
import enum
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jellyfish
from rapidfuzz.distance import JaroWinkler, Levenshtein

from reference_impl.naming import LOCAL_ID_PREFIX, NATIONAL_ID, PLATFORM_ID

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
PARTICLES = frozenset(
    {"da", "das", "de", "del", "della", "der", "des", "di", "do", "dos", "du", "la", "le", "van", "von"}
)
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
_SEPARATORS = re.compile(r"[\s\-'’.,]+")


class Grade(enum.IntEnum):
    """Match grades of the match-grade extension, best last (so that max() picks the best)."""

    POSSIBLE = 1
    PROBABLE = 2
    CERTAIN = 3

    @property
    def code(self) -> str:
        return self.name.lower()


class Level(enum.IntEnum):
    """How well two values agree."""

    MISSING = 0  # absent on one side: no evidence either way
    DIFFERENT = 1
    WEAK = 2
    SIMILAR = 3  # e.g. Maddy / Maggy
    CLOSE = 4  # a typo, or the same name to the ear
    EXACT = 5


class DateLevel(enum.IntEnum):
    MISSING = 0
    DIFFERENT = 1
    PARTIAL = 2  # one side is a year or a month only, and the other falls in it
    TYPO = 3  # one digit off, or two adjacent digits swapped
    TRANSPOSED = 4  # day and month swapped
    EXACT = 5


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


def fold(text: str, umlauts: bool = False) -> str:
    """Lower case without accents (``umlauts``: German ä/ö/ü written ae/oe/ue first, as "Mueller")."""
    if umlauts:
        text = text.translate(_UMLAUTS)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> tuple[str, ...]:
    """The name's words, folded, particles left out unless nothing else remains."""
    words = [w for w in _SEPARATORS.split(fold(text)) if w]
    kept = [w for w in words if w not in PARTICLES]
    return tuple(kept or words)


@dataclass(frozen=True)
class Name:
    """One name part (a family name, or the given names of one HumanName) in the forms compared."""

    folded: str  # words joined by one space
    spellings: tuple[str, ...]  # the folded forms without spaces: accents stripped, umlauts written out
    words: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> Name | None:
        words = tokens(text)
        if not words:
            return None
        plain = "".join(words)
        german = "".join(w for w in _SEPARATORS.split(fold(text, umlauts=True)) if w and w not in PARTICLES)
        return cls(" ".join(words), tuple(dict.fromkeys((plain, german or plain))), words)


# Spellings of one sound in German, Luxembourgish and French names, which the English-made metaphone
# and NYSIIS keep apart: "Meyer"/"Meier"/"Maier", "Schmidt"/"Schmitt", "Philippe"/"Filipe".
_SAME_SOUND = tuple(
    (re.compile(pattern), sound)
    for pattern, sound in (
        (r"ph", "f"),
        (r"th", "t"),
        (r"dt$|d$", "t"),
        (r"ck", "k"),
        (r"tz", "z"),
        (r"[ae][iy]", "ei"),
        (r"y", "i"),
        (r"(.)\1", r"\1"),
    )
)


@lru_cache(maxsize=65_536)
def _sounds(word: str) -> tuple[str, str, str]:
    """Three keys of how ``word`` sounds: metaphone, NYSIIS and its spelling with one letter per sound."""
    spelled = word
    for pattern, sound in _SAME_SOUND:
        spelled = pattern.sub(sound, spelled)
    return jellyfish.metaphone(word), jellyfish.nysiis(word), spelled


def _word_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if len(a) == 1 or len(b) == 1:  # an initial: "M." for "Maddy"
        return 0.8 if a[0] == b[0] else 0.0
    similarity = max(JaroWinkler.similarity(a, b), Levenshtein.normalized_similarity(a, b))
    if similarity >= 0.7 and min(len(a), len(b)) >= 3:
        sound_a, sound_b = _sounds(a), _sounds(b)
        if any(key_a == key_b for key_a, key_b in zip(sound_a, sound_b, strict=True)):
            similarity = max(similarity, 0.93)  # the same name to the ear: "Meyer" / "Meier"
    return similarity


def name_similarity(a: Name, b: Name) -> float:
    """0..1: the whole names compared, or word by word (compound names, a word left out)."""
    if a.folded == b.folded or set(a.spellings) & set(b.spellings):
        return 1.0
    whole = max(_word_similarity(x, y) for x in a.spellings for y in b.spellings)
    shorter, longer = (a.words, b.words) if len(a.words) <= len(b.words) else (b.words, a.words)
    by_word = sum(max(_word_similarity(w, v) for v in longer) for w in shorter) / len(shorter)
    if len(shorter) != len(longer):
        by_word *= 0.95  # "Jean" for "Jean Paul": the same person more often than not, but not certainly
    return max(whole, by_word)


def name_level(a: Iterable[Name], b: Iterable[Name]) -> Level:
    pairs = [(x, y) for x in a for y in b]
    if not pairs:
        return Level.MISSING
    similarity = max(name_similarity(x, y) for x, y in pairs)
    if similarity >= 1.0:
        return Level.EXACT
    if similarity >= 0.92:
        return Level.CLOSE
    if similarity >= 0.75:
        return Level.SIMILAR
    if similarity >= 0.6:
        return Level.WEAK
    return Level.DIFFERENT


@dataclass(frozen=True)
class Day:
    """A birth date as FHIR writes it: year, and month and day when known."""

    year: int
    month: int | None
    day: int | None

    @classmethod
    def of(cls, text: Any) -> Day | None:
        match = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", text) if isinstance(text, str) else None
        if match is None:
            return None
        year, month, day = (int(g) if g else None for g in match.groups())
        assert year is not None
        return cls(year, month, day)

    @property
    def digits(self) -> str | None:
        return f"{self.year:04d}{self.month:02d}{self.day:02d}" if self.month and self.day else None


def date_level(a: Day | None, b: Day | None) -> DateLevel:
    if a is None or b is None:
        return DateLevel.MISSING
    if a == b:
        return DateLevel.EXACT
    da, db = a.digits, b.digits
    if da is None or db is None:
        same_month = a.month is None or b.month is None or a.month == b.month
        return DateLevel.PARTIAL if a.year == b.year and same_month else DateLevel.DIFFERENT
    if a.year == b.year and (a.month, a.day) == (b.day, b.month):
        return DateLevel.TRANSPOSED
    differing = [i for i in range(8) if da[i] != db[i]]
    if len(differing) == 1:
        return DateLevel.TYPO
    if len(differing) == 2 and differing[1] == differing[0] + 1 and da[differing[0]] == db[differing[1]]:
        return DateLevel.TYPO  # 1983-08-12 written 1983-08-21
    return DateLevel.DIFFERENT


def date_variants(day: Day) -> list[str]:
    """The days (YYYY-MM-DD) a birth date agrees with beyond ``DateLevel.DIFFERENT``: the candidate search
    looks these up, so every stored patient the model could match on the birth date is found."""
    digits = day.digits
    if digits is None:
        return []
    found = {digits, f"{day.year:04d}{day.day:02d}{day.month:02d}"}
    for i in range(8):
        found.update(digits[:i] + d + digits[i + 1 :] for d in "0123456789")
        if i < 7:
            found.add(digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :])
    return sorted(f"{v[:4]}-{v[4:6]}-{v[6:]}" for v in found if _is_day(v))


def _is_day(digits: str) -> bool:
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:])
    return year >= 1800 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


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
