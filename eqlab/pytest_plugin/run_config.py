"""The run configuration: what ``eqlab run`` tells its child pytest (``--eqlab-config run-config.json``).

The runner writes it (``RunSetup.run_config``), the plugin reads it (``read_run_config``): one model on
both sides, extra keys refused, so a configuration the plugin cannot use stops the child before any
check runs, with every problem named. A plain ``pytest --eqlab-target URL`` run builds the same model
from its options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eqlab.plan.model import Environment

DEFAULT_TIMEOUT_S = 60.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSettings(Strict):
    base_url: str
    auth: dict[str, Any] = Field(
        default_factory=dict,
        description="the plan's target.auth as AuthConfig.from_dict reads it (key_file absolute); empty: no auth",
    )
    allowed_origins: list[str] = Field(default_factory=list, description="besides the base URL's origin")


class SuiteSettings(Strict):
    """One suite of the plan: its checks are the files under ``paths``."""

    kind: str
    paths: list[Path] = Field(default_factory=list)
    timeout: float = Field(DEFAULT_TIMEOUT_S, description="seconds one check may take")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)


class ClientRunSettings(Strict):
    """The client run the client checks judge: its journal and the client's registration."""

    journal: Path
    client_id: str
    redirect_uris: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)


class RunConfig(Strict):
    target: TargetSettings
    run_id: str = "adhoc"
    run_dir: Path | None = Field(None, description="where evidence and events.jsonl go; none: nowhere")
    catalogue: Path | None = Field(
        None, description="folder of the requirement catalogue the markers are checked against"
    )
    requirements: list[str] | None = Field(None, description="the requirement IDs in scope; none: every check")
    environment: Environment = "integration"
    suites: list[SuiteSettings] = Field(default_factory=list)
    client: ClientRunSettings | None = None


class RunConfigError(Exception):
    """A run configuration file that is not one: unreadable, not JSON, or not the model."""


def read_run_config(path: Path) -> RunConfig:
    try:
        return RunConfig.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise RunConfigError(f"run configuration {path} cannot be read: {exc.strerror}") from None
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or '(file)'}: {error['msg']}" for error in exc.errors()
        ]
        raise RunConfigError(f"run configuration {path} is not valid:\n  " + "\n  ".join(problems)) from None


def write_run_config(config: RunConfig, path: Path) -> None:
    path.write_text(config.model_dump_json(), encoding="utf-8")
