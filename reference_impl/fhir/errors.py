"""Errors as OperationOutcomes: every failure the FHIR layer reports goes through here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    diagnostics: str
    code: str = "processing"
    severity: str = "error"
    expression: tuple[str, ...] = ()
    details_code: str | None = None
    details_system: str | None = None

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.details_code:
            coding = {"code": self.details_code}
            if self.details_system:
                coding["system"] = self.details_system
            issue["details"] = {"coding": [coding]}
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


@dataclass
class FhirError(Exception):
    """An error answered with ``status`` and an OperationOutcome of ``issues``."""

    status: int
    issues: list[Issue]
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: " + "; ".join(i.diagnostics for i in self.issues)

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def error(status: int, diagnostics: str, code: str = "processing", expression: Sequence[str] = ()) -> FhirError:
    return FhirError(status, [Issue(diagnostics, code, expression=tuple(expression))])


def invalid(diagnostics: str, expression: Sequence[str] = (), code: str = "invalid") -> FhirError:
    return error(400, diagnostics, code, expression)


def not_found(diagnostics: str) -> FhirError:
    return error(404, diagnostics, "not-found")


def information(diagnostics: str) -> dict[str, Any]:
    return operation_outcome([Issue(diagnostics, "informational", "information")])
