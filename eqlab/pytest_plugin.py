"""eqlab's pytest plugin (entry point ``pytest11``): requirement markers, evidence, events.

Checks declare what they verify with ``@pytest.mark.requirement("fhir@3")`` and talk to the system
under test through the fixtures of ``eqlab.pytest_fixtures`` (``fhir_client``, ``tokens``...),
which record every exchange as evidence. The plugin is inert unless a target is given
(``--eqlab-target URL`` and/or ``--eqlab-plan FILE``, or ``--eqlab-config FILE`` written by
``eqlab run``); then it validates every marker against the catalogue, keeps only the checks in
scope and, in the controlling process, writes one JSON line per event for the runner.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from eqlab import pytest_fixtures as fixtures
from eqlab.catalogue import Catalogue
from eqlab.evidence import redaction
from eqlab.evidence.origins import OffOrigin
from eqlab.evidence.recorder import EvidenceRecorder, EvidenceStore, ResponseTooLarge
from eqlab.lab_session import NODEID_KEY, RECORDER_KEY, SESSION_KEY, LabSession, Target, settings_from_options
from eqlab.oauth_client.model import AuthError
from eqlab.results import ItemResult, Outcome

MARKER = "requirement"
__all__ = ["RECORDER_KEY", "SESSION_KEY", "LabSession", "Target", "requirements_of"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eqlab", "eqlab conformance lab")
    group.addoption("--eqlab-target", help="FHIR base URL of the system under test")
    group.addoption("--eqlab-plan", help="a test plan whose target (base URL unless --eqlab-target, auth) is used")
    group.addoption("--eqlab-config", help="run configuration written by `eqlab run` (JSON)")
    group.addoption("--eqlab-catalogue", help="folder of the requirement catalogue (checks markers)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*ids): the requirement IDs (e.g. fhir@3) this check verifies")
    config.pluginmanager.register(fixtures, "eqlab-fixtures")
    settings = settings_from_options(config)
    if settings is None:
        return
    target = Target(
        settings["target"]["base_url"],
        settings.get("environment", "integration"),
        settings["target"].get("auth") or {},
        settings.get("run_id", "adhoc"),
        tuple(settings["target"].get("allowed_origins") or ()),
    )
    catalogue = Catalogue.load(Path(settings["catalogue"])) if settings.get("catalogue") else None
    run_dir = settings.get("run_dir")
    lab = LabSession(settings, target, catalogue, EvidenceStore(Path(run_dir)) if run_dir else None)
    if run_dir and not hasattr(config, "workerinput"):  # only the controlling process writes events
        lab.events = (Path(run_dir) / "events.jsonl").open("a", encoding="utf-8")
    config.stash[SESSION_KEY] = lab
    config.pluginmanager.register(LabPlugin(lab), "eqlab-lab-session")


def requirements_of(item: pytest.Item) -> list[str]:
    return [rid for mark in item.iter_markers(MARKER) for rid in mark.args]


def _name(item: pytest.Item) -> str:
    function = getattr(item, "function", None)
    # Property-based checks (hypothesis, schemathesis) wrap the check: its docstring is the inner test's.
    function = getattr(getattr(function, "hypothesis", None), "inner_test", function)
    doc = getattr(function, "__doc__", None)
    first = doc.strip().splitlines()[0] if doc and doc.strip() else None
    return first or item.name


class LabPlugin:
    """The hooks of one lab session (registered only when a target is configured)."""

    def __init__(self, lab: LabSession) -> None:
        self.lab = lab

    def pytest_unconfigure(self) -> None:
        self.lab.close()

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        problems = []
        for item in items:
            ids = requirements_of(item)
            if not ids:
                problems.append(f"{item.nodeid}: not traced to any requirement (add @pytest.mark.requirement(...))")
            elif self.lab.catalogue is not None and self.lab.catalogue.unknown(ids):
                problems.append(
                    f"{item.nodeid}: unknown requirement ID(s) {', '.join(self.lab.catalogue.unknown(ids))}"
                )
        if problems:
            raise pytest.UsageError("checks refer to requirements wrongly:\n  " + "\n  ".join(problems))
        for item in items:  # pytest-timeout reads the marker before setup, so attach it now
            timeout = self.lab.suite_of(item).get("timeout")
            if timeout and item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(timeout))
        in_scope = self.lab.config.get("requirements")
        if in_scope is not None:
            wanted = set(in_scope)
            keep = [i for i in items if wanted & set(requirements_of(i))]
            deselected = [i for i in items if i not in keep]
            if deselected:
                config.hook.pytest_deselected(items=deselected)
                items[:] = keep

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            message = self.lab.scrub(str(report.longreprtext))[-4000:]
            self.lab.emit("collection_error", where=report.nodeid, message=message)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        described = [
            {
                "id": item.nodeid,
                "name": _name(item),
                "suite": self.lab.suite_of(item)["kind"],
                "requirements": requirements_of(item),
            }
            for item in session.items
        ]
        self.lab.emit("collected", items=described)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        recorder = EvidenceRecorder(self.lab.store)
        item.stash[RECORDER_KEY] = recorder
        item.stash[NODEID_KEY] = item.nodeid
        self.lab.current_recorder = recorder  # what the session's token source records into
        self.lab.emit("item_started", id=item.nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            yield
        finally:
            self.lab.end_check()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        self._scrub(report)
        outcome, message, detail = _classify(report, call, self.lab.scrub)
        parent = item.stash.get(NODEID_KEY, item.nodeid)
        if report.nodeid != parent:
            # A subtest (schemathesis runs each API operation of a check as one, under a node id of
            # its own, "check[GET /Patient]"): its outcome is the check's, named by the operation.
            report.user_properties.append(("eqlab_parent", parent))
            if message:
                message = f"{report.nodeid.removeprefix(parent).strip('[]')}: {message}"
        if outcome is not None:
            verdict = {"when": call.when, "outcome": outcome, "message": message, "detail": detail}
            report.user_properties.append(("eqlab_outcome", verdict))
        if call.when == "teardown":
            recorder = item.stash.get(RECORDER_KEY, None)
            if recorder is not None:
                exchanges = [x.model_dump() for x in recorder.exchanges]
                notes = [self.lab.scrub(note) for note in recorder.notes]
                report.user_properties.append(("eqlab_evidence", {"exchanges": exchanges, "notes": notes}))
            info = {
                "name": _name(item),
                "suite": self.lab.suite_of(item)["kind"],
                "requirements": requirements_of(item),
            }
            report.user_properties.append(("eqlab_item", info))
        return report

    def _scrub(self, report: pytest.TestReport) -> None:
        """Secrets out of what pytest prints (the run's pytest.log) and reports: captured output and
        the failure's traceback, before the terminal or JUnit reporters see them."""
        report.sections = [(title, self.lab.scrub(content)) for title, content in report.sections]
        if report.longrepr is not None and not report.skipped:
            text = report.longreprtext
            cleaned = self.lab.scrub(text)
            if cleaned != text:
                report.longrepr = cleaned

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Assemble an item's setup, call and teardown reports into one result (controller only)."""
        if self.lab.events is None:
            return
        nodeid = next((str(v) for k, v in report.user_properties if k == "eqlab_parent"), report.nodeid)
        partial = self.lab.partial.setdefault(nodeid, {"outcomes": [], "duration": 0.0, "started": report.start})
        if nodeid != report.nodeid:  # a subtest: its time is inside the check's call already
            partial["outcomes"] += [v for k, v in report.user_properties if k == "eqlab_outcome"]
            return
        partial["duration"] += report.duration
        for name, value in report.user_properties:
            if not isinstance(value, dict):
                continue
            if name == "eqlab_outcome" and value["when"] == report.when:
                partial["outcomes"].append(value)
            elif name in ("eqlab_evidence", "eqlab_item"):
                partial[name] = value
        if report.when == "teardown":
            result = _result(report.nodeid, self.lab.partial.pop(report.nodeid))
            self.lab.emit("item_finished", result=result.model_dump())

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.lab.emit("session_finished", exitstatus=int(exitstatus))


def _classify(
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


def _result(nodeid: str, partial: dict[str, Any]) -> ItemResult:
    outcomes = partial["outcomes"]
    chosen = next((o for o in outcomes if o["outcome"] in ("error", "fail")), None) or next(iter(outcomes), None)
    info = partial.get("eqlab_item", {"name": nodeid, "suite": "contract", "requirements": []})
    evidence = partial.get("eqlab_evidence", {"exchanges": [], "notes": []})
    return ItemResult(
        id=nodeid,
        name=info["name"],
        suite=info["suite"],
        requirements=info["requirements"],
        outcome=chosen["outcome"] if chosen else "error",
        message=chosen["message"] if chosen else "no result was reported for this check",
        detail=chosen.get("detail") if chosen else None,
        duration_s=round(partial["duration"], 4),
        started=datetime.fromtimestamp(partial["started"], UTC).isoformat(timespec="milliseconds"),
        exchanges=evidence["exchanges"],
        notes=evidence["notes"],
    )
