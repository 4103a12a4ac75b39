"""The patient index's demo data: the cases a patient index exists for, with stable ids.

- Maddy Schmitt is known to three hospitals under three local ids: three Patient resources, one
  matricule, one platform id (only the first record carries it; the index links the others).
- Maggy Schmitt is a near-duplicate of Maddy (same birth date and family, one letter off in the
  given name, another matricule): a probable match, never linked automatically.
- Luc and Tom Hoffmann are twins: same family, birth date and address, different given names and
  matricules: two people, whatever a careless matcher thinks.
- A few more people, each known to one institution.

The local id systems are those of the demo directory's institutions (``seed/demo.py``, directory
codes 1001-1004); the demo load refuses a Patient naming a system the directory does not register.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from reference_impl.naming import LOCAL_ID_PREFIX, NATIONAL_ID, PLATFORM_ID
from reference_impl.services.mpi import matricule

LOCAL_SYSTEMS = {"chl": "1001", "chdn": "1002", "chem": "1003", "hrs": "1004"}
_PLATFORM_IDS = uuid.UUID("6b1f3c1e-2a0d-4f7e-9c51-4d3e2b8a9f10")  # namespace of the demo's platform ids


def local_system(institution: str) -> str:
    return LOCAL_ID_PREFIX + LOCAL_SYSTEMS[institution]


def platform_id(person: str) -> str:
    """A stable platform id for a demo person (the index assigns random ones to everybody else)."""
    return str(uuid.uuid5(_PLATFORM_IDS, person))


def _patient(
    res_id: str,
    institution: str,
    local_id: str,
    given: str,
    family: str,
    gender: str,
    born: date,
    sequence: int,
    address: tuple[str, str, str],
    phone: str,
    person: str | None = None,
) -> dict[str, Any]:
    identifier = [
        {"use": "usual", "system": local_system(institution), "value": local_id},
        {"use": "official", "system": NATIONAL_ID, "value": matricule.make(born, sequence)},
    ]
    if person is not None:
        identifier.append({"use": "official", "system": PLATFORM_ID, "value": platform_id(person)})
    line, postal, city = address
    return {
        "resourceType": "Patient",
        "id": res_id,
        "identifier": identifier,
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
        "gender": gender,
        "birthDate": born.isoformat(),
        "address": [{"line": [line], "postalCode": postal, "city": city, "country": "LU"}],
    }


MADDY_BORN = date(1983, 8, 12)
MADDY_HOME = ("12, rue de la Gare", "3510", "Dudelange")
TWINS_BORN = date(2012, 5, 14)
TWINS_HOME = ("4, am Duerf", "9170", "Mertzig")


def demo_patients() -> list[dict[str, Any]]:
    return [
        _patient(
            "mpi-maddy-chl",
            "chl",
            "CHL-0047113",
            "Maddy",
            "Schmitt",
            "female",
            MADDY_BORN,
            467,
            MADDY_HOME,
            "+352 621 482 913",
            person="maddy-schmitt",
        ),
        _patient(
            "mpi-maddy-hrs",
            "hrs",
            "HRS-2209187",
            "Maddy",
            "Schmitt",
            "female",
            MADDY_BORN,
            467,
            MADDY_HOME,
            "+352 621 482 913",
        ),
        _patient(
            "mpi-maddy-chem",
            "chem",
            "CHEM-88123",
            "Maddy",
            "Schmitt",
            "female",
            MADDY_BORN,
            467,
            MADDY_HOME,
            "+352 621 482 913",
        ),
        _patient(
            "mpi-maggy-chdn",
            "chdn",
            "CHDN-551204",
            "Maggy",
            "Schmitt",
            "female",
            MADDY_BORN,
            471,
            ("7, rue Principale", "9012", "Ettelbruck"),
            "+352 691 230 557",
            person="maggy-schmitt",
        ),
        _patient(
            "mpi-luc-hoffmann",
            "chdn",
            "CHDN-601877",
            "Luc",
            "Hoffmann",
            "male",
            TWINS_BORN,
            693,
            TWINS_HOME,
            "+352 26 88 41 20",
        ),
        _patient(
            "mpi-tom-hoffmann",
            "chdn",
            "CHDN-601878",
            "Tom",
            "Hoffmann",
            "male",
            TWINS_BORN,
            694,
            TWINS_HOME,
            "+352 26 88 41 20",
        ),
        _patient(
            "mpi-jean-weber",
            "chl",
            "CHL-0012877",
            "Jean",
            "Weber",
            "male",
            date(1971, 11, 2),
            587,
            ("31, avenue de la Liberté", "1931", "Luxembourg"),
            "+352 661 904 218",
        ),
        _patient(
            "mpi-lea-thill",
            "chem",
            "CHEM-90455",
            "Léa",
            "Thill",
            "female",
            date(1994, 9, 28),
            745,
            ("2, rue du Brill", "4041", "Esch-sur-Alzette"),
            "+352 621 377 045",
        ),
    ]
