"""A load scenario whose first worker dies in the middle of the load (as a worker out of memory would)."""

from __future__ import annotations

import os

from locust import constant, task

from eqlab.checks.load import LabHttpUser

EXIT_STATUS = 7


class Crashing(LabHttpUser):
    wait_time = constant(0.05)

    @task
    def read_metadata(self) -> None:
        self.client.get("metadata")
        if getattr(self.environment.runner, "worker_index", None) == 0:
            os._exit(EXIT_STATUS)
