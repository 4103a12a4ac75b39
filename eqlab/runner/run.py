"""One run of a plan, from setup to signed reports."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from eqlab.catalogue import Catalogue
from eqlab.decision import decide, requirement_results
from eqlab.interrupt import StopRequest
from eqlab.plan.loader import LoadedPlan
from eqlab.reports import write_reports
from eqlab.results import CatalogueInfo, ItemResult, PlanInfo, RequirementResult, RunResults, SloResult
from eqlab.runner.client_suites import SCENARIO_ITEM_PREFIX, play_client_suites
from eqlab.runner.load import judge_slos, run_load_suites
from eqlab.runner.options import RunOptions, RunSetup, prepare
from eqlab.runner.preflight import preflight
from eqlab.runner.progress import RunProgress
from eqlab.runner.pytest_suites import run_pytest_suites
from eqlab.signing import LabKey, sha256_file, sign_run

RERUN = ("fail", "error", "not-tested")  # not-tested items: a run stopped before they finished
UNCOLLECTED = "no check of this plan covers it"  # decision.requirement_results' reason when no item names it


class RunInterrupted(Exception):
    """SIGINT or SIGTERM before the run had a folder: nothing to conclude."""


@dataclass(frozen=True)
class RunOutcome:
    results: RunResults
    run_dir: Path
    artefacts: list[Path]


def tool_info() -> dict[str, str]:
    return {"name": "eqlab", "version": version("eqlab")}


def run_plan(
    loaded: LoadedPlan, catalogue: Catalogue, options: RunOptions, suites_root: Path, out_root: Path, key: LabKey
) -> RunOutcome:
    """Run the plan; SIGINT or SIGTERM stops it early, concluded and signed from what finished
    (``results.interrupted`` says so). Raises PreflightError, or RunInterrupted before any check."""
    stop = StopRequest()
    with stop.handling_signals():
        previous = _previous(options.rerun_failed, loaded) if options.rerun_failed else None
        setup = prepare(loaded, catalogue, options, suites_root, out_root)
        setup.stop = stop
        if options.preflight:
            preflight(loaded, setup.base_url)
        if stop.requested:
            raise RunInterrupted(f"interrupted ({stop.signal_name}) before the first check: no run folder was made")
        setup.run_dir.mkdir(parents=True, exist_ok=False)
        only = _to_rerun(previous) if previous else None
        with RunProgress(options.progress, quiet=options.quiet) as progress:
            if previous is not None and only is not None:
                progress.note(f"re-running {len(only)} failed, errored or unfinished checks of run {previous.run_id}")
            client_play = play_client_suites(setup, progress.note)
            setup.client_checks = client_play.check_config
            only = _with_client_checks(only, setup)
            suite_run = run_pytest_suites(setup, progress, only) if only is None or only else None
            if any(s.kind == "load" for s, _ in setup.suites) and not stop.requested:
                progress.note("running the load suite(s)")
            load_run = run_load_suites(setup)
        items = [*client_play.items, *(suite_run.items if suite_run else [])]
        lab_errors = [*(suite_run.lab_errors if suite_run else []), *load_run.lab_errors]
        if previous is not None and options.rerun_failed is not None:
            items = _carry_forward(previous, options.rerun_failed, setup.run_dir, items)
        slos = judge_slos(loaded.plan.slos, load_run.stats)
        return _conclude(setup, items, slos, lab_errors, key, previous.run_id if previous else None)


def _with_client_checks(only: list[str] | None, setup: RunSetup) -> list[str] | None:
    """A rerun plays every client scenario again (the checks judge the whole client run), so the
    client checks all run again too: their suites replace their items in ``only``."""
    if only is None:
        return None
    client_paths = [str(path) for suite, path in setup.suites if suite.kind == "client"]
    if not client_paths:
        return only
    kept = [i for i in only if not i.startswith(SCENARIO_ITEM_PREFIX) and not _in_any(i, client_paths, setup)]
    return [*kept, *client_paths]


def _in_any(item_id: str, paths: list[str], setup: RunSetup) -> bool:
    """Whether a pytest item ID (relative to the suites' parent folder) belongs to one of ``paths``."""
    item_file = (setup.suites_root.parent / item_id.split("::", maxsplit=1)[0]).resolve()
    return any(item_file.is_relative_to(Path(p).resolve()) for p in paths)


def _to_rerun(previous: RunResults) -> list[str] | None:
    """The items of ``previous`` to run again; None (all of them) when it was stopped before its
    checks were even collected."""
    if previous.interrupted and not previous.items:
        return None
    return [i.id for i in previous.items if i.outcome in RERUN]


def _previous(run_dir: Path, loaded: LoadedPlan) -> RunResults:
    path = run_dir / "results.json"
    if not path.is_file():
        raise ValueError(f"--rerun-failed: {run_dir} holds no results.json")
    previous = RunResults.model_validate_json(path.read_text(encoding="utf-8"))
    if previous.plan.label != loaded.plan.label:
        raise ValueError(
            f"--rerun-failed: {run_dir} is a run of label '{previous.plan.label}', not '{loaded.plan.label}'"
        )
    return previous


def _carry_forward(
    previous: RunResults, previous_dir: Path, run_dir: Path, rerun: list[ItemResult]
) -> list[ItemResult]:
    """Rerun results first-hand, every other item of the previous run reused and marked as such."""
    fresh = {item.id: item for item in rerun}
    merged = []
    for item in previous.items:
        if item.id in fresh:
            merged.append(fresh.pop(item.id))
            continue
        for exchange in item.exchanges:
            for message in (exchange.request, exchange.response):
                if message is not None and message.body_file:
                    (run_dir / message.body_file).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(previous_dir / message.body_file, run_dir / message.body_file)
        merged.append(item.model_copy(update={"carried_forward_from": item.carried_forward_from or previous.run_id}))
    return merged + list(fresh.values())


def _conclude(
    setup: RunSetup,
    items: list[ItemResult],
    slos: list[SloResult],
    lab_errors: list[str],
    key: LabKey,
    rerun_of: str | None,
) -> RunOutcome:
    plan = setup.loaded.plan
    finished = datetime.now(UTC)
    interrupted = None
    if setup.stop.requested:
        seconds = (finished - setup.started).total_seconds()
        interrupted = f"interrupted by {setup.stop.signal_name} after {seconds:.0f} s"
        unfinished = sum(1 for item in items if item.outcome == "not-tested")
        lab_errors = [*lab_errors, f"the run was {interrupted}: {unfinished} checks did not finish"]
    requirements = _with_kept_evidence(requirement_results(setup.catalogue, setup.in_scope, items, plan), setup)
    if interrupted and not items:
        requirements = [_never_collected(r, setup.stop.signal_name) for r in requirements]
    decision = decide(plan.label, requirements, slos, lab_errors, plan.decision, finished, setup.options.demo)
    results = RunResults(
        run_id=setup.run_id,
        tool=tool_info(),
        plan=PlanInfo(
            name=plan.name,
            label=plan.label,
            version=plan.version,
            environment=plan.environment,
            path=str(setup.loaded.path),
            sha256=setup.loaded.sha256,
        ),
        target={"base_url": setup.base_url},
        catalogue=CatalogueInfo(sha256=setup.catalogue.sha256, requirements=len(setup.catalogue.requirements)),
        started=setup.started.isoformat(timespec="seconds"),
        finished=finished.isoformat(timespec="seconds"),
        suites=[s.kind for s, _ in setup.suites],
        items=items,
        requirements=requirements,
        slos=slos,
        lab_errors=lab_errors,
        decision=decision,
        rerun_of=rerun_of,
        signing_key=key.fingerprint,
        demo=setup.options.demo,
        interrupted=interrupted,
    )
    artefacts = write_reports(results, setup.run_dir)
    sign_run(setup.run_dir, key, manifest_facts(results))
    return RunOutcome(results, setup.run_dir, artefacts)


def _never_collected(requirement: RequirementResult, signal_name: str | None) -> RequirementResult:
    """A run stopped before its checks were collected cannot say a requirement has no check."""
    if requirement.status != "not-tested" or requirement.reason != UNCOLLECTED:
        return requirement
    reason = f"not tested: the run was interrupted ({signal_name}) before its checks were collected"
    return requirement.model_copy(update={"reason": reason})


def _with_kept_evidence(requirements: list[RequirementResult], setup: RunSetup) -> list[RequirementResult]:
    """Attested requirements with a copy of their evidence file in the run folder: the signed
    manifest then covers what the reviewer attested, not only its name."""
    kept = []
    for requirement in requirements:
        attestation = requirement.attestation
        if attestation is None:
            kept.append(requirement)
            continue
        source = setup.loaded.path.parent / attestation["evidence"]
        copy = Path("attestations") / requirement.id.replace("@", "-") / source.name
        (setup.run_dir / copy).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, setup.run_dir / copy)
        attestation = {**attestation, "evidence_copy": copy.as_posix(), "evidence_sha256": sha256_file(source)}
        kept.append(requirement.model_copy(update={"attestation": attestation}))
    return kept


def manifest_facts(results: RunResults) -> dict[str, object]:
    """What the signed manifest states about a run, besides the artefacts' hashes."""
    plan = results.plan
    return {
        "run_id": results.run_id,
        "tool": results.tool,
        "plan": {"path": plan.path, "sha256": plan.sha256, "label": plan.label, "version": plan.version},
        "catalogue_sha256": results.catalogue.sha256,
        "target": results.target["base_url"],
        "started": results.started,
        "finished": results.finished,
        "verdict": results.decision.verdict,
        "label": results.decision.label,
        "valid_until": results.decision.valid_until,
    }
