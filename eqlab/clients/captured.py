"""One request of the client under test, as the checks see it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from eqlab.results import Exchange, Model


class ClientRequest(Model):
    """One request of the client under test, as the checks see it (credentials sealed)."""

    n: int = Field(..., description="arrival order in the run, from 1")
    scenario: str
    step: str
    injected: bool = Field(False, description="the platform's answer was an injected failure, not its own")
    method: str
    path: str
    query: list[tuple[str, str]] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict, description="lower-cased names")
    form: list[tuple[str, str]] | None = None
    json_body: Any = None
    status: int | None = None
    response_headers: dict[str, str] = Field(default_factory=dict)
    response_json: Any = None
    arrived: float = Field(..., description="seconds since the run's recorder started")
    exchange: Exchange | None = Field(None, description="the same exchange as evidence, redacted for the reports")

    def param(self, name: str) -> str | None:
        """The first value of ``name`` in the query, else in the form."""
        for key, value in [*self.query, *(self.form or [])]:
            if key == name:
                return value
        return None
