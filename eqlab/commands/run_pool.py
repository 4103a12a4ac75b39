"""The detection matrix's runs, each in a forked process of its own, some at a time, each with a deadline.

A run is a callable returning its row; a run that raises, dies or overruns its deadline is a ``FailedRun``
row instead, so one bad run never ends or hangs the matrix.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import ClassVar, Generic, TypeVar

from eqlab.interrupt import GRACE_S

# A stopped run ends its checks (GRACE_S), then its server (GRACE_S), and concludes its partial run.
STOP_WAIT_S = 3 * GRACE_S + 10
# A run that has no verdict by then is stopped and is an error row: the matrix never hangs on one (a
# forked run once hung for good in its server's signature check). A run takes seconds to a minute.
RUN_DEADLINE_S = 600.0
_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}

T = TypeVar("T")


@dataclass(frozen=True)
class FailedRun:
    """A run that ended without a verdict: it raised, or its process died. Its row is missed."""

    reason: str
    verdict: ClassVar[str] = "error"
    caught: ClassVar[bool] = False


def in_parallel(
    runs: Sequence[Callable[[], T]], jobs: int, deadline_s: float = RUN_DEADLINE_S
) -> Generator[T | FailedRun, None, None]:
    """Each run in a process of its own, ``jobs`` at a time, started in order; yields their rows in that
    order, each as soon as it and the ones before it are done; a run still going after ``deadline_s`` is
    stopped, an error row. Closed early (Ctrl-C), it stops the runs under way and waits for them to conclude."""
    # Forked, not spawned: a run starts in milliseconds with the catalogue and plans already loaded.
    context = multiprocessing.get_context("fork")
    waiting = deque(enumerate(runs))
    running: dict[int, _RunProcess[T]] = {}
    done: dict[int, T | FailedRun] = {}
    try:
        for index in range(len(runs)):
            while index not in done:
                while waiting and len(running) < jobs:
                    number, run = waiting.popleft()
                    with _interrupts_held():  # a Ctrl-C while it starts would leave it untracked, never stopped
                        running[number] = _RunProcess(context, run, time.monotonic() + deadline_s)
                first_due = min(child.deadline for child in running.values())
                waitables = [waitable for child in running.values() for waitable in child.waitables()]
                wait(waitables, timeout=max(0.0, first_due - time.monotonic()))
                for number, child in list(running.items()):
                    row = child.finished() or child.stopped_when_overdue(deadline_s)
                    if row is not None:
                        done[number] = row
                        del running[number]
            yield done.pop(index)
    finally:
        for child in running.values():
            child.process.terminate()
        for child in running.values():
            child.process.join(STOP_WAIT_S)
            if child.process.is_alive():
                child.process.kill()
                child.process.join()


class _RunProcess(Generic[T]):
    """One run in a forked process; its row comes back through a pipe."""

    def __init__(self, context: multiprocessing.context.ForkContext, run: Callable[[], T], deadline: float) -> None:
        self.deadline = deadline  # time.monotonic()
        self.receiver, sender = context.Pipe(duplex=False)
        self.process: BaseProcess = context.Process(target=_run_in_child, args=(run, sender), daemon=True)
        self.process.start()
        sender.close()
        self.row: T | FailedRun | None = None

    def waitables(self) -> list[Connection | int]:
        return [self.process.sentinel] if self.receiver.closed else [self.process.sentinel, self.receiver]

    def finished(self) -> T | FailedRun | None:
        """The row once the process has ended; a process that ended without one is a failed run."""
        ended = self.process.exitcode is not None  # before reading: a row sent just before the end is read
        if not self.receiver.closed and self.receiver.poll():
            with suppress(EOFError):  # the process ended without sending its row
                self.row = self.receiver.recv()
            self.receiver.close()
        if not ended:
            return None
        self.process.join()
        if self.row is None:
            return FailedRun(f"the run's process ended (exit code {self.process.exitcode}) without a verdict")
        return self.row

    def stopped_when_overdue(self, deadline_s: float) -> FailedRun | None:
        """Past its deadline: the process stopped (as Ctrl-C stops it, then killed) and its error row."""
        if time.monotonic() < self.deadline:
            return None
        self.process.terminate()
        self.process.join(STOP_WAIT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        return FailedRun(f"no verdict within {deadline_s:.0f} s: the run was stopped")


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back until the block ends, then delivered: a run's process is started and
    tracked (``running``) before a Ctrl-C can stop the matrix. Raised between the fork and the tracking, the
    interrupt left a run the pool never stopped (multiprocessing stopped it only as the matrix's process
    exited, and waited for it without a bound). A held signal waits only in a process whose one thread holds
    it, as the matrix's does. The run's process starts with them held too, and lets them through once it is
    in a session of its own."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _run_in_child(run: Callable[[], T], results: Connection) -> None:
    """A run's process, in a session of its own: a terminal's Ctrl-C reaches the matrix alone, which stops
    each run with one SIGTERM (a stop request during its checks, an interrupt before or after them)."""
    os.setsid()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)  # held while it was forked (``_interrupts_held``)
    row: T | FailedRun
    try:
        row = run()
    except KeyboardInterrupt:
        row = FailedRun("interrupted")
    except Exception as exc:  # a run that raises is its row's error, never the end of the matrix
        row = FailedRun(f"{type(exc).__name__}: {exc}")
    results.send(row)
