"""A deterministic demo dataset: organizations, practitioners, patients and their records.

The same seed always gives the same resources and ids, so demo runs and tests are reproducible.
It is loaded as one transaction Bundle through the FHIR layer, exactly as a client would send it.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from reference_impl.auth.principal import Principal
from reference_impl.auth.scopes import Scopes
from reference_impl.fhir.errors import FhirError
from reference_impl.fhir.routing import FhirRequest
from reference_impl.services import matricule

if TYPE_CHECKING:
    from reference_impl.fhir.server import FhirServer

DEMO_SEED = 20261123
SEED_BASE = "urn:eqlab:seed"
# The platform itself loads the demo data: an internal principal, never a token anyone can hold.
SEEDER = Principal("eqlab-seed", "eqlab-seed", "system", Scopes.parse("system/*.cruds"), jti="internal", expires_at=0)
PRACTITIONER_SYSTEM = "urn:oid:1.3.182.3.1"
ORGANIZATION_SYSTEM = "urn:oid:1.3.182.3.2"
ORGANIZATIONS: list[tuple[str, str, str, str]] = [
    ("chl", "Centre Hospitalier de Luxembourg", "Luxembourg", "1210"),
    ("chdn", "Centre Hospitalier du Nord", "Ettelbruck", "9080"),
    ("chem", "Centre Hospitalier Emile Mayrisch", "Esch-sur-Alzette", "4005"),
    ("hrs", "Hôpitaux Robert Schuman", "Luxembourg", "2540"),
]
FAMILY = [
    "Schmit",
    "Muller",
    "Weber",
    "Wagner",
    "Hoffmann",
    "Thill",
    "Schroeder",
    "Reuter",
    "Kieffer",
    "Da Silva",
    "Ferreira",
    "Kremer",
]
GIVEN_F = ["Maddy", "Maggy", "Anne", "Léa", "Sophie", "Claire", "Emma", "Marie"]
GIVEN_M = ["Jean", "Luc", "Marc", "Tom", "Paul", "Noah", "Gilles", "Pit"]
SPECIALTIES = [("394814009", "General practice"), ("394579002", "Cardiology"), ("394537008", "Paediatric specialty")]
VITALS = [
    ("29463-7", "Body weight", "kg", 50.0, 110.0),
    ("8302-2", "Body height", "cm", 150.0, 200.0),
    ("8867-4", "Heart rate", "/min", 50.0, 110.0),
]


def demo_bundle(patients: int = 40, practitioners: int = 12, seed: int = DEMO_SEED) -> dict[str, Any]:
    rng = random.Random(seed)
    resources: list[dict[str, Any]] = []
    for key, name, city, postal in ORGANIZATIONS:
        resources.append(
            {
                "resourceType": "Organization",
                "id": f"org-{key}",
                "identifier": [{"system": ORGANIZATION_SYSTEM, "value": key.upper()}],
                "active": True,
                "name": name,
                "address": [{"city": city, "postalCode": postal, "country": "LU"}],
            }
        )
    for n in range(1, practitioners + 1):
        resources.extend(_practitioner(rng, n))
    for n in range(1, patients + 1):
        resources.extend(_patient_record(rng, n, practitioners))
    entries = [
        {
            "fullUrl": f"{r['resourceType']}/{r['id']}",
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _practitioner(rng: random.Random, n: int) -> list[dict[str, Any]]:
    female = rng.random() < 0.5
    code, specialty = rng.choice(SPECIALTIES)
    org = rng.choice(ORGANIZATIONS)[0]
    practitioner = {
        "resourceType": "Practitioner",
        "id": f"prac-{n:03d}",
        "identifier": [{"system": PRACTITIONER_SYSTEM, "value": f"{100000 + n * 7:06d}"}],
        "active": True,
        "name": [
            {"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN_F if female else GIVEN_M)], "prefix": ["Dr"]}
        ],
        "gender": "female" if female else "male",
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": f"role-{n:03d}",
        "active": True,
        "practitioner": {"reference": f"Practitioner/prac-{n:03d}"},
        "organization": {"reference": f"Organization/org-{org}"},
        "specialty": [{"coding": [{"system": "http://snomed.info/sct", "code": code, "display": specialty}]}],
    }
    return [practitioner, role]


def _patient_record(rng: random.Random, n: int, practitioners: int) -> list[dict[str, Any]]:
    female = rng.random() < 0.5
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 80 * 365))
    pid = f"pat-{n:04d}"
    gp = f"prac-{rng.randrange(1, practitioners + 1):03d}"
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": matricule.SYSTEM, "value": matricule.make(born, rng.randrange(100, 999))}],
        "active": True,
        "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN_F if female else GIVEN_M)]}],
        "gender": "female" if female else "male",
        "birthDate": born.isoformat(),
        "telecom": [{"system": "phone", "value": f"+352 621 {rng.randrange(100000, 999999)}"}],
        "address": [{"city": rng.choice(ORGANIZATIONS)[2], "country": "LU"}],
        "generalPractitioner": [{"reference": f"Practitioner/{gp}"}],
    }
    subject = {"reference": f"Patient/{pid}"}
    visit_start = f"{2025 + n % 2}-{1 + n % 12:02d}-{1 + n % 28:02d}T09:00:00Z"
    encounter = {
        "resourceType": "Encounter",
        "id": f"enc-{n:04d}",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": subject,
        "participant": [{"individual": {"reference": f"Practitioner/{gp}"}}],
        "period": {"start": visit_start},
    }
    observations = []
    for i, (loinc, label, unit, low, high) in enumerate(VITALS):
        observations.append(
            {
                "resourceType": "Observation",
                "id": f"obs-{n:04d}-{i}",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": label}], "text": label},
                "subject": subject,
                "encounter": {"reference": f"Encounter/enc-{n:04d}"},
                "effectiveDateTime": visit_start,
                "valueQuantity": {
                    "value": round(rng.uniform(low, high), 1),
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        )
    return [patient, encounter, *observations]


async def load_demo(server: FhirServer) -> None:
    """Load the demo dataset unless it is already there (idempotent across restarts)."""
    try:
        await server.handle(FhirRequest("GET", "Organization/org-chl", base_url=SEED_BASE, principal=SEEDER))
        return
    except FhirError as exc:
        if exc.status != 404:
            raise
    body = orjson.dumps(demo_bundle())
    headers = {"content-type": "application/fhir+json"}
    await server.handle(FhirRequest("POST", "", (), headers, body, SEED_BASE, principal=SEEDER))
