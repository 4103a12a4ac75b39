"""RunResults for the report tests: a granted run, a refused one with every kind of outcome, an
inconclusive one, and hostile content from a system under test."""

from __future__ import annotations

from eqlab.results import (
    CatalogueInfo,
    Decision,
    Exchange,
    ItemResult,
    Message,
    PlanInfo,
    RequirementResult,
    RuleStep,
    RunResults,
    SloResult,
)

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
BREAKOUT = "</script><script>alert(2)</script><!--"
HOSTILE = f"{SCRIPT} {ATTRIBUTE} {BREAKOUT} \u2028\u2029 & \x00\x1b"


def exchange(n: int, status: int | None = 200, body: str = '{"resourceType":"Patient"}', **extra: object) -> Exchange:
    return Exchange(
        id=f"x{n:05d}",
        method="GET",
        url=f"https://sut.example/fhir/Patient/{n}",
        request=Message(headers={"accept": "application/fhir+json", "authorization": "[redacted]"}),
        status=status,
        response=Message(
            headers={"content-type": "application/fhir+json", "x-request-id": f"req-{n}"},
            body_excerpt=body,
            body_size=len(body),
            body_sha256="ab" * 32,
        )
        if status is not None
        else None,
        started="2026-11-23T10:00:01.000+00:00",
        elapsed_ms=12.5 + n,
        **extra,  # type: ignore[arg-type]
    )


def item(
    node: str,
    outcome: str,
    requirements: list[str],
    suite: str = "contract",
    message: str | None = None,
    **extra: object,
) -> ItemResult:
    return ItemResult(
        id=f"suites/{suite}/test_fhir.py::{node}",
        name=node.rsplit("::", maxsplit=1)[-1].replace("_", " "),
        suite=suite,
        requirements=requirements,
        outcome=outcome,  # type: ignore[arg-type]
        message=message,
        duration_s=0.25,
        started="2026-11-23T10:00:01.000+00:00",
        **extra,  # type: ignore[arg-type]
    )


def requirement(rid: str, level: str, status: str, items: list[str], reason: str | None = None) -> RequirementResult:
    return RequirementResult(
        id=rid,
        level=level,  # type: ignore[arg-type]
        service=rid.split("@", maxsplit=1)[0],
        text=f"The server supports the behaviour described by {rid}.",
        source="SPEC §4.2",
        status=status,  # type: ignore[arg-type]
        reason=reason,
        items=items,
    )


def step(rule: str, outcome: str, requirements: list[str] | None = None, detail: str | None = None) -> RuleStep:
    return RuleStep(
        rule=rule,
        description=f"the {rule} rule holds",
        outcome=outcome,  # type: ignore[arg-type]
        requirements=requirements or [],
        detail=detail,
    )


def run(
    run_id: str,
    items: list[ItemResult],
    requirements: list[RequirementResult],
    decision: Decision,
    slos: list[SloResult] | None = None,
    lab_errors: list[str] | None = None,
    suites: list[str] | None = None,
) -> RunResults:
    return RunResults(
        run_id=run_id,
        tool={"version": "0.1.0", "name": "eqlab"},
        plan=PlanInfo(
            name="fhir-core",
            label="fhir-core",
            version="1.2",
            environment="qualification",
            path="testplans/fhir-core.yaml",
            sha256="1" * 64,
        ),
        target={"base_url": "https://sut.example/fhir", "vendor": "ACME Health"},
        catalogue=CatalogueInfo(sha256="2" * 64, requirements=49),
        started="2026-11-23T10:00:00+00:00",
        finished="2026-11-23T10:05:30+00:00",
        suites=suites or ["contract", "fuzz"],
        items=items,
        requirements=requirements,
        slos=slos or [],
        lab_errors=lab_errors or [],
        decision=decision,
    )


def granted_run() -> RunResults:
    items = [
        item("test_read", "pass", ["fhir@1"], exchanges=[exchange(1)]),
        item("test_search[name]", "pass", ["fhir@2", "fhir@3"], exchanges=[exchange(2), exchange(3)]),
        item("test_fuzz_patient", "pass", ["fhir@4"], suite="fuzz"),
        item("test_capability", "fail", ["fhir@5"], message="CapabilityStatement lacks _summary"),
    ]
    requirements = [
        requirement("fhir@1", "SHALL", "pass", [items[0].id]),
        requirement("fhir@2", "SHALL", "pass", [items[1].id]),
        requirement("fhir@3", "SHOULD", "pass", [items[1].id]),
        requirement("fhir@4", "SHALL", "pass", [items[2].id]),
        requirement("fhir@5", "SHOULD", "fail", [items[3].id], reason="CapabilityStatement lacks _summary"),
    ]
    decision = Decision(
        label="fhir-core",
        verdict="granted-with-reservations",
        reasons=[
            step("reservations", "triggered", ["fhir@5"]),
            step("shall-failed", "passed"),
            step("slo-breached", "passed"),
        ],
        valid_until="2027-11-23",
    )
    return run(
        "run-granted-0001",
        items,
        requirements,
        decision,
        slos=[SloResult(name="read p95", threshold=300, measured=120.5, passed=True, unit="ms")],
    )


def plain_granted_run() -> RunResults:
    base = granted_run()
    items = [i for i in base.items if i.outcome == "pass"]
    requirements = [r for r in base.requirements if r.status == "pass"]
    decision = Decision(
        label="fhir-core", verdict="granted", reasons=[step("shall-failed", "passed")], valid_until="2027-11-23"
    )
    return base.model_copy(
        update={"run_id": "run-granted-0002", "items": items, "requirements": requirements, "decision": decision}
    )


def refused_run() -> RunResults:
    body_file = "evidence/" + "cd" * 32 + ".bin"
    items = [
        item("test_read", "pass", ["fhir@1"], exchanges=[exchange(1)], carried_forward_from="run-earlier-0042"),
        item(
            "test_create_rejects_bad_json",
            "fail",
            ["fhir@2"],
            message=f"expected 400, got 500: {SCRIPT}",
            detail=f"AssertionError: body was {ATTRIBUTE}",
            notes=[f"note from the check {BREAKOUT}"],
            exchanges=[
                exchange(2, status=500, body=HOSTILE),
                Exchange(
                    id="x-hostile",
                    method="POST",
                    url=f"https://sut.example/fhir/Patient?q={ATTRIBUTE}",
                    request=Message(
                        headers={"content-type": "application/fhir+json", "x-evil": SCRIPT},
                        body_excerpt=SCRIPT,
                        body_size=70000,
                        body_file=body_file,
                        truncated=True,
                    ),
                    status=None,
                    started="2026-11-23T10:00:02.000+00:00",
                    elapsed_ms=30000.0,
                    error=f"ReadTimeout: {SCRIPT}",
                ),
            ],
        ),
        item(
            "test_history",
            "error",
            ["fhir@3"],
            message="the check itself broke: KeyError 'entry'",
            detail="Traceback ...",
        ),
        item("test_vread", "skip", ["fhir@4"], message="server does not support versioning"),
        item("test_ui_login", "not-tested", ["portal@1"], suite="ui", message="not tested: no browser in this lab"),
        item("test_orphan", "pass", []),
    ]
    requirements = [
        requirement("fhir@1", "SHALL", "pass", [items[0].id]),
        requirement("fhir@2", "SHALL", "fail", [items[1].id], reason=items[1].message),
        requirement("fhir@3", "SHALL", "error", [items[2].id], reason=items[2].message),
        requirement("fhir@4", "SHOULD", "skip", [items[3].id], reason=items[3].message),
        requirement("portal@1", "SHALL", "not-tested", [items[4].id], reason="not tested: no browser in this lab"),
        requirement("portal@2", "MAY", "not-tested", [], reason="no check of this plan covers it"),
    ]
    decision = Decision(
        label="fhir-core",
        verdict="refused",
        reasons=[
            step("shall-failed", "triggered", ["fhir@2"]),
            step("slo-breached", "triggered", detail="read p95 450 ms (limit 300)"),
            step("lab-error", "triggered", detail="the fuzz suite crashed"),
            step("security-failed", "passed"),
            step("reservations", "not-applicable"),
        ],
    )
    slos = [
        SloResult(name="read p95", threshold=300, measured=450, passed=False, unit="ms"),
        SloResult(name="search p95", threshold=800, measured=None, passed=None, unit="ms"),
    ]
    return run(
        "run-refused-0001",
        items,
        requirements,
        decision,
        slos=slos,
        lab_errors=[f"the fuzz suite crashed: {SCRIPT}"],
        suites=["contract", "fuzz", "load", "ui"],
    )


def inconclusive_run() -> RunResults:
    items = [item("test_read", "error", ["fhir@1"], message="the connection to the system under test failed")]
    requirements = [requirement("fhir@1", "SHALL", "error", [items[0].id], reason=items[0].message)]
    decision = Decision(
        label="fhir-core",
        verdict="inconclusive",
        reasons=[step("shall-failed", "passed"), step("shall-unverified", "triggered", ["fhir@1"])],
    )
    return run("run-inconclusive-0001", items, requirements, decision)


def large_run(exchanges: int = 3000) -> RunResults:
    per_item = 150
    items = [
        item(
            f"test_load[{n}]",
            "pass",
            [f"load@{n % 5 + 1}"],
            suite="load",
            exchanges=[exchange(n * per_item + k) for k in range(per_item)],
        )
        for n in range(exchanges // per_item)
    ]
    requirements = [
        requirement(f"load@{k}", "SHALL", "pass", [i.id for i in items if i.requirements == [f"load@{k}"]])
        for k in range(1, 6)
    ]
    decision = Decision(
        label="load", verdict="granted", reasons=[step("shall-failed", "passed")], valid_until="2027-11-23"
    )
    return run("run-large-0001", items, requirements, decision, suites=["load"])
