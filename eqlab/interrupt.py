"""Ctrl-C and SIGTERM during a run, and the child processes a run starts.

A terminal sends SIGINT to its whole foreground process group; a CI runner sends SIGTERM to the lab
alone. Either way the run must not die half-written: the first signal asks the run to stop, every
child (pytest and its workers, locust) is stopped within ``GRACE_S`` + a moment, and the run is
concluded, reported and signed from what finished. A second signal stops the children at once.
Children run in sessions of their own, so the terminal's SIGINT never reaches them behind the lab's
back: the lab decides when and how they stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

GRACE_S = 3.0  # a stopped child's time to exit after SIGTERM before SIGKILL
POLL_S = 0.2  # how often a waiting run looks for a stop request
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Whether the run has been asked to stop, by which signal, and how urgently."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.urgent = False  # a second signal: no grace period for the children
        self.at: float | None = None  # time.monotonic() of the first signal

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def request(self, signum: int) -> None:
        if self.requested:
            self.urgent = True
            return
        self.signal_name = signal.Signals(signum).name
        self.at = time.monotonic()

    @contextmanager
    def handling_signals(self) -> Iterator[StopRequest]:
        """Turn SIGINT and SIGTERM into stop requests while the block runs (in the main thread only:
        elsewhere Python cannot handle signals, and the caller keeps its own handling)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handle(signum: int, _frame: FrameType | None) -> None:
            self.request(signum)

        previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def start_child(command: list[str], **popen: object) -> subprocess.Popen[bytes]:
    """A child in a session of its own: a terminal's SIGINT reaches the lab, never the child directly."""
    return subprocess.Popen(command, start_new_session=True, **popen)  # type: ignore[call-overload,no-any-return]


def stop_child(process: subprocess.Popen[bytes], grace_s: float = GRACE_S) -> None:
    """Stop ``process`` and every process of its group (pytest-xdist workers, locust): SIGTERM, then
    SIGKILL after ``grace_s``; returns once the child is reaped."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):  # a worker of the group may linger
        os.killpg(process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class ChildRun:
    exit_code: int | None  # None: stopped (the time limit or a stop request)
    stdout: str
    stderr: str


def run_child(command: list[str], time_limit_s: float, stop: StopRequest, **popen: object) -> ChildRun:
    """Run ``command`` to its end, its output captured, unless ``time_limit_s`` passes or the run is
    asked to stop first."""
    if time_limit_s <= 0 or stop.requested:
        return ChildRun(None, "", "")
    process = start_child(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    ends = time.monotonic() + time_limit_s
    while True:
        try:
            out, err = process.communicate(timeout=POLL_S)
            return ChildRun(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
        except subprocess.TimeoutExpired:
            if stop.requested or time.monotonic() > ends:
                stop_child(process, grace_s=0 if stop.urgent or not stop.requested else GRACE_S)
                out, err = process.communicate()
                return ChildRun(None, out.decode(errors="replace"), err.decode(errors="replace"))
