"""A reference platform with the demo data, on SQLite and on PostgreSQL, over real HTTP with real tokens.

One server per backend and module: the demo seed takes seconds. Each test that writes uses data of its
own (``unique`` identifiers), so tests of one module share the server without seeing each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reference_impl.naming import LOCAL_ID_PREFIX, NATIONAL_ID, ORGANIZATION_ID
from tests.conftest import BACKENDS
from tests.support.servers import demo_platform
from tests.support.tokens import mint

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@dataclass
class Platform:
    client: httpx.Client  # with a system token allowed everything
    app: FastAPI
    origin: str

    def token(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.app, self.origin, **claims)}"}

    def feed(self, patient: dict[str, Any], system: str, value: str, **headers: str) -> httpx.Response:
        """ITI-104: the institution's conditional update by its local id."""
        return self.client.put(
            "Patient", params={"identifier": f"{system}|{value}"}, json=patient, headers={**FHIR_JSON, **headers}
        )

    def institution(self, active: bool = True) -> str:
        """A new institution in the directory; its local id system."""
        code = str(uuid.uuid4().int % 10**12)
        organization = {
            "resourceType": "Organization",
            "identifier": [{"system": ORGANIZATION_ID, "value": code}],
            "active": active,
            "name": f"Clinique {code}",
        }
        response = self.client.post("Organization", json=organization, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        return LOCAL_ID_PREFIX + code

    def pix(self, source: str, *targets: str) -> httpx.Response:
        return self.client.get(
            "Patient/$ihe-pix", params=[("sourceIdentifier", source), *(("targetSystem", t) for t in targets)]
        )


@pytest.fixture(scope="module", params=BACKENDS)
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with demo_platform(request, tmp_path_factory) as started:
        yield Platform(started.client, started.app, started.origin)


def person(local_system: str, local_id: str, family: str = "Kieffer", **fields: Any) -> dict[str, Any]:
    """A Patient as an institution feeds it: its local id, and whatever else ``fields`` add."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": local_system, "value": local_id}, *fields.pop("identifier", [])],
        "name": [{"family": family, "given": fields.pop("given", ["Anne"])}],
        **fields,
    }


def national(value: str) -> dict[str, str]:
    return {"system": NATIONAL_ID, "value": value}


def values(patient: dict[str, Any], system: str) -> list[str]:
    return [i["value"] for i in patient.get("identifier", []) if i.get("system") == system]
