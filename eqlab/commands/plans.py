"""``eqlab plan``: validate plans, list them, export their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import click

from eqlab import paths, yamlsource
from eqlab.commands.common import FullHelpGroup, catalogue_option, load_catalogue, reports_source_errors
from eqlab.plan.loader import load_plan
from eqlab.plan.model import Plan


@click.group(cls=FullHelpGroup)
def plan() -> None:
    """Work with test plans (testplans/*.yaml)."""


@plan.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--allow-production", is_flag=True, help="accept load and fuzz suites against a production target")
@catalogue_option
@reports_source_errors(exit_code=1)
def validate(files: tuple[Path, ...], allow_production: bool, catalogue_dir: Path | None) -> None:
    """Check plan files: syntax, keys, types, requirement IDs, suites; exit 1 when one is invalid."""
    catalogue = load_catalogue(catalogue_dir)
    problems = []
    for path in files:
        try:
            loaded = load_plan(path, catalogue, paths.suites_dir(), allow_production)
        except yamlsource.SourceError as exc:
            problems += exc.problems
            continue
        click.echo(f"{path}: valid ({loaded.plan.label} {loaded.plan.version}, {len(loaded.plan.suites)} suite(s))")
    if problems:
        raise yamlsource.SourceError(problems)


@plan.command("list")
@click.argument("locations", nargs=-1, type=click.Path(path_type=Path, exists=True))
def list_plans(locations: tuple[Path, ...]) -> None:
    """List plans (folders of *.yaml, or files; default: testplans/) with their label, environment and suites."""
    searched = locations or (paths.testplans_dir(),)
    plan_files = [
        path for location in searched for path in (sorted(location.glob("*.yaml")) if location.is_dir() else [location])
    ]
    rows = []
    for path in plan_files:
        try:
            document = yamlsource.load(path)
            loaded: Plan = yamlsource.validate(document, Plan, {"allow_production": True})
        except yamlsource.SourceError as exc:
            rows.append((path.name, "INVALID", "", str(exc.problems[0].message)))
            continue
        rows.append((path.name, loaded.label, loaded.environment, ", ".join(loaded.suite_kinds())))
    if not rows:
        click.echo(f"no plans in {', '.join(map(str, searched))}")
    for name, label, environment, suites in rows:
        click.echo(f"{name:32} {label:28} {environment:15} {suites}")


@plan.command()
@click.option(
    "--write",
    "destination",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="write to this file instead of printing",
)
def schema(destination: Path | None) -> None:
    """The JSON Schema of plan files (committed as testplans/plan.schema.json)."""
    text = plan_schema_text()
    if destination:
        destination.write_text(text, encoding="utf-8")
        click.echo(f"wrote {destination}")
    else:
        click.echo(text, nl=False)


def plan_schema_text() -> str:
    document = Plan.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "eqlab test plan"
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
