"""What one run is: the plan, the scope chosen on the command line, and where it writes."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eqlab.catalogue import SELECTOR, Catalogue, selector_matches
from eqlab.interrupt import StopRequest
from eqlab.plan.loader import LoadedPlan, auth_settings
from eqlab.plan.model import Suite
from eqlab.pytest_plugin.run_config import ClientRunSettings, RunConfig, SuiteSettings, TargetSettings

PYTEST_KINDS = ("contract", "fuzz", "ui", "client")
# Load and fuzz traffic only ever goes to loopback unless an operator opts in: a lab must never
# flood a system by mistake.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
REMOTE_LOAD_ENV = "EQLAB_ALLOW_REMOTE_LOAD"


@dataclass(frozen=True)
class RunOptions:
    target: str | None = None  # overrides the plan's target.base_url
    suites: tuple[str, ...] = ()  # suite kinds to run (default: all of the plan)
    requirements: tuple[str, ...] = ()  # selectors narrowing the plan's scope
    keyword: str | None = None  # pytest -k expression
    workers: int = 1
    rerun_failed: Path | None = None
    out: Path | None = None
    progress: bool | None = None  # None: a live display when the output is a terminal
    quiet: bool = False  # no progress output at all (the caller reports)
    preflight: bool = True  # check secrets, the target and a token before any check
    demo: bool = False  # `eqlab demo`: the target is a throw-away embedded platform, the result is no label
    client_command: str | None = None  # replaces the run step of every client scenario
    interactive: bool = False  # a person drives the client: run steps are skipped, expect steps wait for Enter
    load_workers: int | None = None  # overrides the load suites' `workers` (0: one process, no master)


@dataclass
class RunSetup:
    """Everything decided before the first check runs."""

    loaded: LoadedPlan
    catalogue: Catalogue
    options: RunOptions
    suites_root: Path
    run_id: str
    run_dir: Path
    in_scope: list[str]
    started: datetime
    base_url: str
    suites: list[tuple[Suite, Path]] = field(default_factory=list)
    deadline: float = float("inf")  # time.monotonic() when the plan's time budget is spent
    stop: StopRequest = field(default_factory=StopRequest)  # set by SIGINT/SIGTERM during the run
    client_checks: ClientRunSettings | None = None  # the client run the client checks judge (journal, registration)

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()

    def auth_settings(self) -> dict[str, Any]:
        return auth_settings(self.loaded.plan, self.loaded.path)

    def run_config(self, kinds: tuple[str, ...]) -> RunConfig:
        """What the child pytest running the suites of ``kinds`` is told."""
        return RunConfig(
            run_id=self.run_id,
            run_dir=self.run_dir,
            catalogue=self.suites_root / "requirements",
            requirements=self.in_scope,
            environment=self.loaded.plan.environment,
            target=TargetSettings(
                base_url=self.base_url,
                auth=self.auth_settings(),
                allowed_origins=self.loaded.plan.target.allowed_origins,
            ),
            suites=[
                SuiteSettings(kind=s.kind, paths=[p], timeout=s.timeout, params=s.params)
                for s, p in self.suites
                if s.kind in kinds
            ],
            client=self.client_checks,
        )


def new_run_id(label: str, now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{label}-{secrets.token_hex(3)}"


def prepare(
    loaded: LoadedPlan, catalogue: Catalogue, options: RunOptions, suites_root: Path, out_root: Path
) -> RunSetup:
    for selector in options.requirements:
        if not SELECTOR.match(selector):
            raise ValueError(
                f"--requirements: '{selector}' is not a requirement ID or selector (service@n, service@n-m, service@*)"
            )
    plan = loaded.plan
    in_scope = catalogue.select(plan.requirements.include, plan.requirements.exclude)
    if options.requirements:
        in_scope = [rid for rid in in_scope if any(selector_matches(s, rid) for s in options.requirements)]
    unknown_kinds = sorted(set(options.suites) - set(plan.suite_kinds()))
    if unknown_kinds:
        raise ValueError(
            f"--suites: the plan has no {', '.join(unknown_kinds)} suite; it has {', '.join(plan.suite_kinds())}"
        )
    suites = [
        (s, loaded.suite_path(i, suites_root))
        for i, s in enumerate(plan.suites)
        if not options.suites or s.kind in options.suites
    ]
    base_url = (options.target or plan.target.base_url).rstrip("/")
    check_target_allowed(base_url, [s.kind for s, _ in suites])
    started = datetime.now(UTC)
    run_id = new_run_id(plan.label, started)
    run_dir = (options.out or out_root) / run_id  # made once the pre-flight passed
    deadline = time.monotonic() + plan.time_budget_s
    return RunSetup(
        loaded, catalogue, options, suites_root, run_id, run_dir, in_scope, started, base_url, suites, deadline
    )


def check_target_allowed(base_url: str, kinds: list[str]) -> None:
    risky = sorted(set(kinds) & {"load", "fuzz"})
    host = urlsplit(base_url).hostname or ""
    if risky and host not in LOOPBACK and os.environ.get(REMOTE_LOAD_ENV) != "1":
        raise ValueError(
            f"{' and '.join(risky)} suites only target loopback addresses, not {host}; "
            f"an operator who means it sets {REMOTE_LOAD_ENV}=1"
        )
