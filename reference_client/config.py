"""The client's configuration, from the environment the lab gives a client under test."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

INPUT_PREFIX = "EQLAB_INPUT_"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    fhir_base: str
    client_id: str
    redirect_uri: str | None = None
    username: str | None = None
    password: str | None = None
    key_file: Path | None = None
    scope: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> Config:
        missing = [name for name in ("EQLAB_FHIR_BASE", "EQLAB_CLIENT_ID") if not env.get(name)]
        if missing:
            raise ConfigError(f"set {' and '.join(missing)}")
        key = env.get("EQLAB_CLIENT_KEY")
        return cls(
            fhir_base=env["EQLAB_FHIR_BASE"].rstrip("/"),
            client_id=env["EQLAB_CLIENT_ID"],
            redirect_uri=env.get("EQLAB_REDIRECT_URI") or None,
            username=env.get("EQLAB_USERNAME") or None,
            password=env.get("EQLAB_PASSWORD") or None,
            key_file=Path(key) if key else None,
            scope=env.get("EQLAB_SCOPE") or None,
            inputs={k.removeprefix(INPUT_PREFIX).lower(): v for k, v in env.items() if k.startswith(INPUT_PREFIX)},
        )

    def require(self, **values: str | None) -> None:
        """Fail clearly when a scenario needs settings the environment did not give."""
        missing = [f"EQLAB_{name.upper()}" for name, value in values.items() if not value]
        if missing:
            raise ConfigError(f"this scenario needs {', '.join(missing)}")

    def input(self, name: str, default: str) -> str:
        return self.inputs.get(name, default)
