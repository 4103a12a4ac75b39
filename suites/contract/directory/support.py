"""What the directory checks share: a small directory of the check's own, made over the FHIR API.

A check never relies on directory data it did not make: ``Directory.create`` registers two
organizations (one inactive), an endpoint, a location and a service of the active one, two
practitioners (one inactive) and their roles of two specialties (one role inactive), each tagged with
the check's unique value and carrying codes nobody else uses, so searches scoped by the tag (or by
those codes) see only the check's data on a shared system.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import Resource, create, keys, search, tag

PRACTITIONER_ID = "urn:oid:1.3.182.3.1"
ORGANIZATION_ID = "urn:oid:1.3.182.3.2"
SNOMED = "http://snomed.info/sct"
CARDIOLOGY = "394579002"
GENERAL_PRACTICE = "394814009"


def code() -> str:
    """A practitioner or organization code no other check uses."""
    return str(secrets.randbelow(9 * 10**14) + 10**14)


def ref(resource: Resource) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def key(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def specialty(snomed: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": SNOMED, "code": snomed}]}]


def practitioner(unique: str, family: str, active: bool) -> Resource:
    return {
        "resourceType": "Practitioner",
        "identifier": [tag(unique), {"system": PRACTITIONER_ID, "value": code()}],
        "active": active,
        "name": [{"family": family, "given": ["Eqlab"], "prefix": ["Dr"]}],
    }


def role(unique: str, of: Resource, organization: Resource | None, snomed: str, active: bool) -> Resource:
    found: Resource = {
        "resourceType": "PractitionerRole",
        "identifier": [tag(unique)],
        "active": active,
        "practitioner": ref(of),
        "specialty": specialty(snomed),
    }
    if organization is not None:
        found["organization"] = ref(organization)
    return found


def code_of(resource: Resource, system: str) -> str:
    return next(str(i.get("value")) for i in resource.get("identifier", []) if i.get("system") == system)


@dataclass
class Directory:
    unique: str
    family: str  # of the practitioners, and the stem of every name here
    organization: Resource
    inactive_organization: Resource
    endpoint: Resource
    location: Resource
    service: Resource
    practitioner: Resource  # active, cardiology role at the organization
    inactive_practitioner: Resource  # general practice role (active itself) at the inactive organization
    role: Resource
    other_role: Resource  # of the inactive practitioner
    inactive_role: Resource  # the active practitioner's general practice role, inactive

    @classmethod
    def create(cls, client: EvidenceClient, unique: str) -> Directory:
        family = "Dirk" + unique.rsplit("-", 1)[-1]
        organization = create(client, _organization(unique, f"{family} Clinic", active=True))
        inactive_organization = create(client, _organization(unique, f"{family} Closed Clinic", active=False))
        endpoint = create(client, _endpoint(unique, organization))
        location = create(
            client,
            {
                "resourceType": "Location",
                "identifier": [tag(unique)],
                "status": "active",
                "name": f"{family} Site",
                "managingOrganization": ref(organization),
            },
        )
        service = create(
            client,
            {
                "resourceType": "HealthcareService",
                "identifier": [tag(unique)],
                "active": True,
                "name": f"{family} Cardiology",
                "providedBy": ref(organization),
                "location": [ref(location)],
                "specialty": specialty(CARDIOLOGY),
            },
        )
        active = create(client, practitioner(unique, family, active=True))
        inactive = create(client, practitioner(unique, family, active=False))
        role_ = create(client, role(unique, active, organization, CARDIOLOGY, active=True))
        other_role = create(client, role(unique, inactive, inactive_organization, GENERAL_PRACTICE, active=True))
        inactive_role = create(client, role(unique, active, None, GENERAL_PRACTICE, active=False))
        return cls(
            unique,
            family,
            organization,
            inactive_organization,
            endpoint,
            location,
            service,
            active,
            inactive,
            role_,
            other_role,
            inactive_role,
        )

    def scope(self) -> tuple[str, str]:
        return ("identifier", f"urn:eqlab:contract|{self.unique}")

    def found(self, client: EvidenceClient, path: str, *params: tuple[str, str], mode: str = "match") -> set[str]:
        """``Type/id`` of the ``mode`` entries of a search of ``path`` with ``params``, scoped to this
        directory (repeated ``identifier`` parameters AND: a code search stays scoped too)."""
        return keys(search(client, path, [*params, self.scope()]), mode)


def _organization(unique: str, name: str, active: bool) -> Resource:
    return {
        "resourceType": "Organization",
        "identifier": [tag(unique), {"system": ORGANIZATION_ID, "value": code()}],
        "active": active,
        "name": name,
    }


def _endpoint(unique: str, organization: Resource) -> Resource:
    return {
        "resourceType": "Endpoint",
        "identifier": [tag(unique)],
        "status": "active",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "hl7-fhir-rest",
        },
        "managingOrganization": ref(organization),
        "payloadType": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                                     "code": "any"}]}],
        "address": f"https://{unique}.example.org/fhir",
    }  # fmt: skip
