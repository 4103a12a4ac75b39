"""Run load suites (locust, in a child process) and judge the plan's SLOs on what they measured.

A plan with SLOs but no load suite in the run leaves the
SLOs unmeasured (the decision is then inconclusive, never granted on faith).

With auth settings, the lab obtains the plan's system token before locust starts and hands it to
the child in its environment (``TOKEN_ENV``): never on a command line (other users can read those)
nor in a file that stays. The scenario sends it with every request.

A suite with ``workers: N`` in its parameters (or ``eqlab run --load-workers N``) runs a locust
master and N workers (``eqlab.runner.load_distributed``); its statistics are the master's merged
ones, judged like a single process's, and its ``load-*.json`` says how many workers made the load
and what each sent.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eqlab.evidence import redaction
from eqlab.evidence.origins import OffOrigin
from eqlab.interrupt import ChildRun, StopRequest, run_child
from eqlab.oauth_client import AuthConfig, AuthError, TokenProvider, plain_http
from eqlab.plan.model import Slos
from eqlab.results import SloResult
from eqlab.runner.options import RunSetup

DEFAULTS = {"users": 10, "spawn_rate": 10, "duration": 10}
# A distributed run's waits (eqlab.runner.load_distributed): for the workers to connect (the lab's own
# in seconds; another machine's started by a person, who gets longer) and for their last statistics.
WORKER_CONNECT_S = {"local": 30.0, "remote": 300.0}
WORKER_FINISH_S = 15.0
WORKER_SILENCE_S = 10.0  # a worker without a heartbeat for this long is lost (locust lets 3 s heal)
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
        config = load_config(suite.params, setup.options.load_workers, setup.base_url, locustfile)
        allowed = min(_time_needed(config) + suite.timeout, setup.seconds_left())
        done = run_locust(config, allowed, setup.stop, env)
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
        failure = _failure(lines[-1]) if lines else None
        if failure is not None:
            run.lab_errors.append(f"load suite {folder.name} could not be measured: {redaction.text(failure)}")
            continue
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


def load_config(
    params: Mapping[str, object], workers_option: int | None, base_url: str, locustfile: Path
) -> dict[str, Any]:
    """What the load child is told: the suite's parameters over the defaults; ``--load-workers``
    over the plan's ``workers``."""
    config: dict[str, Any] = {**DEFAULTS, **params, "base_url": base_url, "locustfile": str(locustfile)}
    if workers_option is not None:
        config["workers"] = workers_option
    if int(config.get("workers") or 0) > 0:
        config["worker_connect_s"] = WORKER_CONNECT_S["remote" if config.get("master_bind") else "local"]
        config["worker_finish_s"] = WORKER_FINISH_S
        config["worker_silence_s"] = WORKER_SILENCE_S
    return config


def _time_needed(config: dict[str, Any]) -> float:
    return (
        float(config["duration"]) + float(config.get("worker_connect_s", 0)) + float(config.get("worker_finish_s", 0))
    )


def run_locust(config: dict[str, Any], time_limit_s: float, stop: StopRequest, env: dict[str, str]) -> ChildRun:
    """The load child on ``config``, stopped after ``time_limit_s`` or when the run is asked to stop
    (its workers with it: they are in its process group)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(config, handle)
    command = [sys.executable, "-m", "eqlab.runner.load_worker", handle.name]
    try:
        return run_child(command, time_limit_s, stop, env=env)
    finally:
        Path(handle.name).unlink()


def _failure(last_line: str) -> str | None:
    """The child's own account of why it could not measure (a worker crashed, never came...)."""
    try:
        said = json.loads(last_line)
    except ValueError:
        return None
    return str(said["error"]) if isinstance(said, dict) and "error" in said else None


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
