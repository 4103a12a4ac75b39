"""What the national dataset's modules share (``national.py``, ``national_record.py``): the
deterministic ids of its resources and the random draws made with a chunk's generator.

Ids are made from a person's or a practitioner's number, never drawn: the same number gives the same
id in any chunk, so a document can name its author's PractitionerRole without a lookup.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from datetime import date, timedelta

from reference_impl.naming import LOCAL_ID_PREFIX
from reference_impl.seed.national_data import INSTITUTIONS

LOCAL_PREFIX = "nat"  # ids of the national dataset: nat-p0000001, nat-d0000001-001... (demo ids differ)


def organization_id(key: str) -> str:
    return f"{LOCAL_PREFIX}-org-{key}"


def local_system(institution: int) -> str:
    return LOCAL_ID_PREFIX + INSTITUTIONS[institution][4]


def practitioner_id(n: int) -> str:
    return f"{LOCAL_PREFIX}-prac-{n:06d}"


def role_id(n: int) -> str:
    return f"{LOCAL_PREFIX}-role-{n:06d}"


def patient_id(person: int, record: str = "") -> str:
    return f"{LOCAL_PREFIX}-p{person:07d}{record}"


def prescription_number(person: int, n: int) -> str:
    return f"1{person:08d}{n:02d}"


def cumulative_weights(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


INSTITUTION_WEIGHTS = cumulative_weights([i[5] for i in INSTITUTIONS])  # a patient's or a document's institution


def draw(rng: random.Random, cumulative: list[float]) -> int:
    """An index drawn with the weights ``cumulative`` sums (``random.choices`` without building a list)."""
    return bisect.bisect_left(cumulative, rng.random() * cumulative[-1])


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: means here are small)."""
    limit, count, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def timestamp(rng: random.Random, as_of: date, within_days: int) -> str:
    """A moment in working hours, 1 to ``within_days - 1`` days before ``as_of``."""
    moment = as_of - timedelta(days=rng.randrange(1, within_days))
    return f"{moment.isoformat()}T{rng.randrange(7, 19):02d}:{rng.randrange(60):02d}:00Z"


def any_practitioner(rng: random.Random, practitioners: int) -> int:
    """The number of one of the directory's ``practitioners``."""
    return rng.randrange(1, practitioners + 1)
