"""Run load suites (locust, in a child process) and judge the plan's SLOs on what they measured.

A plan with SLOs but no load suite in the run leaves the
SLOs unmeasured (the decision is then inconclusive, never granted on faith).

With auth settings, the lab obtains the plan's system token before locust starts and hands it to
the child in its environment (``TOKEN_ENV``): never on a command line (other users can read those)
nor in a file that stays. The scenario sends it with every request.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eqlab.evidence import redaction
from eqlab.evidence.origins import OffOrigin
from eqlab.oauth_client import AuthConfig, AuthError, TokenProvider, plain_http
from eqlab.plan.model import Slos
from eqlab.results import SloResult
from eqlab.runner.interrupt import run_child
from eqlab.runner.options import RunSetup

DEFAULTS = {"users": 10, "spawn_rate": 10, "duration": 10}
TOKEN_ENV = "EQLAB_LOAD_ACCESS_TOKEN"  # the locustfile reads the same name
SLO_MEASURES = {  # plan key -> (statistic, unit, larger is better)
    "p95_ms": ("p95_ms", "ms", False),
    "p99_ms": ("p99_ms", "ms", False),
    "error_rate": ("error_rate", "ratio", False),
    "throughput_rps": ("throughput_rps", "requests/s", True),
}


@dataclass
class LoadRun:
    stats: list[dict[str, Any]] = field(default_factory=list)
    lab_errors: list[str] = field(default_factory=list)


def load_environment(setup: RunSetup) -> dict[str, str]:
    """The child's environment: the lab's, plus the system token when the plan has a system client."""
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    settings = setup.auth_settings()
    if not settings:
        return env
    config = AuthConfig.from_dict(settings)
    if config.has_system_client:
        http = plain_http(setup.base_url, setup.loaded.plan.target.allowed_origins)
        env[TOKEN_ENV] = TokenProvider(config, setup.base_url, http).system()
    return env


def run_load_suites(setup: RunSetup) -> LoadRun:
    run = LoadRun()
    suites = [(s, p) for s, p in setup.suites if s.kind == "load"]
    if not suites:
        return run
    try:
        env = load_environment(setup)
    except (AuthError, OffOrigin) as exc:
        run.lab_errors.append(f"the load suites did not run: the lab could not authenticate: {exc}")
        return run
    for index, (suite, folder) in enumerate(suites):
        if setup.stop.requested:
            run.lab_errors.append(f"load suite {folder.name} did not run: the run was interrupted")
            continue
        locustfile = folder / "locustfile.py" if folder.is_dir() else folder
        config = {**DEFAULTS, **suite.params, "base_url": setup.base_url, "locustfile": str(locustfile)}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(config, handle)
        command = [sys.executable, "-m", "eqlab.runner.load_worker", handle.name]
        allowed = min(float(config["duration"]) + suite.timeout, setup.seconds_left())
        try:
            done = run_child(command, allowed, setup.stop, env=env)
        finally:
            Path(handle.name).unlink()
        if done.exit_code is None:
            if setup.stop.requested:
                why = f"stopped: the run was interrupted ({setup.stop.signal_name})"
            elif setup.seconds_left() <= 0:
                why = f"stopped: the plan's time budget ({setup.loaded.plan.time_budget_s:.0f} s) was spent"
            else:
                why = f"did not finish in {allowed:.0f} s"
            run.lab_errors.append(f"load suite {folder.name} {why}")
            continue
        lines = done.stdout.strip().splitlines()
        if done.exit_code != 0 or not lines:
            run.lab_errors.append(
                f"load suite {folder.name} failed (exit {done.exit_code}): "
                + redaction.text((done.stderr or done.stdout)[-600:])
            )
            continue
        stats = {"suite": folder.name, "users": config["users"], **json.loads(lines[-1])}
        (setup.run_dir / f"load-{index + 1}-{folder.name}.json").write_text(
            json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        run.stats.append(stats)
    return run


def judge_slos(slos: Slos, stats: list[dict[str, Any]]) -> list[SloResult]:
    """Each SLO of the plan against the worst value any load suite measured."""
    results = []
    for name, threshold in slos.defined().items():
        key, unit, larger_is_better = SLO_MEASURES[name]
        values = [s[key] for s in stats if s.get(key) is not None]
        if not values:
            results.append(SloResult(name=name, threshold=threshold, measured=None, passed=None, unit=unit))
            continue
        measured = min(values) if larger_is_better else max(values)
        passed = measured >= threshold if larger_is_better else measured <= threshold
        results.append(
            SloResult(name=name, threshold=threshold, measured=round(float(measured), 4), passed=passed, unit=unit)
        )
    return results
