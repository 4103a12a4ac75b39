"""What reached the simulated platform during a client run, in order, tagged by scenario and step.

The proxy adds every request (thread-safe: it runs in its own thread); the scenario runner moves the
tag from step to step, installs the failures to inject and waits for what a step expects. A client
that floods the platform cannot fill the lab's memory: past ``max_kept`` requests only the count grows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from eqlab.clients.captured import ClientRequest
from eqlab.clients.matchers import Injection

MAX_KEPT = 5000


class Journal:
    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self.max_kept = max_kept
        self._kept: list[ClientRequest] = []
        self._received = 0
        self._injections: list[Injection] = []
        self._scenario, self._step = "", ""
        self._changed = threading.Condition()
        self._started = time.monotonic()

    # -- the scenario runner's side

    def enter(self, scenario: str, step: str) -> None:
        with self._changed:
            self._scenario, self._step = scenario, step

    def inject(self, injection: Injection) -> None:
        with self._changed:
            self._injections.append(injection)

    def clear_injections(self) -> None:
        with self._changed:
            self._injections.clear()

    def requests(self, keep: Callable[[ClientRequest], bool] = lambda _: True) -> list[ClientRequest]:
        with self._changed:
            return [r for r in self._kept if keep(r)]

    @property
    def received(self) -> int:
        """Every request that arrived, kept or not."""
        with self._changed:
            return self._received

    def wait(self, until: Callable[[], bool], timeout_s: float, poll_s: float = 0.2) -> bool:
        """Block until ``until()`` holds (re-tested whenever a request arrives) or the time is up."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not until():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, poll_s))
            return True

    # -- the proxy's side

    def arrive(self) -> Arrival:
        """Number and tag a request just received: its order, the scenario and step now running."""
        with self._changed:
            self._received += 1
            return Arrival(self._received, self._scenario, self._step, round(time.monotonic() - self._started, 3))

    def injection_for(self, request: ClientRequest) -> Injection | None:
        """The first armed injection matching this request, with one of its uses spent."""
        with self._changed:
            for injection in self._injections:
                if injection.remaining > 0 and injection.when.matches(request):
                    injection.remaining -= 1
                    return injection
            return None

    def add(self, request: ClientRequest) -> None:
        """Keep a request once its answer is known (only the first ``max_kept`` of a run)."""
        with self._changed:
            if len(self._kept) < self.max_kept:
                self._kept.append(request)
            self._changed.notify_all()


@dataclass(frozen=True)
class Arrival:
    n: int
    scenario: str
    step: str
    at: float  # seconds since the journal was made
