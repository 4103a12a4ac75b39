"""``eqlab report``, ``verify`` and ``key``: handling signed results."""

from __future__ import annotations

from pathlib import Path

import click

from eqlab.commands.common import key_option
from eqlab.reports import render_reports_from
from eqlab.results import RunResults
from eqlab.runner.run import manifest_facts
from eqlab.signing import MANIFEST, LabKey, sign_run, verify_run


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@key_option
def report(run_dir: Path, key_path: Path | None) -> None:
    """Re-render every report of a run folder from its results.json, and sign it again."""
    written = render_reports_from(run_dir)
    results = RunResults.model_validate_json((run_dir / "results.json").read_text(encoding="utf-8"))
    sign_run(run_dir, LabKey.load_or_create(key_path), manifest_facts(results))
    for path in written:
        click.echo(f"rendered {path}")
    click.echo(f"signed {run_dir / MANIFEST}")


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--pubkey",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="the lab's published public key (PEM)",
)
def verify(run_dir: Path, pubkey: Path | None) -> None:
    """Check a run folder's signature and every artefact's hash; exit 1 naming the first tampered file."""
    verification = verify_run(run_dir, pubkey)
    if verification.ok:
        click.echo(f"OK: signature valid, {verification.checked} artefacts match the signed manifest")
        click.echo(f"key: {verification.key_source}")
        return
    click.echo(f"TAMPERED: {verification.problems[0]}", err=True)
    for problem in verification.problems[1:]:
        click.echo(f"  also: {problem}", err=True)
    raise SystemExit(1)


@click.group()
def key() -> None:
    """The lab's signing key."""


@key.command("public")
@key_option
def public_key(key_path: Path | None) -> None:
    """Print the lab's public key (PEM), for auditors' `eqlab verify --pubkey`."""
    click.echo(LabKey.load_or_create(key_path).public_pem().decode(), nl=False)
