"""The directory's demo data, with stable ids, on top of the base demo's organizations and practitioners.

- Each of the four demo institutions (``seed/demo.py``: org-chl, org-chdn, org-chem, org-hrs) gets a
  Location (the main site; CHL also an emergency department within it), a HealthcareService and the
  FHIR Endpoint of its system.
- Dr Henri Kremer has retired: his Practitioner is inactive and his role (still marked active) is the
  role of an inactive practitioner. The demo user ``retired1`` is him: the sign-in refuses him.
- Dr Sophie Thill moved from CHEM to CHL: her CHEM role is inactive, her CHL role active.
"""

from __future__ import annotations

from typing import Any

from reference_impl.naming import PRACTITIONER_ID

SNOMED = "http://snomed.info/sct"
CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
PAYLOAD_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-payload-type"
# (institution key, site name, city, postal code, service, specialty SNOMED CT code and display)
SITES = [
    ("chl", "CHL Centre", "Luxembourg", "1210", "cardiology", ("394579002", "Cardiology")),
    ("chdn", "CHdN Ettelbruck", "Ettelbruck", "9080", "general-practice", ("394814009", "General practice")),
    ("chem", "CHEM Esch", "Esch-sur-Alzette", "4005", "general-practice", ("394814009", "General practice")),
    ("hrs", "HRS Kirchberg", "Luxembourg", "2540", "paediatrics", ("394537008", "Paediatric specialty")),
]
RETIRED_PRACTITIONER = "prac-retired"
RETIRED_ROLE = "role-retired"  # active itself, but the role of an inactive practitioner
MOVED_PRACTITIONER = "prac-moved"
INACTIVE_ROLE = "role-moved-chem"  # inactive: the practitioner left CHEM
ACTIVE_ROLE = "role-moved-chl"


def _site(key: str, name: str, city: str, postal: str) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": f"loc-{key}",
        "status": "active",
        "name": name,
        "mode": "instance",
        "address": {"city": city, "postalCode": postal, "country": "LU"},
        "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                                     "code": "bu", "display": "Building"}]},
        "managingOrganization": {"reference": f"Organization/org-{key}"},
        "endpoint": [{"reference": f"Endpoint/ep-{key}-fhir"}],
    }  # fmt: skip


def _endpoint(key: str) -> dict[str, Any]:
    return {
        "resourceType": "Endpoint",
        "id": f"ep-{key}-fhir",
        "status": "active",
        "connectionType": {"system": CONNECTION_TYPES, "code": "hl7-fhir-rest"},
        "name": f"{key.upper()} FHIR server",
        "managingOrganization": {"reference": f"Organization/org-{key}"},
        "payloadType": [{"coding": [{"system": PAYLOAD_TYPES, "code": "any"}]}],
        "payloadMimeType": ["application/fhir+json"],
        "address": f"https://fhir.{key}.example.lu/fhir",
    }


def _service(key: str, service: str, specialty: tuple[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "HealthcareService",
        "id": f"hcs-{key}-{service}",
        "active": True,
        "providedBy": {"reference": f"Organization/org-{key}"},
        "specialty": [{"coding": [{"system": SNOMED, "code": specialty[0], "display": specialty[1]}]}],
        "location": [{"reference": f"Location/loc-{key}"}],
        "name": f"{specialty[1]} ({key.upper()})",
        "endpoint": [{"reference": f"Endpoint/ep-{key}-fhir"}],
    }


def _practitioner(res_id: str, code: str, given: str, family: str, gender: str, active: bool) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": res_id,
        "identifier": [{"system": PRACTITIONER_ID, "value": code}],
        "active": active,
        "name": [{"family": family, "given": [given], "prefix": ["Dr"]}],
        "gender": gender,
    }


def _role(res_id: str, practitioner: str, key: str, specialty: tuple[str, str], active: bool) -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": res_id,
        "active": active,
        "practitioner": {"reference": f"Practitioner/{practitioner}"},
        "organization": {"reference": f"Organization/org-{key}"},
        "specialty": [{"coding": [{"system": SNOMED, "code": specialty[0], "display": specialty[1]}]}],
        "location": [{"reference": f"Location/loc-{key}"}],
    }


def demo_directory() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    for key, name, city, postal, service, specialty in SITES:
        resources += [_endpoint(key), _site(key, name, city, postal), _service(key, service, specialty)]
    emergency = {
        **_site("chl", "CHL Urgences", "Luxembourg", "1210"),
        "id": "loc-chl-emergency",
        "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                                     "code": "wa", "display": "Ward"}]},
        "partOf": {"reference": "Location/loc-chl"},
    }  # fmt: skip
    general, cardiology = ("394814009", "General practice"), ("394579002", "Cardiology")
    resources += [
        emergency,
        _practitioner(RETIRED_PRACTITIONER, "200001", "Henri", "Kremer", "male", active=False),
        _role(RETIRED_ROLE, RETIRED_PRACTITIONER, "chdn", general, active=True),
        _practitioner(MOVED_PRACTITIONER, "200002", "Sophie", "Thill", "female", active=True),
        _role(INACTIVE_ROLE, MOVED_PRACTITIONER, "chem", cardiology, active=False),
        _role(ACTIVE_ROLE, MOVED_PRACTITIONER, "chl", cardiology, active=True),
    ]
    return resources
