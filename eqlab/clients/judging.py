"""What a check of a client label gets: the requests of the client run, and how to cite them.

The run writes the journal to ``client-requests.jsonl`` in its folder (credentials sealed, see
``sealing``); the ``client_run`` fixture loads it for the checks. A check that finds a deviation
cites the requests that prove it: their exchanges join the check's evidence, and the message names
them (``#12 POST /auth/token``) so a vendor can find them in the detailed report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from eqlab.clients.captured import ClientRequest
from eqlab.evidence.recorder import EvidenceRecorder

JOURNAL_FILE = "client-requests.jsonl"


def save_journal(requests: Iterable[ClientRequest], path: Path) -> None:
    path.write_text("".join(r.model_dump_json() + "\n" for r in requests), encoding="utf-8")


def load_journal(path: Path) -> list[ClientRequest]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ClientRequest.model_validate_json(line) for line in lines if line.strip()]


@dataclass(frozen=True)
class Registration:
    """The client under test as the plan registered it on the simulated platform."""

    client_id: str
    redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


@dataclass
class ClientRun:
    requests: list[ClientRequest]
    registration: Registration
    evidence: EvidenceRecorder = field(default_factory=EvidenceRecorder)

    def where(
        self,
        method: str | None = None,
        path: str | None = None,
        keep: Callable[[ClientRequest], bool] = lambda _: True,
    ) -> list[ClientRequest]:
        """The requests with this method, whose path matches the regular expression ``path``, that ``keep``."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or re.fullmatch(path, r.path)) and keep(r)
        ]

    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(r.scenario for r in self.requests))

    def cite(self, *requests: ClientRequest) -> str:
        """``#3 GET /fhir/Patient (scenario paging), …``; their exchanges join this check's evidence."""
        known = {e.id for e in self.evidence.exchanges}
        for request in requests:
            if request.exchange is not None and request.exchange.id not in known:
                self.evidence.exchanges.append(request.exchange)
                known.add(request.exchange.id)
        return ", ".join(f"#{r.n} {r.method} {r.path} (scenario {r.scenario})" for r in requests)
