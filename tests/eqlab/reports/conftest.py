"""Helpers of the report tests: render a run into a folder and read every artefact back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from eqlab.reports import write_reports
from eqlab.results import RunResults


class Rendered:
    def __init__(self, run_dir: Path, paths: list[Path]) -> None:
        self.run_dir = run_dir
        self.paths = paths

    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    def bytes(self, name: str) -> bytes:
        return (self.run_dir / name).read_bytes()

    def text(self, name: str) -> str:
        return self.bytes(name).decode("utf-8")


Render = Callable[[RunResults], Rendered]


@pytest.fixture
def render(tmp_path: Path) -> Render:
    counter = iter(range(1000))

    def _render(results: RunResults) -> Rendered:
        run_dir = tmp_path / f"run-{next(counter)}"
        return Rendered(run_dir, write_reports(results, run_dir))

    return _render
