"""What the patient index checks share: institutions of their own, valid matricules, the feed and PIXm.

A check never relies on data it did not make. It registers an institution of its own (an active
Organization with a fresh directory code ``<n>`` in the directory, which makes ``urn:oid:1.3.182.2.4.2.<n>``
a local id system of the platform), feeds Patients under that system, and builds matricules that
nobody else uses (a random birth date and sequence with both check digits, as python-stdnum computes
them), so its records never link to anybody else's.
"""

from __future__ import annotations

import random
import secrets
from datetime import date, timedelta
from typing import Any

import httpx
from stdnum import luhn, verhoeff

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import FHIR_JSON, Resource, body_of, outcome_problems, shown, tag

NATIONAL_ID = "urn:oid:1.3.182.4.4"
PLATFORM_ID = "urn:oid:1.3.182.2.4.2"
LOCAL_ID_PREFIX = PLATFORM_ID + "."
ORGANIZATION_ID = "urn:oid:1.3.182.3.2"
UNKNOWN_DOMAIN = "urn:oid:2.999.42"  # the example arc of OIDs: no platform's identifier domain
SPEC_VALID = ("1893120105732", "1980000012324")
SPEC_INVALID = ("1893120105733", "1893120105742", "1994789587182", "2000060500127", "1998041799999")


def matricule(born: date | None = None) -> str:
    """A valid matricule no other check uses: birth date, random sequence, Luhn and Verhoeff digits."""
    rng = random.SystemRandom()
    born = born or date(1930, 1, 1) + timedelta(days=rng.randrange(0, 90 * 365))
    body = f"{born:%Y%m%d}{rng.randrange(1000):03d}"
    return f"{body}{luhn.calc_check_digit(body)}{verhoeff.calc_check_digit(body)}"


def national(value: str) -> dict[str, str]:
    return {"system": NATIONAL_ID, "value": value}


def register_institution(client: EvidenceClient, unique: str, active: bool = True) -> str:
    """An institution of this check in the directory; its local id system."""
    code = str(secrets.randbelow(9 * 10**14) + 10**14)
    organization = {
        "resourceType": "Organization",
        "identifier": [tag(unique), {"system": ORGANIZATION_ID, "value": code}],
        "active": active,
        "name": f"eqlab contract clinic {code}",
    }
    response = client.post("Organization", json=organization)
    assert response.status_code == 201, (
        f"registering an institution in the directory (POST Organization with identifier {ORGANIZATION_ID}|{code}, "
        f"data this check needs) answered {shown(response)}; expected 201"
    )
    return LOCAL_ID_PREFIX + code


def person(unique: str, system: str, local_id: str, *more: dict[str, Any], **fields: Any) -> Resource:
    """A Patient as an institution feeds it: its local id first, the check's tag, then ``more`` identifiers."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": local_id}, tag(unique), *more],
        "name": [{"family": fields.pop("family", "Kieffer"), "given": [fields.pop("given", "Anne")]}],
        **fields,
    }


def feed(client: EvidenceClient, patient: Resource, system: str, local_id: str) -> httpx.Response:
    """ITI-104: the institution's conditional update by its local id."""
    return client.put(
        "Patient", params={"identifier": f"{system}|{local_id}"}, json=patient, headers={"Content-Type": FHIR_JSON}
    )


def fed(client: EvidenceClient, patient: Resource, system: str, local_id: str, status: int = 201) -> Resource:
    response = feed(client, patient, system, local_id)
    assert response.status_code == status, (
        f"feeding a Patient (PUT Patient?identifier={system}|{local_id}) answered {shown(response)}; expected {status}"
    )
    return body_of(response, "the fed Patient")


def identifier_values(patient: Resource, system: str) -> list[str]:
    return [
        str(i.get("value"))
        for i in patient.get("identifier") or []
        if isinstance(i, dict) and i.get("system") == system and i.get("use") != "old"
    ]


def pix(client: EvidenceClient, source: str, *targets: str) -> httpx.Response:
    return client.get(
        "Patient/$ihe-pix", params=[("sourceIdentifier", source), *(("targetSystem", t) for t in targets)]
    )


def cross_references(response: httpx.Response, what: str) -> tuple[set[tuple[str, str]], set[str]]:
    """(targetIdentifier parts as (system, value), targetId references as ``Patient/<id>``) of a 200 answer."""
    assert response.status_code == 200, f"{what} answered {shown(response)}; expected 200 with a Parameters resource"
    parameters = body_of(response, what)
    assert parameters.get("resourceType") == "Parameters", (
        f"{what} answered a {parameters.get('resourceType')}, expected a Parameters resource (ITI-83)"
    )
    identifiers: set[tuple[str, str]] = set()
    records: set[str] = set()
    for part in parameters.get("parameter") or []:
        if not isinstance(part, dict):
            continue
        if part.get("name") == "targetIdentifier" and isinstance(part.get("valueIdentifier"), dict):
            identifiers.add((str(part["valueIdentifier"].get("system")), str(part["valueIdentifier"].get("value"))))
        if part.get("name") == "targetId" and isinstance(part.get("valueReference"), dict):
            reference = str(part["valueReference"].get("reference", ""))
            records.add("Patient/" + reference.rsplit("Patient/", 1)[-1].split("/_history", 1)[0])
    return identifiers, records


def assert_error(response: httpx.Response, status: int, what: str) -> None:
    """``response`` is the error ``status`` as an OperationOutcome."""
    assert response.status_code == status, f"{what} answered {shown(response)}; expected {status}"
    problems = outcome_problems(response)
    assert not problems, f"{what} answered {status} but not with a usable OperationOutcome: " + "; ".join(problems)
