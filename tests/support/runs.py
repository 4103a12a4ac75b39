"""``eqlab run`` as a user runs it: a plan written to a folder, the CLI in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.paths import REPO


def fhir_rest_plan(base: str, label: str, timeout_s: int, time_budget_s: int | None = None) -> str:
    """A plan of the generic FHIR REST requirements alone (suites/contract/fhir) against ``base``."""
    budget = f"time_budget_s: {time_budget_s}\n" if time_budget_s is not None else ""
    return f"""\
name: FHIR REST only
label: {label}
version: "1"
environment: integration
{budget}target:
  base_url: {base}
requirements:
  include: ["fhir@*"]
suites:
  - kind: contract
    path: contract/fhir
    timeout: {timeout_s}
"""


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    printed: str  # standard output and error
    run_dir: Path

    def results(self) -> dict[str, Any]:
        results: dict[str, Any] = json.loads((self.run_dir / "results.json").read_text(encoding="utf-8"))
        return results


@dataclass(frozen=True)
class CliOutput:
    exit_code: int
    printed: str  # standard output and error


def eqlab_cli(*args: str, env: dict[str, str] | None = None) -> CliOutput:
    """``eqlab ARGS`` in a child process, with ``env`` added to this process's environment."""
    done = subprocess.run(
        [sys.executable, "-m", "eqlab.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return CliOutput(done.returncode, done.stdout + done.stderr)


def eqlab_run(plan: str, folder: Path, *args: str, env: dict[str, str] | None = None) -> CliRun:
    """Write ``plan`` to ``folder`` and ``eqlab run`` it there (its own lab key, its own output)."""
    path = folder / "plan.yaml"
    path.write_text(plan, encoding="utf-8")
    out = folder / "out"
    done = eqlab_cli(
        "run", str(path), "--no-progress", "--out", str(out), "--key", str(folder / "lab.pem"), *args, env=env
    )
    folders = list(out.iterdir()) if out.exists() else []
    assert len(folders) == 1, done.printed[-6000:]
    return CliRun(done.exit_code, done.printed, folders[0])
