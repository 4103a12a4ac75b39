"""A deterministic demo dataset: organizations, practitioners, patients and their records.

The same seed always gives the same resources and ids, so demo runs and tests are reproducible.
It is loaded as one transaction Bundle through the FHIR layer, exactly as a client would send it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from reference_impl.naming import ORGANIZATION_ID, PRACTITIONER_ID
from reference_impl.platform import is_stored, run_internal
from reference_impl.rest.server import FhirServer
from reference_impl.services.descriptor import Service
from reference_impl.services.mpi import matricule

DEMO_SEED = 20261123
# (key, name, city, postal code, directory code): the directory code <n> registers the institution's local
# patient id system urn:oid:1.3.182.2.4.2.<n> in the patient index (services/mpi/demo.py uses them).
ORGANIZATIONS: list[tuple[str, str, str, str, str]] = [
    ("chl", "Centre Hospitalier de Luxembourg", "Luxembourg", "1210", "1001"),
    ("chdn", "Centre Hospitalier du Nord", "Ettelbruck", "9080", "1002"),
    ("chem", "Centre Hospitalier Emile Mayrisch", "Esch-sur-Alzette", "4005", "1003"),
    ("hrs", "Hôpitaux Robert Schuman", "Luxembourg", "2540", "1004"),
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
    for key, name, city, postal, code in ORGANIZATIONS:
        resources.append(
            {
                "resourceType": "Organization",
                "id": f"org-{key}",
                "identifier": [{"system": ORGANIZATION_ID, "value": code}],
                "active": True,
                "name": name,
                "address": [{"city": city, "postalCode": postal, "country": "LU"}],
            }
        )
    for n in range(1, practitioners + 1):
        resources.extend(_practitioner(rng, n))
    for n in range(1, patients + 1):
        resources.extend(_patient_record(rng, n, practitioners))
    return {"resourceType": "Bundle", "type": "transaction", "entry": [_entry(r) for r in resources]}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    """A transaction entry storing ``resource`` under its own id (the demo's ids are fixed)."""
    path = f"{resource['resourceType']}/{resource['id']}"
    return {"fullUrl": path, "resource": resource, "request": {"method": "PUT", "url": path}}


def _practitioner(rng: random.Random, n: int) -> list[dict[str, Any]]:
    female = rng.random() < 0.5
    code, specialty = rng.choice(SPECIALTIES)
    org = rng.choice(ORGANIZATIONS)[0]
    practitioner = {
        "resourceType": "Practitioner",
        "id": f"prac-{n:03d}",
        "identifier": [{"system": PRACTITIONER_ID, "value": f"{100000 + n * 7:06d}"}],
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


async def load_demo(server: FhirServer, services: Iterable[Service] = ()) -> None:
    """Load the demo dataset, with the demo data of ``services``, unless it is already there (idempotent
    across restarts)."""
    if await is_stored(server, "Organization/org-chl"):
        return
    bundle = demo_bundle()
    for service in services:
        if service.demo_data is not None:
            bundle["entry"] += [_entry(resource) for resource in service.demo_data()]
    await run_internal(server, bundle)
