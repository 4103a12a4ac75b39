"""``eqlab run``: run a plan against a system, print the verdict and where the signed reports are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from eqlab import paths
from eqlab.catalogue import Catalogue
from eqlab.commands.common import EXIT_LAB_ERROR, catalogue_option, key_option, load_catalogue, reports_source_errors
from eqlab.commands.store_admin import demo_secrets, embedded_platform
from eqlab.plan.loader import LoadedPlan, load_plan
from eqlab.reports.views import why
from eqlab.runner.options import RunOptions
from eqlab.runner.preflight import PreflightError
from eqlab.runner.run import RunInterrupted, RunOutcome, run_plan
from eqlab.signing import MANIFEST, LabKey

EXIT_CODES = {"granted": 0, "granted-with-reservations": 0, "refused": 1, "inconclusive": EXIT_LAB_ERROR}
DEMO_SECRET_PREFIX = "EQLAB_DEMO_"  # the variables testplans/reference.yaml names for the demo accounts
EXIT_INTERRUPTED = 130  # the shell's code for a command stopped by SIGINT


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@click.command()
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--target", default=None, help="FHIR base URL overriding the plan's target")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="parent folder of the run folder (default: reports/out)",
)
@click.option("--suites", default=None, help="only these suite kinds, comma-separated (contract, fuzz, load, ui)")
@click.option(
    "--requirements", default=None, help="only these requirement IDs or selectors, comma-separated (fhir@3, fhir@1-10)"
)
@click.option("-k", "keyword", default=None, help="only checks matching this pytest -k expression")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="run checks in parallel processes"
)
@click.option(
    "--load-workers",
    type=click.IntRange(0, 64),
    default=None,
    help="load suites: a locust master and this many worker processes on this machine, one merged result "
    "(overrides the plan's workers; 0: one process)",
)
@click.option(
    "--rerun-failed",
    "--resume",
    "rerun_failed",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="rerun the failed, errored and unfinished (interrupted) checks of this run folder; carry the rest forward",
)
@click.option(
    "--no-preflight",
    is_flag=True,
    help="skip the pre-flight (secrets set, target reachable, one token) that stops a doomed run in seconds",
)
@click.option("--allow-production", is_flag=True, help="allow load and fuzz suites against a production target")
@click.option("--progress/--no-progress", default=None, help="live progress display (default: on a terminal)")
@click.option(
    "--client-command",
    default=None,
    help="client plans: the command that drives your client, replacing every scenario's run step "
    "(the scenario's name is in $EQLAB_SCENARIO)",
)
@click.option(
    "--interactive",
    is_flag=True,
    help="client plans: you drive the client; each instruction is shown, Enter ends a step, s+Enter skips it",
)
@catalogue_option
@key_option
@reports_source_errors(exit_code=EXIT_LAB_ERROR)
def run(
    plan_file: Path,
    target: str | None,
    out: Path | None,
    suites: str | None,
    requirements: str | None,
    keyword: str | None,
    workers: int,
    load_workers: int | None,
    rerun_failed: Path | None,
    allow_production: bool,
    no_preflight: bool,
    progress: bool | None,
    client_command: str | None,
    interactive: bool,
    catalogue_dir: Path | None,
    key_path: Path | None,
) -> None:
    """Run a test plan against a system; print the verdict and the report paths.

    Exit status: 0 granted (with or without reservations), 1 refused, 2 inconclusive or the lab could
    not run (the pre-flight failed), 130 interrupted (Ctrl-C or SIGTERM: the partial run is concluded
    and signed; complete it with --resume RUN_FOLDER).
    """
    if target is not None and not target.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http:// or https:// URL", param_hint="--target")
    catalogue = load_catalogue(catalogue_dir)
    loaded = load_plan(plan_file, catalogue, paths.suites_dir(), allow_production)
    with _platform(loaded, target) as platform_target:
        options = RunOptions(
            platform_target, _csv(suites), _csv(requirements), keyword, workers, rerun_failed, out, progress,
            preflight=not no_preflight, client_command=client_command, interactive=interactive,
            load_workers=load_workers,
        )  # fmt: skip
        outcome = run_or_exit(loaded, catalogue, options, LabKey.load_or_create(key_path))
    print_outcome(outcome)
    if outcome.results.interrupted:
        click.echo(f"\n{outcome.results.interrupted}: this partial run is signed; complete it with")
        click.echo(f"  eqlab run {plan_file} --resume {outcome.run_dir}")
    raise SystemExit(exit_code(outcome))


@contextmanager
def _platform(loaded: LoadedPlan, target: str | None) -> Iterator[str | None]:
    """The target of the run: ``--target``, else for a client plan on ``platform: {embedded: reference}``
    the reference implementation started for the run (demo data, the client registered, the demo
    users' published passwords set), else the plan's own."""
    plan = loaded.plan
    if target is not None or plan.platform is None or plan.platform.embedded is None or plan.client is None:
        yield target
        return
    with demo_secrets(), embedded_platform(plan.client, loaded.path.parent) as base_url:
        click.echo(f"embedded reference platform: {base_url}")
        yield base_url


def run_or_exit(loaded: LoadedPlan, catalogue: Catalogue, options: RunOptions, key: LabKey) -> RunOutcome:
    """``run_plan``, or exit with one message: 2 when the run cannot start, 130 when stopped before it did."""
    try:
        return run_plan(loaded, catalogue, options, paths.suites_dir(), paths.reports_out_dir(), key)
    except PreflightError as exc:
        click.echo(f"error: pre-flight: {exc}", err=True)
        if DEMO_SECRET_PREFIX in str(exc):
            hint = f'against `eqlab serve --seed demo`, eval "$(eqlab demo-secrets)" sets the {DEMO_SECRET_PREFIX}*'
            click.echo(hint, err=True)
        click.echo("no check ran (--no-preflight skips the pre-flight)", err=True)
        raise SystemExit(EXIT_LAB_ERROR) from None
    except RunInterrupted as exc:
        click.echo(f"\n{exc}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_LAB_ERROR) from None


def exit_code(outcome: RunOutcome) -> int:
    return EXIT_INTERRUPTED if outcome.results.interrupted else EXIT_CODES[outcome.results.decision.verdict]


def print_outcome(outcome: RunOutcome) -> None:
    results = outcome.results
    counts: dict[str, int] = {}
    for requirement in results.requirements:
        counts[requirement.status] = counts.get(requirement.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    decision = results.decision
    click.echo(
        f"\nlabel {decision.label}: {decision.verdict.upper()}"
        + (f" (valid until {decision.valid_until})" if decision.valid_until else "")
    )
    click.echo(f"requirements: {summary}")
    for step in decision.reasons:
        if step.outcome == "triggered":
            click.echo(f"  {step.rule}" + (f": {step.detail}" if step.detail else ""))
            for group in why(results, step):
                click.echo(f"    {group.sentence}")
    for error in results.lab_errors:
        click.echo(f"  lab error: {error}")
    click.echo(f"\nrun folder: {outcome.run_dir}")
    for path in sorted(outcome.run_dir.glob("*")):
        if path.suffix in (".html", ".pdf", ".xml", ".csv") or path.name in ("results.json", MANIFEST):
            click.echo(f"  {path}")
