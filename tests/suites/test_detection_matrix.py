"""`eqlab detection` runs its matrix --jobs runs at a time, each in a process of its own, and prints the
same table in the same order whatever finishes first; a run that raises or whose process dies is a
missed row (error), the others are still reported; Ctrl-C stops every run and leaves no process behind.

The table tests replace the runs with stand-ins (the real runs are in test_contract_suite.py and
test_client_detection.py); the Ctrl-C test and the seeded store test run the real thing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from eqlab.cli import main
from eqlab.commands import detection
from eqlab.commands.detection import Detection, detect
from eqlab.commands.run_pool import STOP_WAIT_S, FailedRun, in_parallel
from tests.support.paths import REPO

EXIT_INTERRUPTED = 130
MATRIX = [sys.executable, "-m", "eqlab.cli", "detection"]


@dataclass(frozen=True)
class StandInFault:
    description: str
    breaks: tuple[str, ...]


SECONDS = {"(clean)": 0.3, "slow-fault": 1.5, "quick-fault": 0.3, "other-fault": 0.3}
STAND_INS = {name: StandInFault(name, (f"fhir@{n}",)) for n, name in enumerate(SECONDS, start=1) if name != "(clean)"}


def stand_in_runs(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    """Runs that take SECONDS, log when they start and end, and are caught (clean: granted); the fault
    "raises" raises and the fault "dies" ends its process without a word."""

    def run(faults: frozenset[str], out: Path | None, *_: object, **__: object) -> Detection:
        name = next(iter(faults), "(clean)")
        with log.open("a", encoding="utf-8") as lines:
            lines.write(f"{name} start {time.monotonic()}\n")
        if name == "raises":
            raise RuntimeError("the server did not start")
        if name == "dies":
            os._exit(3)
        time.sleep(SECONDS[name])
        with log.open("a", encoding="utf-8") as lines:
            lines.write(f"{name} end {time.monotonic()}\n")
        breaks = STAND_INS[name].breaks if faults else ()
        return Detection(faults, breaks, "refused" if faults else "granted", list(breaks), "", out or Path())

    faults = {**STAND_INS, "raises": StandInFault("raises", ("fhir@9",)), "dies": StandInFault("dies", ("fhir@9",))}
    monkeypatch.setattr(detection, "reference_faults", lambda: faults)
    monkeypatch.setattr(detection, "seed_store", lambda folder: folder / "seeded.sqlite3")
    monkeypatch.setattr(detection, "detect", run)


def most_at_once(log: Path) -> int:
    events = sorted(
        (float(at), kind == "start") for _, kind, at in (line.split() for line in log.read_text().splitlines())
    )
    running = most = 0
    for _, started in events:
        running += 1 if started else -1
        most = max(most, running)
    return most


def detection_table(*args: str, key: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["detection", *args, "--key", str(key)])
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


@pytest.mark.parametrize("jobs", [1, 2])
def test_rows_keep_their_order_and_jobs_runs_go_at_once(
    jobs: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    stand_in_runs(monkeypatch, log)
    code, lines = detection_table(
        "--faults", "slow-fault,quick-fault,other-fault", "--jobs", str(jobs), key=tmp_path / "lab.pem"
    )
    assert code == 0, lines
    assert [line.split()[0] for line in lines] == ["(none:", "slow-fault", "quick-fault", "other-fault", "detection:"]
    assert all("caught  failed: fhir@" in line for line in lines[1:4]), lines
    assert lines[-1] == "detection: 3 of 3 faults caught; clean server granted"
    assert most_at_once(log) == jobs


def test_a_run_that_fails_is_a_missed_row_and_the_others_are_still_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stand_in_runs(monkeypatch, tmp_path / "runs.log")
    code, lines = detection_table("--faults", "raises,quick-fault,dies,other-fault", "--jobs", "2", key=tmp_path / "k")
    assert code == 1, lines
    rows = {line.split()[0]: line for line in lines}
    assert rows["raises"].split()[1:] == ["error", "MISSED", "RuntimeError:", "the", "server", "did", "not", "start"]
    assert "error" in rows["dies"] and "MISSED" in rows["dies"] and "(exit code 3) without a verdict" in rows["dies"]
    assert "caught" in rows["quick-fault"] and "caught" in rows["other-fault"], lines
    assert lines[-1] == "detection: 2 of 4 faults caught; clean server granted"


@pytest.mark.slow
def test_a_run_from_the_seeded_store_catches_its_fault_and_leaves_the_store_as_it_was(
    tmp_path: Path, seeded_store: Path
) -> None:
    before = seeded_store.read_bytes()
    breaks = detection.reference_faults()["no-etag"].breaks
    found = detect(
        frozenset({"no-etag"}), tmp_path / "out", 1, tmp_path / "lab.pem", ("contract",), breaks, seeded_store
    )
    assert found.caught and found.failed == ["fhir@15"], (found.verdict, found.failed)
    assert seeded_store.read_bytes() == before, "each run works on a copy"


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment carries ``marker``: the matrix and every process it started."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _described(pids: list[int]) -> list[str]:
    """Each process as its command line, for a failure's message."""
    lines = []
    for pid in pids:
        with contextlib.suppress(OSError):
            lines.append(f"{pid}: " + (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return lines


# A terminal's shell starts a foreground job with SIGINT neither ignored nor blocked: so does this wrapper.
# A test run started in the background (`bash .ci/run &`, as CI may) has SIGINT ignored, as POSIX shells do
# for a background command, and every process it starts inherits that through exec: without the wrapper the
# matrix went on, untouched, 30 s after the Ctrl-C, in four such CI runs.
AS_A_TERMINAL_STARTS_IT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL);"
    " signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); os.execv(sys.argv[1], sys.argv[1:])",
]


@pytest.mark.slow
def test_ctrl_c_stops_every_run_and_leaves_no_process(tmp_path: Path) -> None:
    marker, key, printed = uuid.uuid4().hex, tmp_path / "lab.pem", tmp_path / "printed.txt"
    # More runs than jobs: two are in flight while others wait, however fast a run is on this machine.
    faults = "no-etag,no-location,count-ignored,sort-ignored,no-total,no-next-link,accept-ignored,no-meta-version"
    with printed.open("wb") as output:  # a file, not a pipe: what the matrix printed is read whatever outlives it
        matrix = subprocess.Popen(
            [
                *AS_A_TERMINAL_STARTS_IT,
                *MATRIX,
                "--faults",
                faults,
                "--jobs",
                "2",
                "--out",
                str(tmp_path / "out"),
                "--key",
                str(key),
            ],
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "EQLAB_TEST_MARKER": marker},
        )
    try:
        ends = time.monotonic() + 120
        # the matrix, two runs (each with its checks' pytest): the runs are under way
        while len(_processes_with(marker)) < 5 and time.monotonic() < ends and matrix.poll() is None:
            time.sleep(0.2)
        if matrix.poll() is not None:
            pytest.fail(f"the matrix ended ({matrix.returncode}) before it was interrupted: {printed.read_text()!r}")
        assert len(_processes_with(marker)) >= 5, "two runs, each with its checks in a child process"
        os.killpg(matrix.pid, signal.SIGINT)  # as a terminal does: to the foreground process group
        try:
            matrix.wait(timeout=30)
        except subprocess.TimeoutExpired:
            left = "\n".join(_described(_processes_with(marker)))
            pytest.fail(f"30 s after Ctrl-C, still running:\n{left}\nprinted:\n{printed.read_text()}")
        assert matrix.returncode == EXIT_INTERRUPTED, printed.read_text()
        assert "interrupted" in printed.read_text()
        time.sleep(0.5)
        assert not _processes_with(marker), "every run and every check process stopped: " + str(
            _described(_processes_with(marker))
        )
    finally:
        for pid in _processes_with(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# A matrix's process has no other thread (detection.py seeds the store in a process of its own): a signal
# held in its one thread waits there. pytest-xdist's workers run threads of their own, so the scenario runs
# in a process of its own too.
INTERRUPTED_AS_A_RUN_STARTS = """
import multiprocessing, os, signal, time
from eqlab.commands.run_pool import in_parallel

signal.signal(signal.SIGINT, signal.default_int_handler)  # ignored when the tests run in the background
start, started = multiprocessing.process.BaseProcess.start, []

def start_then_ctrl_c(process):
    start(process)
    started.append(process.pid)
    os.kill(os.getpid(), signal.SIGINT)  # after the fork, before the pool tracks the run's process

def sleeps_an_hour():
    time.sleep(3600)

multiprocessing.process.BaseProcess.start = start_then_ctrl_c
try:
    list(in_parallel([sleeps_an_hour], jobs=1))
except KeyboardInterrupt:  # before this process ends, and multiprocessing stops its daemonic children anyway
    try:
        os.kill(started[0], 0)
        print("the run goes on")
    except ProcessLookupError:
        print("the run was stopped")
"""


def test_a_ctrl_c_as_a_run_starts_stops_that_run_too() -> None:
    """The interrupt comes right after the fork, before the pool tracks the run's process: it is held until
    then, so the pool stops that run with the others (raised at once, it left that run going)."""
    command = [sys.executable, "-c", INTERRUPTED_AS_A_RUN_STARTS]
    ended = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ended.stdout.strip() == "the run was stopped", (ended.stdout, ended.stderr)


def test_a_run_without_a_verdict_by_its_deadline_is_stopped_as_an_error_row() -> None:
    def hangs() -> Detection:
        time.sleep(3600)
        raise AssertionError("unreachable")

    def raises() -> Detection:
        raise ValueError("no plan")

    started = time.monotonic()
    rows = list(in_parallel([hangs, raises], jobs=2, deadline_s=2))
    assert time.monotonic() - started < 2 + STOP_WAIT_S, "stopped at its deadline, not waited for"
    assert isinstance(rows[0], FailedRun) and rows[0].reason == "no verdict within 2 s: the run was stopped"
    assert isinstance(rows[1], FailedRun) and rows[1].reason == "ValueError: no plan"
