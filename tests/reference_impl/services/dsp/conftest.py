"""A reference platform with the demo data (the DSP's documents included), on SQLite and on PostgreSQL,
over real HTTP with a system token. One server per backend and module; tests write documents of
patients of their own, so they share it without seeing each other's data.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from reference_impl.naming import NATIONAL_ID
from reference_impl.services.dsp.doctypes import SYSTEM
from reference_impl.services.mpi import matricule
from tests.conftest import BACKENDS
from tests.support.servers import demo_platform

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@dataclass
class Platform:
    client: httpx.Client  # with a system token allowed everything

    def patient(self) -> dict[str, Any]:
        """A new active Patient with a matricule of its own."""
        n = uuid.uuid4().int
        value = matricule.make(date(1930 + n % 90, 1 + n % 12, 1 + n % 28), n % 1000)
        patient = {"resourceType": "Patient", "identifier": [{"system": NATIONAL_ID, "value": value}], "active": True}
        response = self.client.post("Patient", json=patient, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def provide(self, *documents: tuple[dict[str, Any], bytes, str]) -> httpx.Response:
        """An ITI-65 transaction: a SubmissionSet, and each (DocumentReference, content, media type) with a Binary."""
        entries, items = [], []
        for document, content, media in documents:
            binary_url, doc_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
            binary = {"resourceType": "Binary", "contentType": media, "data": base64.b64encode(content).decode()}
            attachment = {"contentType": media, "url": binary_url}
            doc = {**document, "content": [{"attachment": attachment}]}
            entries += [post(binary_url, binary), post(doc_url, doc)]
            items.append({"item": {"reference": doc_url}})
        submission_set = {
            "resourceType": "List",
            "status": "current",
            "mode": "working",
            "code": {"coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes",
                                 "code": "submissionset"}]},
            "entry": items,
        }  # fmt: skip
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [post("urn:uuid:ss", submission_set), *entries],
        }
        return self.client.post("", json=bundle, headers=FHIR_JSON)

    def provided(self, *documents: tuple[dict[str, Any], bytes, str]) -> list[str]:
        """``Type/id`` of the stored entries: the SubmissionSet, then each Binary and its document."""
        response = self.provide(*documents)
        assert response.status_code == 200, response.text
        return [e["response"]["location"].split("/_history")[0].split("/fhir/")[1] for e in response.json()["entry"]]


def post(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


def document(subject: dict[str, Any], code: str = "DISCHARGE", **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": SYSTEM, "code": code}]},
        "subject": subject,
        "date": "2025-03-07T10:00:00Z",
        **fields,
    }


def ref(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


@pytest.fixture(scope="module", params=BACKENDS)
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with demo_platform(request, tmp_path_factory) as started:
        yield Platform(started.client)
