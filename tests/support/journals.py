"""Hand-made client journals, for the tests of the client checks (suites/client): a run of requests and
the assertion that a check fails naming what proves it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from eqlab.checks import ClientRequest, ClientRun, Target
from eqlab.clients.judging import Registration

TARGET = Target(base_url="http://127.0.0.1:8080/fhir")
Check = Callable[[ClientRun, Target], None]


def request(method: str, path: str, query: str = "", **fields: Any) -> dict[str, Any]:
    """One recorded request below the FHIR base (``query`` as sent: ``a=1&b=2``), answered 200 unless told."""
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    return {"method": method, "path": f"/fhir/{path}".rstrip("/"), "query": pairs, **fields}


def run_of(*requests: dict[str, Any], scenario: str = "s") -> ClientRun:
    made = [
        ClientRequest(n=n, scenario=r.pop("scenario", scenario), step="2 run", arrived=float(n), **{"status": 200, **r})
        for n, r in enumerate(requests, start=1)
    ]
    return ClientRun(made, Registration("vendor"))


def passes(check: Check, run: ClientRun) -> bool:
    """Whether ``check`` passes on ``run`` (a failure is raised, with the check's own message)."""
    check(run, TARGET)
    return True


def fails(check: Check, run: ClientRun, *expected: str) -> str:
    """The failure message of ``check`` on ``run`` (never empty), which must name each of ``expected``."""
    with pytest.raises(AssertionError) as failed:
        check(run, TARGET)
    message = str(failed.value)
    assert message, "a failing check says why"
    for text in expected:
        assert text in message, message
    return message
