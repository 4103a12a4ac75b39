"""Run the pytest-based suites (contract, fuzz, ui) in a child process and follow its events.

A child process keeps the lab alive whatever a check or the system under test does (a crash, a
runaway response, a hang): the lab reads the plugin's event file as it grows, enforces a time
budget, and turns whatever did not finish into ``error`` results with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from eqlab.evidence import redaction
from eqlab.interrupt import GRACE_S, StopRequest, start_child, stop_child
from eqlab.oauth_client.config import AuthConfig
from eqlab.pytest_plugin.events import (
    EVENTS_FILE,
    Collected,
    CollectedItem,
    CollectionError,
    Event,
    ItemFinished,
    Stopping,
    UnreadableEvent,
    read_event,
)
from eqlab.pytest_plugin.run_config import write_run_config
from eqlab.results import ItemResult, Outcome
from eqlab.runner.options import PYTEST_KINDS, RunSetup

COLLECTION_BUDGET_S = 300.0
# The checks' pytest loads only the plugins they use: autoloading every installed one (hypothesis, faker,
# locust...) costs 1.5-3 s a run, more than many runs' checks (measured: 3.6 s -> 1.0 s for one check).
PLUGINS = ("eqlab.pytest_plugin.plugin",)
FUZZ_PLUGINS = ("_hypothesis_pytestplugin", "schemathesis.pytest.plugin")
PARALLEL_PLUGINS = ("xdist.plugin",)
EXTRA_BUDGET_S = 120.0
POLL_S = 0.05
EXIT_MEANINGS = {
    2: "interrupted",
    3: "internal error or crash",
    4: "usage error (see pytest.log)",
    5: "no check matched the scope",
}


UNREADABLE = "no result could be read for this check: the checks' event stream held a line the lab cannot read"


@dataclass
class SuiteRun:
    items: list[ItemResult] = field(default_factory=list)
    collected: list[CollectedItem] = field(default_factory=list)
    lab_errors: list[str] = field(default_factory=list)
    unreadable_events: int = 0


Listener = Callable[[Event], None]


def run_pytest_suites(setup: RunSetup, listener: Listener, only_items: list[str] | None = None) -> SuiteRun:
    kinds = tuple(s.kind for s, _ in setup.suites if s.kind in PYTEST_KINDS)
    result = SuiteRun()
    if not kinds:
        return result
    with tempfile.TemporaryDirectory(prefix="eqlab-run-") as tmp:
        config_path = Path(tmp) / "run-config.json"
        write_run_config(setup.run_config(kinds), config_path)
        ini = Path(tmp) / "pytest.ini"
        # The suites run under their own, neutral pytest settings, not the repository's test settings.
        ini.write_text("[pytest]\naddopts =\nconsole_output_style = classic\n", encoding="utf-8")
        targets = only_items or [str(p) for s, p in setup.suites if s.kind in kinds]
        command = [
            sys.executable, "-m", "pytest", *targets,
            "-c", str(ini), "--rootdir", str(setup.suites_root.parent), "--confcutdir", str(setup.suites_root.parent),
            "-p", "no:cacheprovider", "--eqlab-config", str(config_path),
            "-q", "--tb=short", "--no-header", "-rN",
        ]  # fmt: skip
        if setup.options.keyword:
            command += ["-k", setup.options.keyword]
        plugins = [*PLUGINS, *(FUZZ_PLUGINS if "fuzz" in kinds else ())]
        if setup.options.workers > 1:
            plugins += PARALLEL_PLUGINS
            command += ["-n", str(setup.options.workers)]
        command += [arg for plugin in plugins for arg in ("-p", plugin)]
        log = Path(tmp) / "pytest.log"
        budget = _budget(setup, kinds)
        exit_code = _follow(
            command, setup.suites_root.parent, log, setup.run_dir / EVENTS_FILE, result, listener, budget, setup.stop
        )
        out_of_time = exit_code is None and setup.seconds_left() <= 0 and not setup.stop.requested
        # The checks scrub what they print; this also catches what pytest itself printed.
        named = AuthConfig.from_dict(setup.auth_settings()).named_secrets()
        text = redaction.known(redaction.text(log.read_text(encoding="utf-8", errors="replace")), named)
        (setup.run_dir / "pytest.log").write_text(text, encoding="utf-8")
    _finish(result, exit_code, setup, out_of_time)
    return result


def _budget(setup: RunSetup, kinds: tuple[str, ...]) -> Callable[[int], float]:
    """Seconds the checks may take from their start: what their own timeouts allow, within what is
    left of the plan's time budget."""
    timeouts = [s.timeout for s, _ in setup.suites if s.kind in kinds]
    worst = max(timeouts) if timeouts else 60.0
    left_at_start = setup.seconds_left()

    def seconds(collected: int) -> float:
        if collected == 0:
            return min(COLLECTION_BUDGET_S, left_at_start)
        return min(collected * worst / max(1, setup.options.workers) + EXTRA_BUDGET_S, left_at_start)

    return seconds


def _follow(
    command: list[str],
    cwd: Path,
    log: Path,
    events: Path,
    result: SuiteRun,
    listener: Listener,
    budget: Callable[[int], float],
    stop: StopRequest,
) -> int | None:
    """Run ``command``, feeding each event to ``listener``; None when the budget ran out or the run
    was asked to stop."""
    events.touch()
    started = time.monotonic()
    with log.open("wb") as output, events.open("r", encoding="utf-8") as stream:
        process = start_child(
            command,
            cwd=cwd,  # item IDs (for reruns) are relative to the suites' root folder
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        )
        buffer = ""
        while True:
            finished = process.poll() is not None
            chunk = stream.read()
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                if line.strip():
                    _take(line, result, listener)
            if finished and not chunk:
                return process.returncode
            if time.monotonic() - started > budget(len(result.collected)):
                stop_child(process, grace_s=0)
                return None
            if stop.requested:
                listener(Stopping(signal=stop.signal_name))
                stop_child(process, grace_s=0 if stop.urgent else GRACE_S)
                _drain(stream, buffer, result, listener)
                return None
            if not chunk:
                time.sleep(POLL_S)


def _drain(stream: TextIO, buffer: str, result: SuiteRun, listener: Listener) -> None:
    """The events a stopped child wrote before it stopped; a last, half-written line is dropped."""
    for line in (buffer + stream.read()).split("\n")[:-1]:
        if line.strip():
            _take(line, result, listener)


def _take(line: str, result: SuiteRun, listener: Listener) -> None:
    """One line of the event file; one the lab cannot read is a lab error, and the check it was
    about ends as an error (it has no result), never the lab's end."""
    try:
        event = read_event(line)
    except UnreadableEvent as exc:
        result.unreadable_events += 1
        reason = redaction.text(str(exc))[:300]
        result.lab_errors.append(f"the checks' event stream held a line the lab cannot read ({reason})")
        return
    if isinstance(event, Collected):
        result.collected = event.items
    elif isinstance(event, ItemFinished):
        result.items.append(event.result)
    elif isinstance(event, CollectionError):
        where = event.where or "collection"
        result.lab_errors.append(f"a suite could not be loaded ({where}): {event.message.strip()[-600:]}")
    listener(event)


def _finish(result: SuiteRun, exit_code: int | None, setup: RunSetup, out_of_time: bool) -> None:
    done = {item.id for item in result.items}
    stopped = UNREADABLE if result.unreadable_events else "the run was stopped before this check finished"
    outcome: Outcome = "error"
    if setup.stop.requested:
        stopped, outcome = interrupted_message(setup.stop), "not-tested"
    elif out_of_time:
        spent = f"the plan's time budget ({setup.loaded.plan.time_budget_s:.0f} s) was spent"
        result.lab_errors.append(f"{spent}: the run stopped there")
        stopped, outcome = f"not tested: {spent} before this check finished", "not-tested"
    elif exit_code is None:
        result.lab_errors.append("the checks took longer than their timeouts allow and were stopped")
    elif exit_code not in (0, 1, 5):
        meaning = EXIT_MEANINGS.get(exit_code or 0, "the test process stopped unexpectedly")
        result.lab_errors.append(
            f"pytest exited with status {exit_code} ({meaning}): {_log_tail(setup.run_dir / 'pytest.log')}"
        )
        stopped = f"the test process stopped (exit {exit_code}) before this check finished"
    for described in result.collected:
        if described.id not in done:
            result.items.append(
                ItemResult(
                    id=described.id,
                    name=described.name,
                    suite=described.suite,
                    requirements=described.requirements,
                    outcome=outcome,
                    message=stopped,
                )
            )
    order = {d.id: i for i, d in enumerate(result.collected)}
    result.items.sort(key=lambda item: order.get(item.id, len(order)))


def interrupted_message(stop: StopRequest) -> str:
    return f"interrupted: the run was stopped ({stop.signal_name}) before this check finished"


def _log_tail(path: Path) -> str:
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-6:])[-800:]
