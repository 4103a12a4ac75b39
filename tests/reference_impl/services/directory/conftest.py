"""A reference platform with the demo data (the directory's included), on SQLite and on PostgreSQL, over
real HTTP: a system token minted with the server's key, and users who sign in through its own pages.

One server per backend and module: the demo seed takes seconds. Tests that change the directory do it
on resources of their own, so the tests of a module share the server without seeing each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_impl.naming import PRACTITIONER_ID
from tests.conftest import BACKENDS
from tests.reference_impl.auth.conftest import AuthLab, make_app
from tests.support.postgres import drop_schema, new_schema_url
from tests.support.servers import sqlite_url, threaded_server
from tests.support.tokens import mint

FHIR_JSON = {"Content-Type": "application/fhir+json"}
SNOMED = "http://snomed.info/sct"
CARDIOLOGY = "394579002"


@dataclass
class Platform:
    lab: AuthLab
    client: httpx.Client  # the FHIR base, with a system token allowed everything

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(resource["resourceType"], json=resource, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def set_active(self, resource: dict[str, Any], active: bool) -> None:
        current = self.client.get(f"{resource['resourceType']}/{resource['id']}").json()
        response = self.client.put(
            f"{resource['resourceType']}/{resource['id']}", json={**current, "active": active}, headers=FHIR_JSON
        )
        assert response.status_code == 200, response.text

    def practitioner_with_role(
        self, active: bool = True, role_active: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        code = str(uuid.uuid4().int % 10**12)
        practitioner = self.create(
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": PRACTITIONER_ID, "value": code}],
                "active": active,
                "name": [{"family": f"Test{code}", "given": ["Eva"]}],
            }
        )
        role = self.create(
            {
                "resourceType": "PractitionerRole",
                "active": role_active,
                "practitioner": {"reference": f"Practitioner/{practitioner['id']}"},
                "organization": {"reference": "Organization/org-chl"},
                "specialty": [{"coding": [{"system": SNOMED, "code": CARDIOLOGY}]}],
            }
        )
        return practitioner, role


@pytest.fixture(scope="module", params=BACKENDS)
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    schema = None
    if request.param == "sqlite":
        db_url = sqlite_url(Path(tmp_path_factory.mktemp("directory")))
    else:
        reason = request.getfixturevalue("postgres_unavailable")
        if reason:
            pytest.skip(reason)
        db_url, schema = new_schema_url()
    app = make_app(db_url)
    try:
        with threaded_server(app) as base, httpx.Client(base_url=base + "/", timeout=30) as client:
            origin = base.removesuffix("/fhir")
            client.headers.update({"Authorization": f"Bearer {mint(app, origin)}", "Accept": "application/fhir+json"})
            yield Platform(AuthLab(app, db_url, base), client)
    finally:
        if schema is not None:
            drop_schema(schema)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain client, no cookies kept between tests: a browser or an application."""
    with httpx.Client(timeout=30) as client:
        yield client
