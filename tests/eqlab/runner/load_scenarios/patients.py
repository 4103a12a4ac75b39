"""A light load scenario: every user searches one Patient, with the lab's token when its process has one."""

from __future__ import annotations

import os

from locust import constant, task

from eqlab.checks.load import LabHttpUser

TOKEN_ENV = "EQLAB_LOAD_ACCESS_TOKEN"


class PatientSearcher(LabHttpUser):
    wait_time = constant(0.02)

    @task
    def search_patients(self) -> None:
        token = os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client.get("Patient?_count=1", headers=headers, name="GET Patient")
