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
- on an active record (``ACTIVE_SHARE``), DSP documents of the 27 types in the agency's published
  proportions (``services/dsp/demo.PUBLISHED_COUNTS``, March 2017: the only published breakdown),
  small text content inline, one SubmissionSet per person; care relationships (a referring doctor,
  a treating professional for six months) as ``services/dsp/access.py`` reads them;
- prescriptions (MedicationRequest with the business identifier ``urn:oid:1.3.182.5.1``) and
  vaccinations (Immunization).

Names: frequent Luxembourg surnames and the resident population's larger minorities (Portuguese,
French, Italian, Belgian, German, from the Balkans) with their STATEC shares of the population
(rounded), and within each group a Zipf-like frequency by rank: plausible, not a published count.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import random
import unicodedata
import uuid
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from reference_impl.audit.balp import SUCCESS, AuditRecord, audit_event
from reference_impl.auth.principal import Principal
from reference_impl.auth.scopes import Scopes
from reference_impl.naming import LOCAL_ID_PREFIX, NATIONAL_ID, ORGANIZATION_ID, PLATFORM_ID, PRACTITIONER_ID
from reference_impl.seed.national_data import (
    CITIES,
    INSTITUTIONS,
    MEDICATIONS,
    NAME_GROUPS,
    SPECIALTIES,
    STREETS,
    VACCINES,
)
from reference_impl.services.dsp.controls import DSP_SYSTEM, REFERENT, RELATIONSHIP_DAYS, TREATING
from reference_impl.services.dsp.demo import PUBLISHED_COUNTS, SUBMISSION_SET
from reference_impl.services.dsp.doctypes import SYSTEM as DOCUMENT_TYPES
from reference_impl.services.dsp.doctypes import document_types
from reference_impl.services.mpi import matricule

NATIONAL_SEED = 20261204
CHUNK_PERSONS = 500  # people per chunk: one transaction of the loader, a few thousand resources
ACTIVE_SHARE = 687_824 / 1_018_484  # records with at least one document (the agency's figures)
PEOPLE_PER_PRACTITIONER = 300
SECOND_RECORD_SHARE = 0.08  # people known to a second institution
NEAR_DUPLICATE_SHARE = 0.02  # people with a near-duplicate record the index cannot link
REFERENT_SHARE = 0.6  # active records with a referring doctor
TREATING_SHARE = 0.3  # active records with a treating professional (six months)
PRESCRIPTIONS_MEAN = 2.0
VACCINATIONS_MEAN = 1.5
# Past accesses in an active record's access log (AuditEvents of professionals' document reads): a
# platform in service has an audit trail, and a store loaded without one would have the database plan
# the trail's searches for an empty table.
ACCESSES_MEAN = 3.0
MAX_DOCUMENTS = 200  # documents of one person
PRESCRIPTION_ID = "urn:oid:1.3.182.5.1"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
FIRST_BIRTH = date(1900, 1, 1)  # birth days are counted from it (2 bytes each: until 2079)
ACCESS_CLIENT = "national-practice-software"  # the client application named in the generated access log
LOCAL_PREFIX = "nat"  # ids of the national dataset: nat-p0000001, nat-d0000001-001... (demo ids differ)


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _zipf(count: int) -> list[float]:
    """Cumulative weights of ``count`` names by rank, frequency ~ 1 / rank^0.9."""
    return _cumulative([1 / rank**0.9 for rank in range(1, count + 1)])


_GROUPS = _cumulative([g[0] for g in NAME_GROUPS])
_SURNAMES = [_zipf(len(g[1])) for g in NAME_GROUPS]
_FEMALE = [_zipf(len(g[2])) for g in NAME_GROUPS]
_MALE = [_zipf(len(g[3])) for g in NAME_GROUPS]
_INSTITUTIONS = _cumulative([i[5] for i in INSTITUTIONS])
_CITIES = _cumulative([c[2] for c in CITIES])
_SPECIALTIES = _cumulative([s[2] for s in SPECIALTIES])
_DOCUMENT_CODES = tuple(PUBLISHED_COUNTS)
_DOCUMENT_WEIGHTS = _cumulative(list(PUBLISHED_COUNTS.values()))
# Ages: a population pyramid of Luxembourg's shape (rounded shares per decade of age, 0-9 ... 90-99).
_AGE_DECADES = _cumulative([0.11, 0.11, 0.12, 0.15, 0.15, 0.14, 0.11, 0.07, 0.03, 0.01])


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
            decade = _draw(rng, _AGE_DECADES)
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


def _draw(rng: random.Random, cumulative: list[float]) -> int:
    """An index drawn with the weights ``cumulative`` sums (``random.choices`` without building a list)."""
    return bisect.bisect_left(cumulative, rng.random() * cumulative[-1])


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
        code, specialty, _ = SPECIALTIES[_draw(rng, _SPECIALTIES)]
        institution = INSTITUTIONS[_draw(rng, _INSTITUTIONS)][0]
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
    group = _draw(rng, _GROUPS)
    _, surnames, women, men = NAME_GROUPS[group]
    names, weights = (women, _FEMALE[group]) if female else (men, _MALE[group])
    given = [names[_draw(rng, weights)]]
    if rng.random() < 0.3:
        second = names[_draw(rng, weights)]
        if second != given[0]:
            given.append(second)
    return surnames[_draw(rng, _SURNAMES[group])], given


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
    city, postal_zone, _ = CITIES[_draw(rng, _CITIES)]
    home = {
        "line": [f"{rng.randrange(1, 120)}, {rng.choice(STREETS)}"],
        "postalCode": f"{postal_zone}{rng.randrange(0, 999):03d}",
        "city": city,
        "country": "LU",
    }
    phone = f"+352 6{rng.choice('2569')}1 {rng.randrange(100, 999)} {rng.randrange(100, 999)}"
    institution = _draw(rng, _INSTITUTIONS)
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
        yield from _record(plan, rng, person, subject, institution)
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
    other = _draw(rng, _INSTITUTIONS)
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


def _when(rng: random.Random, plan: NationalPlan, within_days: int) -> str:
    moment = plan.as_of - timedelta(days=rng.randrange(1, within_days))
    return f"{moment.isoformat()}T{rng.randrange(7, 19):02d}:{rng.randrange(60):02d}:00Z"


def _practitioner(plan: NationalPlan, rng: random.Random) -> int:
    return rng.randrange(1, plan.practitioners + 1)


def _record(
    plan: NationalPlan, rng: random.Random, person: int, subject: dict[str, str], institution: int
) -> Iterator[dict[str, Any]]:
    """The person's shared care record: care relationships, documents, their SubmissionSet."""
    referent, treating = _practitioner(plan, rng), _practitioner(plan, rng)
    if rng.random() < REFERENT_SHARE:
        start = plan.as_of - timedelta(days=rng.randrange(30, 3650))
        yield _care_team(f"{LOCAL_PREFIX}-ref-{person:07d}", subject, f"Practitioner/{practitioner_id(referent)}",
                         REFERENT, {"start": start.isoformat()})  # fmt: skip
    if rng.random() < TREATING_SHARE:
        start = plan.as_of - timedelta(days=rng.randrange(1, 150))
        period = {"start": start.isoformat(), "end": (start + timedelta(days=RELATIONSHIP_DAYS)).isoformat()}
        yield _care_team(f"{LOCAL_PREFIX}-care-{person:07d}", subject, f"PractitionerRole/{role_id(treating)}",
                         TREATING, period)  # fmt: skip
    mean = plan.documents_per_patient / ACTIVE_SHARE
    count = min(MAX_DOCUMENTS, 1 + round(rng.expovariate(1 / (mean - 1)))) if mean > 1 else 1
    if plan.documents_per_patient == 0:
        return
    documents = []
    for n in range(1, count + 1):
        author = rng.choice((referent, treating, _practitioner(plan, rng)))
        custodian = INSTITUTIONS[institution if rng.random() < 0.7 else _draw(rng, _INSTITUTIONS)][0]
        documents.append(_document(plan, rng, f"{LOCAL_PREFIX}-d{person:07d}-{n:03d}", subject, author, custodian))
        yield documents[-1]
    yield {
        "resourceType": "List",
        "id": f"{LOCAL_PREFIX}-ss-{person:07d}",
        "identifier": [{"use": "usual", "system": "urn:ietf:rfc:3986", "value": _urn(rng)}],
        "status": "current",
        "mode": "working",
        "code": {"coding": [SUBMISSION_SET]},
        "subject": subject,
        "date": max(d["date"] for d in documents),
        "source": documents[0]["author"][0],
        "entry": [{"item": {"reference": f"DocumentReference/{d['id']}"}} for d in documents],
    }
    yield from _access_log(plan, person, subject, documents)


def _access_log(
    plan: NationalPlan, person: int, subject: dict[str, str], documents: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Professionals' past reads of the person's documents, as the platform audited them (BALP)."""
    rng = random.Random(f"{plan.seed}-access-{person}")  # its own draws: the rest of the person is unchanged
    for n in range(1, _poisson(rng, ACCESSES_MEAN) + 1):
        document = rng.choice(documents)
        reader = document["author"][0]["reference"]
        principal = Principal(
            client_id=ACCESS_CLIENT,
            subject=reader.split("/", 1)[1],
            role="doctor",
            scopes=Scopes.parse("user/DocumentReference.rs"),
            jti=f"{LOCAL_PREFIX}-t{person:07d}-{n:02d}",
            expires_at=0,
            fhir_user=reader,
            purpose_of_use="TREAT",
        )
        read = f"DocumentReference/{document['id']}"
        record = AuditRecord(
            "R", "read", SUCCESS, f"GET {read} -> 200", principal, patients=(subject["reference"],), entities=(read,)
        )
        yield {"id": f"{LOCAL_PREFIX}-a{person:07d}-{n:02d}", **audit_event(record, _when(rng, plan, 365))}


def _care_team(res_id: str, subject: dict[str, str], member: str, kind: str, period: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "id": res_id,
        "status": "active",
        "category": [{"coding": [{"system": DSP_SYSTEM, "code": kind}]}],
        "subject": subject,
        "participant": [{"member": {"reference": member}}],
        "period": period,
    }


def _urn(rng: random.Random) -> str:
    return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def _document(
    plan: NationalPlan, rng: random.Random, res_id: str, subject: dict[str, str], author: int, custodian: str
) -> dict[str, Any]:
    """A document as provided (ITI-65): typed, current, its small text content inline (sealed at rest)."""
    code = _DOCUMENT_CODES[_draw(rng, _DOCUMENT_WEIGHTS)]
    title = document_types()[code]
    when = _when(rng, plan, 8 * 365)
    data = f"{title}\n{when[:10]}\n\nDocument {res_id} du dossier de soins partagé.\n".encode()
    return {
        "resourceType": "DocumentReference",
        "id": res_id,
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": _urn(rng)},
        "status": "current",
        "type": {"coding": [{"system": DOCUMENT_TYPES, "code": code, "display": title}]},
        "subject": subject,
        "date": when,
        "author": [{"reference": f"PractitionerRole/{role_id(author)}"}],
        "custodian": {"reference": f"Organization/{organization_id(custodian)}"},
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "language": "fr",
                    "data": base64.b64encode(data).decode(),
                    "size": len(data),
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(),
                    "title": title,
                    "creation": when,
                }
            }
        ],
    }


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: means here are small)."""
    limit, count, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _prescriptions(
    plan: NationalPlan, rng: random.Random, person: int, subject: dict[str, str]
) -> Iterator[dict[str, Any]]:
    for n in range(1, min(99, _poisson(rng, PRESCRIPTIONS_MEAN)) + 1):
        code, name, dosage = rng.choice(MEDICATIONS)
        yield {
            "resourceType": "MedicationRequest",
            "id": f"{LOCAL_PREFIX}-rx-{person:07d}-{n:02d}",
            "identifier": [{"system": PRESCRIPTION_ID, "value": prescription_number(person, n)}],
            "status": "active" if rng.random() < 0.3 else "completed",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": ATC, "code": code, "display": name}], "text": name},
            "subject": subject,
            "authoredOn": _when(rng, plan, 3 * 365),
            "requester": {"reference": f"PractitionerRole/{role_id(_practitioner(plan, rng))}"},
            "dosageInstruction": [{"text": dosage}],
        }


def _vaccinations(
    plan: NationalPlan, rng: random.Random, person: int, subject: dict[str, str], born: date
) -> Iterator[dict[str, Any]]:
    for n in range(1, _poisson(rng, VACCINATIONS_MEAN) + 1):
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
            "performer": [{"actor": {"reference": f"PractitionerRole/{role_id(_practitioner(plan, rng))}"}}],
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
