"""The state of one pytest session of the lab: the target, its settings, evidence, events and tokens.

Kept in the config's stash (``SESSION_KEY``), never in module globals (STYLE #7). The settings
come from the run configuration ``eqlab run`` writes (``--eqlab-config``) or, for a plain
``pytest`` run, from ``--eqlab-target`` and optionally ``--eqlab-plan`` (whose ``target.auth``
is then used): a ``RunConfig`` either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from eqlab import yamlsource
from eqlab.catalogue import Catalogue
from eqlab.evidence import redaction
from eqlab.evidence.origins import OriginGuard, allowed_origins
from eqlab.evidence.recorder import EvidenceRecorder, EvidenceStore
from eqlab.oauth_client.config import AuthConfig
from eqlab.oauth_client.lab import LabTokens
from eqlab.plan.loader import auth_settings
from eqlab.plan.model import Plan
from eqlab.pytest_plugin.events import PluginEvent, event_line
from eqlab.pytest_plugin.outcomes import ItemReports
from eqlab.pytest_plugin.run_config import (
    DEFAULT_TIMEOUT_S,
    RunConfig,
    RunConfigError,
    SuiteSettings,
    TargetSettings,
    read_run_config,
)

TOKEN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Target:
    """The system under test, as the plan describes it."""

    base_url: str
    environment: str = "integration"
    auth: dict[str, Any] = field(default_factory=dict)
    run_id: str = "adhoc"
    allowed_origins: tuple[str, ...] = ()  # besides the base URL's: the lab sends nowhere else


@dataclass
class LabSession:
    run_config: RunConfig
    target: Target
    catalogue: Catalogue | None
    store: EvidenceStore | None
    events: IO[str] | None = None
    reports: dict[str, ItemReports] = field(default_factory=dict)  # of the checks under way, by node id
    current_recorder: EvidenceRecorder | None = None  # the running check's: token exchanges go there
    _transport: httpx.BaseTransport | None = None
    _tokens: LabTokens | None = None
    _suite_by_file: dict[str, SuiteSettings] = field(default_factory=dict)

    @property
    def transport(self) -> httpx.BaseTransport:
        """One connection pool for the session's checks (a new one per check costs ~40 ms of TLS setup),
        sending to the system under test only (``eqlab.evidence.origins``)."""
        if self._transport is None:
            allowed = allowed_origins(self.target.base_url, self.target.allowed_origins)
            self._transport = OriginGuard(httpx.HTTPTransport(retries=0), allowed)
        return self._transport

    @cached_property
    def auth(self) -> AuthConfig | None:
        """The plan's auth settings, or None when the plan has none (the target is open)."""
        return AuthConfig.from_dict(self.target.auth) if self.target.auth else None

    def tokens(self) -> LabTokens | None:
        """The session's token source (made on first use), or None without auth settings."""
        auth = self.auth
        if auth is None:
            return None
        if self._tokens is None:
            self._tokens = LabTokens(
                auth, self.target.base_url, self._recorder, self.transport, timeout=TOKEN_TIMEOUT_S
            )
        return self._tokens

    def scrub(self, text: str) -> str:
        """``text`` without secrets: those redaction recognises and those this session's tokens handled."""
        cleaned = redaction.text(text)
        return redaction.known(cleaned, self._tokens.secrets) if self._tokens is not None else cleaned

    def end_check(self) -> None:
        """The running check is over: close the clients it was given, stop recording into it."""
        if self._tokens is not None:
            self._tokens.close_clients()
        self.current_recorder = None

    def _recorder(self) -> EvidenceRecorder:
        # Outside a check (there is none running) the exchanges are nobody's evidence.
        return self.current_recorder or EvidenceRecorder(self.store)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
        if self._tokens is not None:
            self._tokens.close_clients()
        if self._transport is not None:
            self._transport.close()

    def emit(self, event: PluginEvent) -> None:
        if self.events is not None:
            self.events.write(event_line(event))
            self.events.flush()

    def suite_of(self, item: pytest.Item) -> SuiteSettings:
        """The plan's suite a check belongs to (by its file; the hooks ask several times per check)."""
        key = str(item.path)
        if key not in self._suite_by_file:
            self._suite_by_file[key] = self._suite_of_file(Path(key).resolve())
        return self._suite_by_file[key]

    @cached_property
    def _suite_roots(self) -> list[tuple[list[Path], SuiteSettings]]:
        return [([p.resolve() for p in suite.paths], suite) for suite in self.run_config.suites]

    def _suite_of_file(self, path: Path) -> SuiteSettings:
        for roots, suite in self._suite_roots:
            if any(path.is_relative_to(root) for root in roots):
                return suite
        parts = path.parts
        kind = parts[parts.index("suites") + 1] if "suites" in parts[:-1] else "contract"
        return SuiteSettings(kind=kind, timeout=DEFAULT_TIMEOUT_S)


SESSION_KEY = pytest.StashKey[LabSession]()
RECORDER_KEY = pytest.StashKey[EvidenceRecorder]()
NODEID_KEY = pytest.StashKey[str]()  # the check's own node id (subtests report under others)


def run_config_from_options(config: pytest.Config) -> RunConfig | None:
    """The session's settings: the run configuration, or what the command-line options give."""
    path = config.getoption("eqlab_config", None)
    if path:
        try:
            return read_run_config(Path(path))
        except RunConfigError as exc:
            raise pytest.UsageError(f"--eqlab-config: {exc}") from None
    url = config.getoption("eqlab_target", None)
    plan_path = config.getoption("eqlab_plan", None)
    catalogue = config.getoption("eqlab_catalogue", None)
    catalogue_path = Path(catalogue) if catalogue else None
    if plan_path:
        plan = _plan(Path(plan_path))
        target = TargetSettings(
            base_url=url.rstrip("/") if url else plan.target.base_url,
            auth=auth_settings(plan, Path(plan_path)),
            allowed_origins=plan.target.allowed_origins,
        )
        return RunConfig(target=target, environment=plan.environment, catalogue=catalogue_path)
    if url:
        return RunConfig(target=TargetSettings(base_url=url.rstrip("/")), catalogue=catalogue_path)
    return None


def _plan(path: Path) -> Plan:
    try:
        # Only the target is used here: the production consent concerns what `eqlab run` schedules.
        plan: Plan = yamlsource.validate(yamlsource.load(path), Plan, context={"allow_production": True})
    except yamlsource.SourceError as exc:
        raise pytest.UsageError(f"--eqlab-plan {path}:\n  " + "\n  ".join(str(p) for p in exc.problems)) from None
    return plan
