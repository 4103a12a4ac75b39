"""The base class of every load scenario: a locust ``User`` whose ``client`` keeps the lab's rules.

A load suite sends thousands of requests; a hostile system under test must not be able to turn them
against the lab or anyone else. ``LabHttpClient`` (``eqlab.runner.load_http``) follows no redirect,
addresses only the target, reads each response within ``RESPONSE_SECONDS`` and up to
``MAX_RESPONSE_BYTES``, and times the whole body. Scenarios call it as they would locust's
clients: ``self.client.get(path, headers=..., name=...)``, ``post(path, json=...)`` and so on.

``eqlab.runner.load_worker`` runs only scenarios that derive from ``LabHttpUser``.
"""

from __future__ import annotations

from typing import Any

from locust import User

from eqlab.runner.load_http import CONNECT_SECONDS, RESPONSE_SECONDS, LabHttpClient


class LabHttpUser(User):
    """Derive load scenarios from this class instead of locust's ``HttpUser`` or ``FastHttpUser``."""

    abstract = True
    response_seconds = RESPONSE_SECONDS
    connect_seconds = CONNECT_SECONDS

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if self.host is None:
            raise ValueError(f"{type(self).__name__} has no host: the lab gives every load run its target")
        self.client = LabHttpClient(
            self.host,
            environment.events.request,
            user=self,
            response_seconds=self.response_seconds,
            connect_seconds=self.connect_seconds,
        )

    def on_stop(self) -> None:
        self.client.close()
