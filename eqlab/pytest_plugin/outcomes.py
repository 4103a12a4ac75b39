"""A check's outcome: each pytest report classified (pass, fail, error, skip), and one check's
reports (setup, call, teardown, its subtests) assembled into one ``ItemResult``.

fail = the system under test answered and the answer breaks the requirement (including invalid
JSON); error = the check could not be made (timeout, connection, oversized answer, a crash).
What the reports carry between processes (``user_properties``, which pytest-xdist sends from its
workers) stays plain data: the typed dicts below, under the names below.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

import httpx
import pytest

from eqlab.evidence import redaction
from eqlab.evidence.origins import OffOrigin
from eqlab.evidence.recorder import ResponseTooLarge
from eqlab.oauth_client.model import AuthError
from eqlab.results import ItemResult, Outcome

PARENT = "eqlab_parent"  # on a subtest's report: the node id of its check
VERDICT = "eqlab_outcome"
EVIDENCE = "eqlab_evidence"
DESCRIBED = "eqlab_item"


class Verdict(TypedDict):
    when: str
    outcome: Outcome
    message: str | None
    detail: str | None


class Described(TypedDict):
    name: str
    suite: str
    requirements: list[str]


class Evidence(TypedDict):
    exchanges: list[dict[str, Any]]
    notes: list[str]


@dataclass
class ItemReports:
    """What the reports of one check said so far."""

    started: float
    duration: float = 0.0
    verdicts: list[Verdict] = field(default_factory=list)
    described: Described | None = None
    evidence: Evidence | None = None

    def result(self, nodeid: str) -> ItemResult:
        """The check's result: its first failure or error, else its first verdict."""
        chosen = next((v for v in self.verdicts if v["outcome"] in ("error", "fail")), None) or next(
            iter(self.verdicts), None
        )
        described = self.described or Described(name=nodeid, suite="contract", requirements=[])
        evidence = self.evidence or Evidence(exchanges=[], notes=[])
        return ItemResult(
            id=nodeid,
            name=described["name"],
            suite=described["suite"],
            requirements=described["requirements"],
            outcome=chosen["outcome"] if chosen else "error",
            message=chosen["message"] if chosen else "no result was reported for this check",
            detail=chosen["detail"] if chosen else None,
            duration_s=round(self.duration, 4),
            started=datetime.fromtimestamp(self.started, UTC).isoformat(timespec="milliseconds"),
            exchanges=evidence["exchanges"],
            notes=evidence["notes"],
        )


def carried(report: pytest.TestReport, name: str) -> list[Any]:
    """What the plugin put in a report's ``user_properties`` under ``name``."""
    return [value for key, value in report.user_properties if key == name]


def classify(
    report: pytest.TestReport, call: pytest.CallInfo[None], scrub: Callable[[str], str] = redaction.text
) -> tuple[Outcome | None, str | None, str | None]:
    # A message or traceback may quote what a check or the system under test said: a token, a code.
    # Scrubbed whole, before anything is cut short (half a token matches no pattern).
    outcome, message, detail = _judge(report, call, scrub)
    return outcome, scrub(message) if message else message, detail


def _judge(
    report: pytest.TestReport, call: pytest.CallInfo[None], scrub: Callable[[str], str]
) -> tuple[Outcome | None, str | None, str | None]:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "skip", reason.removeprefix("Skipped: "), None
    if not report.failed:
        return ("pass", None, None) if call.when == "call" else (None, None, None)
    exc = call.excinfo.value if call.excinfo else None
    detail = scrub(str(report.longreprtext))[-4000:] if report.longrepr else None
    if isinstance(exc, pytest.fail.Exception) and str(exc).startswith("Timeout"):
        return "error", "the check did not finish in time: the system under test did not answer (timeout)", detail
    if isinstance(exc, ResponseTooLarge):
        return "error", f"the system under test sent too much: {exc}", detail
    if isinstance(exc, OffOrigin):  # the system under test sent the lab elsewhere: its fault
        return "fail", _first_line(exc, scrub), detail
    if isinstance(exc, httpx.TimeoutException):
        return "error", f"the system under test did not answer in time ({type(exc).__name__})", detail
    if isinstance(exc, httpx.TransportError):
        return "error", f"the connection to the system under test failed: {type(exc).__name__}: {exc}", detail
    if isinstance(exc, AuthError):  # no token, so the check could not be made as it must be
        return "error", f"the lab could not authenticate to the system under test: {exc}", detail
    if isinstance(exc, (AssertionError, pytest.fail.Exception)):
        return "fail", _first_line(exc, scrub), detail
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return "fail", f"the system under test answered with a body that is not valid JSON/UTF-8: {exc}", detail
    if call.when != "call":
        return "error", f"the check could not be prepared ({call.when}): {type(exc).__name__}: {exc}", detail
    where = "".join(traceback.format_exception_only(type(exc), exc)).strip() if exc else "unknown error"
    return "error", f"the check itself broke: {where}", detail


def _first_line(exc: BaseException, scrub: Callable[[str], str]) -> str:
    text = scrub(str(exc)).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    message = lines[0] if lines else type(exc).__name__
    return re.sub(r"\s+", " ", message)[:500]
