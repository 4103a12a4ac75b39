"""Load scenario for the generic FHIR REST surface: a clinician's read/search mix with some writes.

Each simulated user first creates its own patient (so it needs no existing data), then reads it,
searches by name, searches its observations and records new ones, in a 6:3:2:1 mix. The lab
measures latency percentiles, error rate and throughput against the plan's SLOs.

Every request carries the bearer token the lab obtained for the plan's system client before the
run (environment variable ``EQLAB_LOAD_ACCESS_TOKEN``; absent for a plan without auth settings).
"""

from __future__ import annotations

import os
import uuid

from locust import between, task

from eqlab.checks.load import LabHttpUser

TOKEN_ENV = "EQLAB_LOAD_ACCESS_TOKEN"  # set by the lab (eqlab.runner.load) in this process's environment
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV)
    return {**FHIR_JSON, "Authorization": f"Bearer {token}"} if token else dict(FHIR_JSON)


class Clinician(LabHttpUser):
    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        self.headers = _headers()
        self.family = f"Load{uuid.uuid4().hex[:10]}"
        created = self.client.post(
            "Patient",
            json={"resourceType": "Patient", "name": [{"family": self.family}]},
            headers=self.headers,
            name="POST Patient",
        )
        self.patient_id = created.json()["id"] if created.status_code == 201 else "unknown"

    @task(6)
    def read_patient(self) -> None:
        self.client.get(f"Patient/{self.patient_id}", headers=self.headers, name="GET Patient/[id]")

    @task(3)
    def search_by_name(self) -> None:
        self.client.get(f"Patient?family={self.family[:6]}&_count=10", headers=self.headers, name="GET Patient?family")

    @task(2)
    def search_observations(self) -> None:
        self.client.get(
            f"Observation?subject=Patient/{self.patient_id}&_sort=-date&_count=20",
            headers=self.headers,
            name="GET Observation?subject",
        )

    @task(1)
    def record_observation(self) -> None:
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{self.patient_id}"},
            "valueQuantity": {"value": 72, "unit": "/min"},
        }
        self.client.post("Observation", json=observation, headers=self.headers, name="POST Observation")
