"""How alike two names or two birth dates are: the field comparisons of the patient matching model.

Names are compared folded (case, accents, German umlauts written out, particles such as "da", "von",
"de" set aside) with rapidfuzz's Jaro-Winkler and normalized Levenshtein on the whole name and token by
token, and by jellyfish's metaphone and NYSIIS codes, which hear "Schmitt"/"Schmit",
"Meyer"/"Meier", "Gonçalves"/"Gonsalves" as one name (with a few spellings of one sound in German and
French names that those English-made codes keep apart). Birth dates agree exactly, with day and month
transposed, with one digit off or two adjacent digits swapped (``date_variants`` lists those days for
the candidate search).
"""

from __future__ import annotations

import calendar
import enum
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jellyfish
from rapidfuzz.distance import JaroWinkler, Levenshtein

PARTICLES = frozenset(
    {"da", "das", "de", "del", "della", "der", "des", "di", "do", "dos", "du", "la", "le", "van", "von"}
)
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
_SEPARATORS = re.compile(r"[\s\-'’.,]+")


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
