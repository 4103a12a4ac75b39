"""The label decision: a pure function of requirement results, SLOs and the plan's rules.

Every rule is evaluated and kept in the trace (so an auditor sees all of them); the verdict comes
from the first triggered rule in this fixed priority order:

1. shall-failed            any SHALL requirement failed                      -> refused
2. security-failed         any requirement of a security service failed      -> refused
3. slo-breached            any SLO measured outside its threshold            -> refused
4. lab-error               the run itself broke                              -> inconclusive
5. sut-error               a check of any requirement ended in an error      -> inconclusive
6. shall-unverified        a SHALL requirement errored, was skipped or not tested -> inconclusive
7. slo-unmeasured          an SLO could not be measured                      -> inconclusive
8. reservations-exceeded   more SHOULD/MAY failures than the plan allows     -> refused
9. reservations            SHOULD/MAY failures within the plan's allowance   -> granted-with-reservations
otherwise                                                                     -> granted

An error is never a failure: a check that could not reach a result (the system did not answer, a
secret was missing, a client crashed) proves nothing against the system, so it makes the verdict
inconclusive and is never counted among the failures that reservations allow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from eqlab.catalogue import Catalogue
from eqlab.plan.model import DecisionRules, Plan
from eqlab.results import Decision, ItemResult, RequirementResult, RuleStep, SloResult, Verdict, worst

UNVERIFIED = ("error", "skip", "not-tested")
RESERVABLE = ("fail",)  # errors are no failures: sut-error makes them inconclusive


def requirement_results(
    catalogue: Catalogue, in_scope: Sequence[str], items: Sequence[ItemResult], plan: Plan
) -> list[RequirementResult]:
    """Each requirement in scope with the worst outcome of its items (or why it has none)."""
    attested = {a.requirement: a for a in plan.attestations}
    excused = {n.requirement: n.reason for n in plan.not_tested}
    by_requirement: dict[str, list[ItemResult]] = {}
    for item in items:
        for rid in item.requirements:
            by_requirement.setdefault(rid, []).append(item)
    out = []
    for rid in in_scope:
        requirement = catalogue.get(rid)
        checks = by_requirement.get(rid, [])
        base = {
            "id": rid,
            "level": requirement.level,
            "service": requirement.service,
            "text": requirement.text,
            "source": requirement.source,
        }
        if rid in attested:
            a = attested[rid]
            evidence = {
                "reviewer": a.reviewer,
                "date": a.date.isoformat(),
                "evidence": a.evidence,
                **({"note": a.note} if a.note else {}),
            }
            out.append(
                RequirementResult(
                    **base,
                    status="attested",
                    reason=f"attested by {a.reviewer}",
                    items=[i.id for i in checks],
                    attestation=evidence,
                )
            )
        elif checks:
            status = worst([i.outcome for i in checks])
            reason = next((i.message for i in checks if i.outcome == status and i.message), None)
            out.append(RequirementResult(**base, status=status, reason=reason, items=[i.id for i in checks]))
        else:
            if rid in excused:
                reason = f"not tested: {excused[rid]}"
            elif requirement.verification == "attestation":
                reason = f"needs an attestation, which the plan lacks: {requirement.why_attested}"
            else:
                reason = "no check of this plan covers it"
            out.append(RequirementResult(**base, status="not-tested", reason=reason))
    return out


@dataclass(frozen=True)
class Findings:
    """What a rule found: the requirements concerned and/or a detail; empty means it did not trigger."""

    requirements: list[str]
    detail: str | None = None

    def __bool__(self) -> bool:
        return bool(self.requirements or self.detail)


@dataclass(frozen=True)
class Inputs:
    results: list[RequirementResult]
    slos: list[SloResult]
    lab_errors: list[str]
    rules: DecisionRules

    def ids(self, keep: Callable[[RequirementResult], bool]) -> list[str]:
        return [r.id for r in self.results if keep(r)]


def _shall_failed(x: Inputs) -> Findings:
    return Findings(x.ids(lambda r: r.level == "SHALL" and r.status == "fail"))


def _security_failed(x: Inputs) -> Findings:
    return Findings(x.ids(lambda r: r.service in x.rules.security_services and r.status == "fail"))


def _slo_breached(x: Inputs) -> Findings:
    breached = [f"{s.name} {s.measured:g} {s.unit} (limit {s.threshold:g})" for s in x.slos if s.passed is False]
    return Findings([], "; ".join(breached) or None)


def _lab_error(x: Inputs) -> Findings:
    return Findings([], "; ".join(x.lab_errors) or None)


def _sut_error(x: Inputs) -> Findings:
    return Findings(x.ids(lambda r: r.status == "error"))


def _shall_unverified(x: Inputs) -> Findings:
    return Findings(x.ids(lambda r: r.level == "SHALL" and r.status in UNVERIFIED))


def _slo_unmeasured(x: Inputs) -> Findings:
    return Findings([], ", ".join(s.name for s in x.slos if s.passed is None) or None)


def _reservations_exceeded(x: Inputs) -> Findings:
    should = x.ids(lambda r: r.level == "SHOULD" and r.status in RESERVABLE)
    may = x.ids(lambda r: r.level == "MAY" and r.status in RESERVABLE)
    limits = x.rules.reservations
    if len(should) <= limits.max_should_failures and len(may) <= limits.max_may_failures:
        return Findings([])
    allowed = f"allowed {limits.max_should_failures} SHOULD and {limits.max_may_failures} MAY"
    return Findings(should + may, f"{len(should)} SHOULD and {len(may)} MAY failures; {allowed}")


def _reservations(x: Inputs) -> Findings:
    return Findings(x.ids(lambda r: r.level != "SHALL" and r.status in RESERVABLE))


# (name, what it checks, verdict when it triggers, rule): the priority order of the module docstring.
RULES: tuple[tuple[str, str, Verdict, Callable[[Inputs], Findings]], ...] = (
    ("shall-failed", "every SHALL requirement is met", "refused", _shall_failed),
    ("security-failed", "no requirement of a security service fails", "refused", _security_failed),
    ("slo-breached", "every SLO is met", "refused", _slo_breached),
    ("lab-error", "the run completed without lab errors", "inconclusive", _lab_error),
    ("sut-error", "every check reached a result, none ended in an error", "inconclusive", _sut_error),
    ("shall-unverified", "every SHALL requirement was verified", "inconclusive", _shall_unverified),
    ("slo-unmeasured", "every SLO was measured", "inconclusive", _slo_unmeasured),
    (
        "reservations-exceeded",
        "SHOULD/MAY failures stay within the plan's allowance",
        "refused",
        _reservations_exceeded,
    ),
    ("reservations", "no SHOULD/MAY requirement fails", "granted-with-reservations", _reservations),
)


def decide(
    label: str,
    results: list[RequirementResult],
    slos: list[SloResult],
    lab_errors: list[str],
    rules: DecisionRules,
    decided_at: datetime,
    demo: bool = False,
) -> Decision:
    inputs = Inputs(results, slos, lab_errors, rules)
    trace: list[RuleStep] = []
    verdict: Verdict | None = None
    for name, description, consequence, rule in RULES:
        found = rule(inputs)
        if found and verdict is None:
            verdict = consequence
        outcome = "triggered" if found else "passed"
        trace.append(
            RuleStep(
                rule=name,
                description=f"{description} (else {consequence})",
                outcome=outcome,
                requirements=found.requirements,
                detail=found.detail,
            )
        )
    final: Verdict = verdict or "granted"
    granted = final.startswith("granted") and not demo  # a demo run on a throw-away platform labels nothing
    valid_until = (decided_at + timedelta(days=rules.validity_days)).date().isoformat() if granted else None
    ordered = sorted(trace, key=lambda step: step.outcome != "triggered")
    return Decision(label=label, verdict=final, reasons=ordered, valid_until=valid_until)
