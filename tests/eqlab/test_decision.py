"""The label decision as a table of cases (STYLE #3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eqlab.catalogue import Catalogue, Requirement
from eqlab.decision import decide, requirement_results
from eqlab.plan.model import DecisionRules, Plan, Reservations
from eqlab.results import RequirementResult, SloResult

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def req(rid: str, level: str, status: str) -> RequirementResult:
    service = rid.split("@", maxsplit=1)[0]
    return RequirementResult(
        id=rid, level=level, service=service, text="a requirement text", source="SPEC", status=status
    )  # type: ignore[arg-type]


def slo(name: str, passed: bool | None) -> SloResult:
    return SloResult(
        name=name, threshold=100, measured=None if passed is None else (50 if passed else 150), passed=passed, unit="ms"
    )


SHALL_OK = req("fhir@1", "SHALL", "pass")

CASES = [
    ("all pass", [SHALL_OK, req("fhir@2", "SHOULD", "pass")], [], [], "granted", None),
    ("attested counts as met", [SHALL_OK, req("fhir@2", "SHALL", "attested")], [], [], "granted", None),
    ("a SHALL fails", [SHALL_OK, req("fhir@2", "SHALL", "fail")], [], [], "refused", "shall-failed"),
    (
        "fail outranks error",
        [req("fhir@2", "SHALL", "error"), req("fhir@3", "SHALL", "fail")],
        [],
        [],
        "refused",
        "shall-failed",
    ),
    ("a SHALL errored", [SHALL_OK, req("fhir@2", "SHALL", "error")], [], [], "inconclusive", "sut-error"),
    (
        "a SHALL not tested",
        [SHALL_OK, req("fhir@2", "SHALL", "not-tested")],
        [],
        [],
        "inconclusive",
        "shall-unverified",
    ),
    ("a SHALL skipped", [SHALL_OK, req("fhir@2", "SHALL", "skip")], [], [], "inconclusive", "shall-unverified"),
    ("security SHOULD fails", [SHALL_OK, req("auth@2", "SHOULD", "fail")], [], [], "refused", "security-failed"),
    ("SLO breached", [SHALL_OK], [slo("p95", False)], [], "refused", "slo-breached"),
    ("SLO unmeasured", [SHALL_OK], [slo("p95", None)], [], "inconclusive", "slo-unmeasured"),
    ("SLO met", [SHALL_OK], [slo("p95", True)], [], "granted", None),
    ("lab error", [SHALL_OK], [], ["the test process crashed"], "inconclusive", "lab-error"),
    ("proven failure outranks lab error", [req("fhir@2", "SHALL", "fail")], [], ["crash"], "refused", "shall-failed"),
    (
        "a SHOULD fails",
        [SHALL_OK, req("fhir@2", "SHOULD", "fail")],
        [],
        [],
        "granted-with-reservations",
        "reservations",
    ),
    ("a MAY errored is no reservation", [SHALL_OK, req("fhir@2", "MAY", "error")], [], [], "inconclusive", "sut-error"),
    (
        "a SHOULD errored is no failure",
        [SHALL_OK, req("fhir@2", "SHOULD", "error")],
        [],
        [],
        "inconclusive",
        "sut-error",
    ),
    (
        "errors never exceed the reservations",
        [SHALL_OK, *(req(f"fhir@{n}", "SHOULD", "error") for n in range(2, 8)), req("fhir@9", "MAY", "error")],
        [],
        [],
        "inconclusive",
        "sut-error",
    ),
    (
        "a SHOULD failure and a MAY error",
        [SHALL_OK, req("fhir@2", "SHOULD", "fail"), req("fhir@3", "MAY", "error")],
        [],
        [],
        "inconclusive",
        "sut-error",
    ),
    (
        "a SHOULD not tested is no reservation",
        [SHALL_OK, req("fhir@2", "SHOULD", "not-tested")],
        [],
        [],
        "granted",
        None,
    ),
    (
        "too many SHOULD failures",
        [SHALL_OK, *(req(f"fhir@{n}", "SHOULD", "fail") for n in range(2, 6))],
        [],
        [],
        "refused",
        "reservations-exceeded",
    ),
    ("nothing in scope", [], [], [], "granted", None),
]


@pytest.mark.parametrize(
    ("case", "results", "slos", "lab_errors", "verdict", "deciding_rule"), CASES, ids=[c[0] for c in CASES]
)
def test_decision_table(
    case: str,
    results: list[RequirementResult],
    slos: list[SloResult],
    lab_errors: list[str],
    verdict: str,
    deciding_rule: str | None,
) -> None:
    decision = decide(
        "fhir-core", results, slos, lab_errors, DecisionRules(reservations=Reservations(max_should_failures=3)), NOW
    )
    assert decision.verdict == verdict, case
    triggered = [step.rule for step in decision.reasons if step.outcome == "triggered"]
    assert (triggered[0] if triggered else None) == deciding_rule
    assert len(decision.reasons) == 9  # every rule is in the trace
    assert decision.reasons[: len(triggered)] == [s for s in decision.reasons if s.outcome == "triggered"]


def test_errored_requirements_are_named_as_errors_never_as_reservations() -> None:
    results = [
        SHALL_OK,
        req("fhir@2", "SHOULD", "fail"),
        req("fhir@3", "SHOULD", "error"),
        req("fhir@4", "MAY", "error"),
    ]
    decision = decide("fhir-core", results, [], [], DecisionRules(), NOW)
    steps = {step.rule: step for step in decision.reasons}
    assert steps["sut-error"].requirements == ["fhir@3", "fhir@4"]
    assert steps["reservations"].requirements == ["fhir@2"]
    assert steps["reservations-exceeded"].outcome == "passed"


def test_trace_names_the_requirements_that_triggered() -> None:
    results = [req("fhir@1", "SHALL", "fail"), req("fhir@2", "SHALL", "error"), req("fhir@3", "SHOULD", "fail")]
    decision = decide("x", results, [], [], DecisionRules(), NOW)
    steps = {s.rule: s for s in decision.reasons}
    assert steps["shall-failed"].requirements == ["fhir@1"]
    assert steps["shall-unverified"].requirements == ["fhir@2"]
    assert steps["reservations"].requirements == ["fhir@3"]
    assert steps["slo-breached"].outcome == "passed"


def test_validity_only_for_granted_labels() -> None:
    granted = decide("x", [SHALL_OK], [], [], DecisionRules(validity_days=30), NOW)
    assert granted.valid_until == "2026-12-23"
    refused = decide("x", [req("fhir@1", "SHALL", "fail")], [], [], DecisionRules(), NOW)
    assert refused.valid_until is None


def test_a_requirement_only_an_attestation_can_verify_says_so_when_the_plan_has_none() -> None:
    checked = Requirement(id="auth@1", level="SHALL", text="Tokens are checked.", source="SPEC", actor="server")
    attested_only = Requirement(
        id="auth@2", level="SHALL", text="Expired tokens are refused.", source="SPEC", actor="server",
        verification="attestation", why_attested="The lab cannot sign tokens with the server's key.",
    )  # fmt: skip
    catalogue = Catalogue({r.id: r for r in (checked, attested_only)}, {"auth": "Auth"}, "0" * 64)
    plan = Plan.model_validate(
        {
            "name": "p", "label": "l", "version": "1", "environment": "integration",
            "target": {"base_url": "http://127.0.0.1:9/fhir"}, "suites": [{"kind": "contract"}],
        }
    )  # fmt: skip
    results = {r.id: r for r in requirement_results(catalogue, ["auth@1", "auth@2"], [], plan)}
    assert results["auth@1"].reason == "no check of this plan covers it"
    assert results["auth@2"].status == "not-tested"
    assert results["auth@2"].reason == (
        "needs an attestation, which the plan lacks: The lab cannot sign tokens with the server's key."
    )
