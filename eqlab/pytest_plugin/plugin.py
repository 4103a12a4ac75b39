"""eqlab's pytest plugin (entry point ``pytest11``): requirement markers, evidence, events.

Checks declare what they verify with ``@pytest.mark.requirement("fhir@3")`` and talk to the system
under test through the fixtures of ``eqlab.pytest_plugin.fixtures`` (``fhir_client``, ``tokens``...),
which record every exchange as evidence. The plugin is inert unless a target is given
(``--eqlab-target URL`` and/or ``--eqlab-plan FILE``, or ``--eqlab-config FILE`` written by
``eqlab run``); then it validates every marker against the catalogue, keeps only the checks in
scope and, in the controlling process, writes one JSON line per event for the runner
(``eqlab.pytest_plugin.events``).
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from eqlab.catalogue import Catalogue
from eqlab.evidence.recorder import EvidenceRecorder, EvidenceStore
from eqlab.pytest_plugin import fixtures
from eqlab.pytest_plugin.events import (
    EVENTS_FILE,
    Collected,
    CollectedItem,
    CollectionError,
    ItemFinished,
    ItemStarted,
    SessionFinished,
)
from eqlab.pytest_plugin.outcomes import (
    DESCRIBED,
    EVIDENCE,
    PARENT,
    VERDICT,
    Described,
    Evidence,
    ItemReports,
    Verdict,
    carried,
    classify,
)
from eqlab.pytest_plugin.session import (
    NODEID_KEY,
    RECORDER_KEY,
    SESSION_KEY,
    LabSession,
    Target,
    run_config_from_options,
)

MARKER = "requirement"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eqlab", "eqlab conformance lab")
    group.addoption("--eqlab-target", help="FHIR base URL of the system under test")
    group.addoption("--eqlab-plan", help="a test plan whose target (base URL unless --eqlab-target, auth) is used")
    group.addoption("--eqlab-config", help="run configuration written by `eqlab run` (JSON)")
    group.addoption("--eqlab-catalogue", help="folder of the requirement catalogue (checks markers)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*ids): the requirement IDs (e.g. fhir@3) this check verifies")
    config.pluginmanager.register(fixtures, "eqlab-fixtures")
    run_config = run_config_from_options(config)
    if run_config is None:
        return
    target = Target(
        run_config.target.base_url,
        run_config.environment,
        run_config.target.auth,
        run_config.run_id,
        tuple(run_config.target.allowed_origins),
    )
    catalogue = Catalogue.load(run_config.catalogue) if run_config.catalogue else None
    run_dir = run_config.run_dir
    lab = LabSession(run_config, target, catalogue, EvidenceStore(run_dir) if run_dir else None)
    if run_dir and not hasattr(config, "workerinput"):  # only the controlling process writes events
        lab.events = (run_dir / EVENTS_FILE).open("a", encoding="utf-8")
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
            timeout = self.lab.suite_of(item).timeout
            if timeout and item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(timeout))
        in_scope = self.lab.run_config.requirements
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
            self.lab.emit(CollectionError(where=report.nodeid, message=message))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        described = [
            CollectedItem(
                id=item.nodeid, name=_name(item), suite=self.lab.suite_of(item).kind, requirements=requirements_of(item)
            )
            for item in session.items
        ]
        self.lab.emit(Collected(items=described))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        recorder = EvidenceRecorder(self.lab.store)
        item.stash[RECORDER_KEY] = recorder
        item.stash[NODEID_KEY] = item.nodeid
        self.lab.current_recorder = recorder  # what the session's token source records into
        self.lab.emit(ItemStarted(id=item.nodeid))

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
        outcome, message, detail = classify(report, call, self.lab.scrub)
        parent = item.stash.get(NODEID_KEY, item.nodeid)
        if report.nodeid != parent:
            # A subtest (schemathesis runs each API operation of a check as one, under a node id of
            # its own, "check[GET /Patient]"): its outcome is the check's, named by the operation.
            report.user_properties.append((PARENT, parent))
            if message:
                message = f"{report.nodeid.removeprefix(parent).strip('[]')}: {message}"
        if outcome is not None:
            verdict = Verdict(when=call.when, outcome=outcome, message=message, detail=detail)
            report.user_properties.append((VERDICT, verdict))
        if call.when == "teardown":
            recorder = item.stash.get(RECORDER_KEY, None)
            if recorder is not None:
                exchanges = [x.model_dump() for x in recorder.exchanges]
                notes = [self.lab.scrub(note) for note in recorder.notes]
                report.user_properties.append((EVIDENCE, Evidence(exchanges=exchanges, notes=notes)))
            described = Described(
                name=_name(item), suite=self.lab.suite_of(item).kind, requirements=requirements_of(item)
            )
            report.user_properties.append((DESCRIBED, described))
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
        parent = carried(report, PARENT)
        nodeid = str(parent[0]) if parent else report.nodeid
        reports = self.lab.reports.setdefault(nodeid, ItemReports(started=report.start))
        if nodeid != report.nodeid:  # a subtest: its time is inside the check's call already
            reports.verdicts += carried(report, VERDICT)
            return
        reports.duration += report.duration
        reports.verdicts += [v for v in carried(report, VERDICT) if v["when"] == report.when]
        reports.evidence = next(iter(carried(report, EVIDENCE)), reports.evidence)
        reports.described = next(iter(carried(report, DESCRIBED)), reports.described)
        if report.when == "teardown":
            result = self.lab.reports.pop(report.nodeid).result(report.nodeid)
            self.lab.emit(ItemFinished(result=result))

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.lab.emit(SessionFinished(exitstatus=int(exitstatus)))
