"""What a run produces: items with their evidence, requirement statuses, SLOs and the decision.

``RunResults`` is what ``results.json`` holds (its JSON Schema is committed as
``reports/results.schema.json``); every report is rendered from it and nothing else.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
Outcome = Literal["pass", "fail", "error", "skip", "not-tested"]
# Worst first: a proven failure outweighs a check that could not run, which outweighs no check.
OUTCOME_PRIORITY: tuple[Outcome, ...] = ("fail", "error", "not-tested", "skip", "pass")
Verdict = Literal["granted", "granted-with-reservations", "refused", "inconclusive"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(Model):
    """An HTTP request or response as evidence (secrets redacted)."""

    headers: dict[str, str] = Field(default_factory=dict)
    body_excerpt: str | None = Field(None, description="the start of the body, as text; secrets redacted")
    body_size: int = 0
    body_sha256: str | None = None
    body_file: str | None = Field(None, description="path, relative to the run folder, of the whole body when large")
    truncated: bool = False


class Exchange(Model):
    id: str
    method: str
    url: str
    request: Message
    status: int | None = None
    response: Message | None = None
    started: str
    elapsed_ms: float | None = None
    error: str | None = Field(None, description="transport error when no response came")


class ItemResult(Model):
    id: str = Field(..., description="stable item ID (the pytest node ID)")
    name: str
    suite: str
    requirements: list[str]
    outcome: Outcome
    message: str | None = None
    detail: str | None = Field(None, description="longer failure detail (assertion, traceback excerpt)")
    duration_s: float = 0.0
    started: str | None = None
    exchanges: list[Exchange] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    carried_forward_from: str | None = Field(None, description="run ID whose passing result this item reuses")


class RequirementResult(Model):
    id: str
    level: Literal["SHALL", "SHOULD", "MAY"]
    service: str
    text: str
    source: str
    status: Outcome | Literal["attested"]
    reason: str | None = None
    items: list[str] = Field(default_factory=list)
    attestation: dict[str, str] | None = None


class SloResult(Model):
    name: str
    threshold: float
    measured: float | None
    passed: bool | None = Field(..., description="None when it could not be measured")
    unit: str


class RuleStep(Model):
    """One rule of the decision and what it found."""

    rule: str
    description: str
    outcome: Literal["triggered", "passed", "not-applicable"]
    requirements: list[str] = Field(default_factory=list)
    detail: str | None = None


class Decision(Model):
    label: str
    verdict: Verdict
    reasons: list[RuleStep]
    valid_until: str | None = None


class PlanInfo(Model):
    name: str
    label: str
    version: str
    environment: str
    path: str
    sha256: str


class CatalogueInfo(Model):
    sha256: str
    requirements: int


class RunResults(Model):
    schema_version: str = SCHEMA_VERSION
    run_id: str
    tool: dict[str, str]
    plan: PlanInfo
    target: dict[str, str]
    catalogue: CatalogueInfo
    started: str
    finished: str
    suites: list[str]
    items: list[ItemResult]
    requirements: list[RequirementResult]
    slos: list[SloResult] = Field(default_factory=list)
    lab_errors: list[str] = Field(default_factory=list, description="problems of the run itself (collection, crashes)")
    decision: Decision
    rerun_of: str | None = None
    signing_key: str | None = Field(
        None, description="fingerprint (SHA256:<base64>) of the lab public key that signs this run"
    )
    demo: bool = Field(False, description="a run of `eqlab demo` on a throw-away embedded platform: never a label")
    interrupted: str | None = Field(None, description="why the run stopped before every check ran (signal, time)")


def worst(outcomes: list[Outcome]) -> Outcome:
    for outcome in OUTCOME_PRIORITY:
        if outcome in outcomes:
            return outcome
    return "not-tested"
