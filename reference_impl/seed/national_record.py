"""A person's shared care record in the national dataset (``national.py`` decides who has one).

On an active record (``ACTIVE_SHARE``): care relationships (a referring doctor, a treating
professional for six months) as ``services/dsp/access.py`` reads them; DSP documents of the 27 types
in the agency's published proportions (``services/dsp/demo.PUBLISHED_COUNTS``, March 2017: the only
published breakdown), small text content inline; one SubmissionSet; and the record's access log,
professionals' past reads of its documents as the platform audited them (AuditEvents, BALP).
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, Protocol

from reference_impl.audit.balp import SUCCESS, AuditRecord, audit_event
from reference_impl.auth.principal import Principal
from reference_impl.auth.scopes import Scopes
from reference_impl.seed.national_data import INSTITUTIONS
from reference_impl.seed.national_draws import (
    INSTITUTION_WEIGHTS,
    LOCAL_PREFIX,
    any_practitioner,
    cumulative_weights,
    draw,
    organization_id,
    poisson,
    practitioner_id,
    role_id,
    timestamp,
)
from reference_impl.services.dsp.controls import DSP_SYSTEM, REFERENT, RELATIONSHIP_DAYS, TREATING
from reference_impl.services.dsp.demo import PUBLISHED_COUNTS, SUBMISSION_SET
from reference_impl.services.dsp.doctypes import SYSTEM as DOCUMENT_TYPES
from reference_impl.services.dsp.doctypes import document_types


class RecordPlan(Protocol):
    """What a record needs of the national plan (``national.NationalPlan``, which imports this module)."""

    @property
    def seed(self) -> int: ...
    @property
    def as_of(self) -> date: ...
    @property
    def documents_per_patient(self) -> float: ...
    @property
    def practitioners(self) -> int: ...


ACTIVE_SHARE = 687_824 / 1_018_484  # records with at least one document (the agency's figures)
REFERENT_SHARE = 0.6  # active records with a referring doctor
TREATING_SHARE = 0.3  # active records with a treating professional (six months)
# Past accesses in an active record's access log (AuditEvents of professionals' document reads): a
# platform in service has an audit trail, and a store loaded without one would have the database plan
# the trail's searches for an empty table.
ACCESSES_MEAN = 3.0
MAX_DOCUMENTS = 200  # documents of one person
ACCESS_CLIENT = "national-practice-software"  # the client application named in the generated access log
_DOCUMENT_CODES = tuple(PUBLISHED_COUNTS)
_DOCUMENT_WEIGHTS = cumulative_weights(list(PUBLISHED_COUNTS.values()))


def record(
    plan: RecordPlan, rng: random.Random, person: int, subject: dict[str, str], institution: int
) -> Iterator[dict[str, Any]]:
    """The person's shared care record: care relationships, documents, their SubmissionSet, its access log."""
    referent, treating = any_practitioner(rng, plan.practitioners), any_practitioner(rng, plan.practitioners)
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
        author = rng.choice((referent, treating, any_practitioner(rng, plan.practitioners)))
        custodian = INSTITUTIONS[institution if rng.random() < 0.7 else draw(rng, INSTITUTION_WEIGHTS)][0]
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
    plan: RecordPlan, person: int, subject: dict[str, str], documents: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Professionals' past reads of the person's documents, as the platform audited them (BALP)."""
    rng = random.Random(f"{plan.seed}-access-{person}")  # its own draws: the rest of the person is unchanged
    for n in range(1, poisson(rng, ACCESSES_MEAN) + 1):
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
        audit = AuditRecord(
            "R", "read", SUCCESS, f"GET {read} -> 200", principal, patients=(subject["reference"],), entities=(read,)
        )
        yield {"id": f"{LOCAL_PREFIX}-a{person:07d}-{n:02d}", **audit_event(audit, timestamp(rng, plan.as_of, 365))}


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
    plan: RecordPlan, rng: random.Random, res_id: str, subject: dict[str, str], author: int, custodian: str
) -> dict[str, Any]:
    """A document as provided (ITI-65): typed, current, its small text content inline (sealed at rest)."""
    code = _DOCUMENT_CODES[draw(rng, _DOCUMENT_WEIGHTS)]
    title = document_types()[code]
    when = timestamp(rng, plan.as_of, 8 * 365)
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
