"""Which requests a step expects from the client, and which ones the platform answers with a failure.

A matcher is written in a plan (``expect`` and ``respond`` steps): a method, a path pattern (a
regular expression matched against the whole path), and patterns for query or form fields and
headers (``null``: the field must be present, whatever its value). Patterns see the sealed and
redacted values (``eqlab.clients.sealing``), as the checks do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eqlab.clients.captured import ClientRequest


class RequestMatcher(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str | None = Field(None, description="HTTP method; any when absent")
    path: str = Field(..., description="regular expression matched against the whole path")
    query: dict[str, str | None] = Field(default_factory=dict, description="field -> pattern (null: present)")
    form: dict[str, str | None] = Field(default_factory=dict, description="form field -> pattern (null: present)")
    headers: dict[str, str | None] = Field(default_factory=dict, description="header -> pattern (null: present)")

    @field_validator("path")
    @classmethod
    def _path_compiles(cls, value: str) -> str:
        return _compiled(value)

    @field_validator("query", "form", "headers")
    @classmethod
    def _patterns_compile(cls, values: dict[str, str | None]) -> dict[str, str | None]:
        for pattern in values.values():
            if pattern is not None:
                _compiled(pattern)
        return values

    def matches(self, request: ClientRequest) -> bool:
        if self.method and request.method.upper() != self.method.upper():
            return False
        if not re.fullmatch(self.path, request.path):
            return False
        return (
            _fields_match(self.query, request.query)
            and _fields_match(self.form, request.form or [])
            and _fields_match({k.lower(): v for k, v in self.headers.items()}, list(request.headers.items()))
        )

    def describe(self) -> str:
        """``GET /fhir/Patient.* with query _count`` — for a person reading why a step failed."""
        parts = [f"{self.method or 'any method'} {self.path}"]
        for kind, wanted in (("query", self.query), ("form", self.form), ("header", self.headers)):
            if wanted:
                shown = ", ".join(name if pattern is None else f"{name}~{pattern}" for name, pattern in wanted.items())
                parts.append(f"{kind} {shown}")
        return " with ".join(parts)


def _compiled(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
    return pattern


def _fields_match(wanted: dict[str, str | None], present: list[tuple[str, str]]) -> bool:
    for name, pattern in wanted.items():
        values = [value for key, value in present if key == name]
        if not values:
            return False
        if pattern is not None and not any(re.fullmatch(pattern, value) for value in values):
            return False
    return True


@dataclass
class Injection:
    """Answer the next ``remaining`` requests that match ``when`` with this response, not the platform's."""

    when: RequestMatcher
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    remaining: int = 1
