"""The national dataset: a deterministic population of the size of the country's shared care records.

The agency counts 1,018,484 shared care records, 687,824 of them active ("at least one document"),
and about 8 million documents (``/work/shared/seeds``). ``NationalPlan`` says how many people and
documents; the generator yields, as resources exactly as the platform stores them, first the
directory (``directory``: institutions registering local patient id systems, practitioners and their
roles), then the people in chunks (``chunk``): each chunk depends only on the seed and its number,
so chunks can be made in any order, by several processes, and a chunk made again after a crash is
the same chunk. Nothing holds more than one chunk; the only arrays over the whole population are
two small integers per person (birth day and matricule sequence, ``BirthRegister``), which keep
matricules unique without a store lookup.

What a person has (the platform's rules applied as they would be on the way in: the patient index's
platform id, a document's subject as a Patient reference and status ``current``):

- a Patient record at their first institution (local id, matricule, platform id); some also at a
  second institution (same matricule and platform id: the index links them, PIXm finds both), and
  a few near-duplicates (a hospital record with a typo, swapped given names or no accents, no
  matricule, a platform id of its own: what ``$match`` finds as probable, never linked);
- on an active record (``ACTIVE_SHARE``), the shared care record (``national_record.py``): care
  relationships, DSP documents in the agency's published proportions, one SubmissionSet, and the
  access log of professionals' past reads of them (AuditEvents);
- prescriptions (MedicationRequest with the business identifier ``urn:oid:1.3.182.5.1``) and
  vaccinations (Immunization).

Resource ids and the random draws the modules share are in ``national_draws.py``, the reference
data (institutions, places, names, medications, vaccines) in ``national_data.py``.

Names: frequent Luxembourg surnames and the resident population's larger minorities (Portuguese,
French, Italian, Belgian, German, from the Balkans) with their STATEC shares of the population
(rounded), and within each group a Zipf-like frequency by rank: plausible, not a published count.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from reference_impl.naming import NATIONAL_ID, ORGANIZATION_ID, PLATFORM_ID, PRACTITIONER_ID
from reference_impl.seed.national_data import (
    CITIES,
    INSTITUTIONS,
    MEDICATIONS,
    NAME_GROUPS,
    SPECIALTIES,
    STREETS,
    VACCINES,
)
from reference_impl.seed.national_draws import (
    INSTITUTION_WEIGHTS,
    LOCAL_PREFIX,
    any_practitioner,
    cumulative_weights,
    draw,
    local_system,
    organization_id,
    patient_id,
    poisson,
    practitioner_id,
    prescription_number,
    role_id,
    timestamp,
)
from reference_impl.seed.national_record import ACTIVE_SHARE, record
from reference_impl.services.mpi import matricule

NATIONAL_SEED = 20261204
CHUNK_PERSONS = 500  # people per chunk: one transaction of the loader, a few thousand resources
PEOPLE_PER_PRACTITIONER = 300
SECOND_RECORD_SHARE = 0.08  # people known to a second institution
NEAR_DUPLICATE_SHARE = 0.02  # people with a near-duplicate record the index cannot link
PRESCRIPTIONS_MEAN = 2.0
VACCINATIONS_MEAN = 1.5
PRESCRIPTION_ID = "urn:oid:1.3.182.5.1"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
FIRST_BIRTH = date(1900, 1, 1)  # birth days are counted from it (2 bytes each: until 2079)


def _zipf(count: int) -> list[float]:
    """Cumulative weights of ``count`` names by rank, frequency ~ 1 / rank^0.9."""
    return cumulative_weights([1 / rank**0.9 for rank in range(1, count + 1)])


_GROUPS = cumulative_weights([g[0] for g in NAME_GROUPS])
_SURNAMES = [_zipf(len(g[1])) for g in NAME_GROUPS]
_FEMALE = [_zipf(len(g[2])) for g in NAME_GROUPS]
_MALE = [_zipf(len(g[3])) for g in NAME_GROUPS]
_CITIES = cumulative_weights([c[2] for c in CITIES])
_SPECIALTIES = cumulative_weights([s[2] for s in SPECIALTIES])
# Ages: a population pyramid of Luxembourg's shape (rounded shares per decade of age, 0-9 ... 90-99).
_AGE_DECADES = cumulative_weights([0.11, 0.11, 0.12, 0.15, 0.15, 0.14, 0.11, 0.07, 0.03, 0.01])


@dataclass(frozen=True)
class NationalPlan:
    """What to generate. ``as_of`` is the day the care relationships and documents are dated from
    (kept with a resumed load, so that a load finished the next day is the same dataset)."""

    patients: int
    documents_per_patient: float = 8.0
    seed: int = NATIONAL_SEED
    as_of: date = date(2026, 12, 4)
    chunk_persons: int = CHUNK_PERSONS

    def __post_init__(self) -> None:
        if self.patients < 1:
            raise ValueError("the national dataset needs at least one patient (--patients)")
        if self.chunk_persons < 1:
            raise ValueError("a chunk holds at least one person")
        if self.documents_per_patient < 0:
            raise ValueError("documents per patient cannot be negative (--documents-per-patient)")

    @property
    def chunks(self) -> int:
        """Chunks of people (numbered 1..chunks; chunk 0 is the directory)."""
        return -(-self.patients // self.chunk_persons)

    @property
    def practitioners(self) -> int:
        return max(20, self.patients // PEOPLE_PER_PRACTITIONER)

    @cached_property
    def births(self) -> BirthRegister:
        return BirthRegister(self)


class BirthRegister:
    """Each person's birth day and matricule sequence: the sequence counts the people born on the same
    day before them, as the national register numbers births, so no two people share a matricule.

    Two 2-byte integers per person (4 MB for a million): what lets each chunk be made on its own.
    """

    def __init__(self, plan: NationalPlan) -> None:
        rng = random.Random(f"{plan.seed}:births")
        self.days = array("H")
        self.sequences = array("H")
        taken: dict[int, int] = {}
        for _ in range(plan.patients):
            decade = draw(rng, _AGE_DECADES)
            age_days = int((decade + rng.random()) * 3650)
            day = (plan.as_of - FIRST_BIRTH).days - age_days  # ages below 100 years: after FIRST_BIRTH
            sequence = taken.get(day, rng.randrange(0, 40))  # the register's day does not start at 000
            if sequence > 999:
                raise ValueError("more than 1,000 people born on one day: too many patients for the matricule")
            taken[day] = sequence + 1
            self.days.append(day)
            self.sequences.append(sequence)

    def born(self, person: int) -> date:
        return FIRST_BIRTH + timedelta(days=self.days[person - 1])

    def matricule(self, person: int) -> str:
        return matricule.make(self.born(person), self.sequences[person - 1])


def directory(plan: NationalPlan) -> Iterator[dict[str, Any]]:
    """Chunk 0: the institutions (each registering its local patient id system) and the practitioners."""
    for key, name, city, postal, code, _ in INSTITUTIONS:
        yield {
            "resourceType": "Organization",
            "id": organization_id(key),
            "identifier": [{"system": ORGANIZATION_ID, "value": code}],
            "active": True,
            "name": name,
            "address": [{"city": city, "postalCode": postal, "country": "LU"}],
        }
    rng = random.Random(f"{plan.seed}:directory")
    for n in range(1, plan.practitioners + 1):
        female = rng.random() < 0.5
        family, given = _name(rng, female)
        code, specialty, _ = SPECIALTIES[draw(rng, _SPECIALTIES)]
        institution = INSTITUTIONS[draw(rng, INSTITUTION_WEIGHTS)][0]
        yield {
            "resourceType": "Practitioner",
            "id": practitioner_id(n),
            "identifier": [{"system": PRACTITIONER_ID, "value": f"{800000 + n}"}],
            "active": True,
            "name": [{"family": family, "given": given, "prefix": ["Dr"]}],
            "gender": "female" if female else "male",
        }
        yield {
            "resourceType": "PractitionerRole",
            "id": role_id(n),
            "active": True,
            "practitioner": {"reference": f"Practitioner/{practitioner_id(n)}"},
            "organization": {"reference": f"Organization/{organization_id(institution)}"},
            "specialty": [{"coding": [{"system": SNOMED, "code": code, "display": specialty}]}],
        }


def _name(rng: random.Random, female: bool) -> tuple[str, list[str]]:
    group = draw(rng, _GROUPS)
    _, surnames, women, men = NAME_GROUPS[group]
    names, weights = (women, _FEMALE[group]) if female else (men, _MALE[group])
    given = [names[draw(rng, weights)]]
    if rng.random() < 0.3:
        second = names[draw(rng, weights)]
        if second != given[0]:
            given.append(second)
    return surnames[draw(rng, _SURNAMES[group])], given


def chunk_persons(plan: NationalPlan, number: int) -> range:
    """The people (numbered from 1) of chunk ``number`` (1..plan.chunks)."""
    first = (number - 1) * plan.chunk_persons + 1
    return range(first, min(plan.patients, number * plan.chunk_persons) + 1)


def chunk(plan: NationalPlan, number: int) -> Iterator[dict[str, Any]]:
    """The resources of chunk ``number``: chunk 0 is the directory, then people by ``plan.chunk_persons``."""
    if number == 0:
        yield from directory(plan)
        return
    rng = random.Random(f"{plan.seed}:chunk:{number}")
    for person in chunk_persons(plan, number):
        yield from _person(plan, rng, person)


def _person(plan: NationalPlan, rng: random.Random, person: int) -> Iterator[dict[str, Any]]:
    female = rng.random() < 0.51
    family, given = _name(rng, female)
    born = plan.births.born(person)
    city, postal_zone, _ = CITIES[draw(rng, _CITIES)]
    home = {
        "line": [f"{rng.randrange(1, 120)}, {rng.choice(STREETS)}"],
        "postalCode": f"{postal_zone}{rng.randrange(0, 999):03d}",
        "city": city,
        "country": "LU",
    }
    phone = f"+352 6{rng.choice('2569')}1 {rng.randrange(100, 999)} {rng.randrange(100, 999)}"
    institution = draw(rng, INSTITUTION_WEIGHTS)
    person_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    common = {
        "active": True,
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
        "gender": "female" if female else "male",
        "birthDate": born.isoformat(),
        "address": [home],
    }
    official = {"use": "official", "system": NATIONAL_ID, "value": plan.births.matricule(person)}
    platform = {"use": "official", "system": PLATFORM_ID, "value": person_id}
    pid = patient_id(person)
    yield _patient(pid, [_local_id(institution, person), official, platform], family, given, common)
    if rng.random() < SECOND_RECORD_SHARE:
        other = _other_institution(rng, institution)
        local = _local_id(other, person)
        yield _patient(patient_id(person, "-b"), [local, official, platform], family, given, common)
    if rng.random() < NEAR_DUPLICATE_SHARE:
        other = _other_institution(rng, institution)
        own = {"use": "official", "system": PLATFORM_ID, "value": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        typo_family, typo_given = _near_duplicate(rng, family, given)
        yield _patient(patient_id(person, "-x"), [_local_id(other, person), own], typo_family, typo_given, common)
    subject = {"reference": f"Patient/{pid}"}
    if rng.random() < ACTIVE_SHARE:
        yield from record(plan, rng, person, subject, institution)
    yield from _prescriptions(plan, rng, person, subject)
    yield from _vaccinations(plan, rng, person, subject, born)


def _patient(
    res_id: str, identifiers: list[dict[str, str]], family: str, given: list[str], common: dict[str, Any]
) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": res_id,
        "identifier": identifiers,
        "name": [{"use": "official", "family": family, "given": given}],
        **common,
    }


def _local_id(institution: int, person: int) -> dict[str, str]:
    key = INSTITUTIONS[institution][0].upper()
    return {"use": "usual", "system": local_system(institution), "value": f"{key}-{person * 7 + institution:08d}"}


def _other_institution(rng: random.Random, institution: int) -> int:
    other = draw(rng, INSTITUTION_WEIGHTS)
    return other if other != institution else (institution + 1) % len(INSTITUTIONS)


def _near_duplicate(rng: random.Random, family: str, given: list[str]) -> tuple[str, list[str]]:
    """A record of the same person as a hospital typed it: a letter off, given names swapped, or no accents."""
    kind = rng.randrange(3)
    if kind == 0 and len(given) > 1:
        return family, list(reversed(given))
    if kind == 1 and _unaccented(family + "".join(given)) != family + "".join(given):
        return _unaccented(family), [_unaccented(g) for g in given]
    at = rng.randrange(1, len(family)) if len(family) > 1 else 0
    letter = rng.choice("aeinorstl")
    typo = family[:at] + letter + family[at + 1 :] if letter != family[at : at + 1] else family[:at] + family[at + 1 :]
    return typo, given


def _unaccented(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _prescriptions(
    plan: NationalPlan, rng: random.Random, person: int, subject: dict[str, str]
) -> Iterator[dict[str, Any]]:
    for n in range(1, min(99, poisson(rng, PRESCRIPTIONS_MEAN)) + 1):
        code, name, dosage = rng.choice(MEDICATIONS)
        yield {
            "resourceType": "MedicationRequest",
            "id": f"{LOCAL_PREFIX}-rx-{person:07d}-{n:02d}",
            "identifier": [{"system": PRESCRIPTION_ID, "value": prescription_number(person, n)}],
            "status": "active" if rng.random() < 0.3 else "completed",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": ATC, "code": code, "display": name}], "text": name},
            "subject": subject,
            "authoredOn": timestamp(rng, plan.as_of, 3 * 365),
            "requester": {"reference": f"PractitionerRole/{role_id(any_practitioner(rng, plan.practitioners))}"},
            "dosageInstruction": [{"text": dosage}],
        }


def _vaccinations(
    plan: NationalPlan, rng: random.Random, person: int, subject: dict[str, str], born: date
) -> Iterator[dict[str, Any]]:
    for n in range(1, poisson(rng, VACCINATIONS_MEAN) + 1):
        code, name = rng.choice(VACCINES)
        days = max(1, (plan.as_of - born).days)
        given = plan.as_of - timedelta(days=rng.randrange(0, days))
        yield {
            "resourceType": "Immunization",
            "id": f"{LOCAL_PREFIX}-vac-{person:07d}-{n:02d}",
            "status": "completed",
            "vaccineCode": {"coding": [{"system": ATC, "code": code, "display": name}], "text": name},
            "patient": subject,
            "occurrenceDateTime": given.isoformat(),
            "primarySource": True,
            "lotNumber": f"L{rng.randrange(10000, 99999)}",
            "performer": [
                {"actor": {"reference": f"PractitionerRole/{role_id(any_practitioner(rng, plan.practitioners))}"}}
            ],
        }


@dataclass(frozen=True)
class NationalSource:
    """The national dataset as the bulk loader reads it (``store/bulk.ChunkSource``)."""

    plan: NationalPlan
    name: str = "national"

    @property
    def chunk_count(self) -> int:
        return self.plan.chunks + 1  # the directory, then the people

    def parameters(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "patients": plan.patients,
            "documents_per_patient": plan.documents_per_patient,
            "seed": plan.seed,
            "as_of": plan.as_of.isoformat(),
            "chunk_persons": plan.chunk_persons,
        }

    def chunk(self, number: int) -> Iterator[dict[str, Any]]:
        return chunk(self.plan, number)
