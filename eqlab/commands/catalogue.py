"""``eqlab catalogue``: list requirements, show one, and report which have checks."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import click

from eqlab import paths
from eqlab.commands.common import FullHelpGroup, catalogue_option, load_catalogue, reports_source_errors
from eqlab.pytest_plugin.events import EVENTS_FILE, Collected, CollectedItem, UnreadableEvent, read_event
from eqlab.pytest_plugin.run_config import RunConfig, TargetSettings, write_run_config


@click.group(cls=FullHelpGroup)
def catalogue() -> None:
    """Work with the requirement catalogue (suites/requirements/*.yaml)."""


@catalogue.command("list")
@click.option("--service", default=None, help="only this service (e.g. fhir)")
@catalogue_option
@reports_source_errors(exit_code=2)
def list_requirements(service: str | None, catalogue_dir: Path | None) -> None:
    """List requirements: ID, level and text."""
    for requirement in load_catalogue(catalogue_dir).requirements.values():
        if service is None or requirement.service == service:
            click.echo(f"{requirement.id:10} {requirement.level:6} {requirement.text}")


@catalogue.command()
@click.argument("requirement_id")
@catalogue_option
@reports_source_errors(exit_code=2)
def show(requirement_id: str, catalogue_dir: Path | None) -> None:
    """Show one requirement in full, with the checks that verify it."""
    loaded = load_catalogue(catalogue_dir)
    if requirement_id not in loaded:
        raise click.ClickException(f"unknown requirement {requirement_id}")
    requirement = loaded.get(requirement_id)
    click.echo(f"{requirement.id}  ({requirement.level}, actor: {requirement.actor})")
    click.echo(f"  {requirement.text}")
    click.echo(f"  source: {requirement.source}")
    if requirement.why_attested:
        click.echo(f"  verified by attestation: {requirement.why_attested}")
    checks = [item for item in collect_checks() if requirement_id in item.requirements]
    click.echo(f"  checks ({len(checks)}):" if checks else "  checks: none")
    for item in checks:
        click.echo(f"    {item.id}")


@catalogue.command()
@catalogue_option
@reports_source_errors(exit_code=2)
def coverage(catalogue_dir: Path | None) -> None:
    """Which requirements have checks and which have none."""
    loaded = load_catalogue(catalogue_dir)
    counts: dict[str, int] = dict.fromkeys(loaded.requirements, 0)
    for item in collect_checks():
        for rid in item.requirements:
            if rid in counts:
                counts[rid] += 1
    attested = [rid for rid in counts if loaded.get(rid).verification == "attestation"]
    uncovered = [rid for rid, n in counts.items() if n == 0 and rid not in attested]
    for rid, n in counts.items():
        requirement = loaded.get(rid)
        note = "   by attestation" if rid in attested else "   <- NO CHECK" if n == 0 else ""
        click.echo(f"{rid:10} {requirement.level:6} {n:3} check(s){note}")
    tested = len(counts) - len(attested)
    click.echo(
        f"\n{tested - len(uncovered)} of {tested} requirements checked by tests have checks; "
        f"{len(uncovered)} have none; {len(attested)} verified by attestation"
    )


def collect_checks() -> list[CollectedItem]:
    """Every check under suites/ with its requirement IDs (collected by pytest, nothing run)."""
    suites = paths.suites_dir()
    with tempfile.TemporaryDirectory(prefix="eqlab-collect-") as tmp:
        config = Path(tmp) / "config.json"
        write_run_config(
            RunConfig(
                run_dir=Path(tmp),
                target=TargetSettings(base_url="http://collect.invalid"),
                catalogue=suites / "requirements",
            ),
            config,
        )
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\naddopts =\n", encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(suites),
            "--collect-only",
            "-q",
            "-c",
            str(ini),
            "--rootdir",
            str(suites.parent),
            "-p",
            "no:cacheprovider",
            "--eqlab-config",
            str(config),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        events_file = Path(tmp) / EVENTS_FILE
        lines = events_file.read_text(encoding="utf-8").splitlines() if events_file.exists() else []
        try:
            events = [read_event(line) for line in lines if line.strip()]
        except UnreadableEvent as exc:
            raise click.ClickException(f"could not collect the checks: an event line is unreadable ({exc})") from None
        collected = next((e.items for e in events if isinstance(e, Collected)), None)
        if collected is None:
            raise click.ClickException(f"could not collect the checks:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return collected
