"""Show a run's progress: a live bar on a terminal, one plain line per check otherwise."""

from __future__ import annotations

import sys
from collections import Counter
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from eqlab.evidence.redaction import printable
from eqlab.pytest_plugin.events import Collected, CollectionError, Event, ItemFinished, Stopping
from eqlab.results import ItemResult

SYMBOLS = {"pass": "PASS ", "fail": "FAIL ", "error": "ERROR", "skip": "SKIP ", "not-tested": "N/T  "}


class CheckCount(ProgressColumn):
    """``12/95`` once the checks are collected; until then (which can take seconds) say so."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("collecting checks…")
        return Text(f"{int(task.completed)}/{int(task.total)}")


class RunProgress:
    def __init__(self, live: bool | None = None, console: Console | None = None, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live = sys.stdout.isatty() if live is None and not quiet else bool(live)
        # Plain lines go to logs and CI: never wrap them at an assumed terminal width.
        self.console = console or Console(soft_wrap=not self.live)
        self.counts: Counter[str] = Counter()
        self._bar: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> RunProgress:
        if self.live:
            columns = (TextColumn("[bold]checks"), BarColumn(), CheckCount(), TextColumn("{task.description}"))
            self._bar = Progress(*columns, TimeElapsedColumn(), console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task("", total=None)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, Collected) and self._bar is not None:
            self._bar.update(self._task, total=len(event.items))
        elif isinstance(event, ItemFinished):
            result = event.result
            self.counts[result.outcome] += 1
            if self._bar is not None:
                summary = "  ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
                self._bar.update(self._task, advance=1, description=summary)
                if result.outcome in ("fail", "error"):
                    self._bar.console.print(_line(result), markup=False, highlight=False)
            else:
                self.console.print(_line(result), markup=False, highlight=False)
        elif isinstance(event, Stopping):
            self.note(f"{event.signal}: stopping the checks; the results so far will be written and signed")
        elif isinstance(event, CollectionError):
            self.console.print(f"LAB ERROR {event.where}: could not load checks", markup=False)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(printable(text), markup=False, highlight=False)


def _line(result: ItemResult) -> str:
    requirements = ",".join(result.requirements)
    line = f"{SYMBOLS.get(result.outcome, result.outcome)} {requirements:<18} {result.name}"
    if result.outcome in ("fail", "error") and result.message:
        line += f"\n        {result.message}"
    return printable(line)  # the results' texts are already: a second guard for the terminal
