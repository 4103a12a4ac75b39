"""``eqlab report``, ``verify`` and ``key``: handling signed results.

``verify`` exits 0 when a trusted key signed the folder and nothing changed, 1 when something was
changed (tampered), 2 when the folder is not a complete run folder or no key can be trusted, and
3 when the folder is intact but signed by a key that is not trusted.
"""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError

from eqlab.commands.common import EXIT_LAB_ERROR, FullHelpGroup, key_option
from eqlab.reports import RESULTS_JSON, render_reports_from, write_reports
from eqlab.results import RunResults
from eqlab.runner.run import manifest_facts
from eqlab.signing import MANIFEST, SIGNATURE, LabKey, default_key_path, load_trusted_keys, sign_run, verify_run

EXIT_TAMPERED = 1
EXIT_UNTRUSTED = 3


def _require(run_dir: Path, *names: str) -> None:
    """Stop with one line (exit 2) when the run folder lacks a file it needs: an interrupted run, or not a run."""
    missing = [name for name in names if not (run_dir / name).is_file()]
    if missing:
        click.echo(f"error: {run_dir} is not a complete run folder: {', '.join(missing)} missing", err=True)
        raise SystemExit(EXIT_LAB_ERROR)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@key_option
def report(run_dir: Path, key_path: Path | None) -> None:
    """Re-render every report of a run folder from its results.json, and sign it again."""
    _require(run_dir, RESULTS_JSON)
    try:
        results = RunResults.model_validate_json((run_dir / RESULTS_JSON).read_bytes())
    except ValidationError as exc:
        click.echo(f"error: {run_dir / RESULTS_JSON} is not a run's results: {exc.errors()[0]['msg']}", err=True)
        raise SystemExit(EXIT_LAB_ERROR) from None
    key = LabKey.load_or_create(key_path)
    if results.signing_key == key.fingerprint:
        written = render_reports_from(run_dir)
    else:  # the reports say who signed: the key signing now
        written = write_reports(results.model_copy(update={"signing_key": key.fingerprint}), run_dir)
    sign_run(run_dir, key, manifest_facts(results))
    for path in written:
        click.echo(f"rendered {path}")
    click.echo(f"signed {run_dir / MANIFEST} with {key.fingerprint}")


def _published_key(key_path: Path | None) -> Path:
    """The public half of the lab's key, as `eqlab key public` prints it, without making a key."""
    private = key_path or default_key_path()
    if not private.is_file():
        click.echo(
            f"error: no key to trust: no lab key at {private}; pass --pubkey or --trust with the lab's public key",
            err=True,
        )
        raise SystemExit(EXIT_LAB_ERROR)
    lab_key = LabKey.load_or_create(private)
    if not lab_key.public_path.is_file():
        lab_key.public_path.write_bytes(lab_key.public_pem())
    return lab_key.public_path


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--pubkey",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="the lab's published public key (PEM)",
)
@click.option(
    "--trust",
    "trust_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="a file of trusted public keys (PEM, one or more); repeatable",
)
@key_option
def verify(run_dir: Path, pubkey: Path | None, trust_files: tuple[Path, ...], key_path: Path | None) -> None:
    """Check that a trusted key signed a run folder and every artefact's hash; exit 1 naming the first
    tampered file, 3 when the signer is not trusted, 2 when the folder is incomplete.

    Without --pubkey or --trust the lab's own published key (`eqlab key public`) is the one trusted;
    the public key inside the folder never is.
    """
    _require(run_dir, MANIFEST, SIGNATURE)
    trusted = [*([pubkey] if pubkey else []), *trust_files] or [_published_key(key_path)]
    for path in trusted:
        try:
            load_trusted_keys(path)
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(EXIT_LAB_ERROR) from None
    verification = verify_run(run_dir, *trusted)
    if verification.ok:
        click.echo(f"OK: signature valid, {verification.checked} artefacts match the signed manifest")
        click.echo(f"key: {verification.signer}, trusted by {', '.join(map(str, trusted))}")
        return
    if verification.untrusted:
        click.echo(f"UNTRUSTED: {verification.problems[0]} (trusted: {', '.join(map(str, trusted))})", err=True)
        raise SystemExit(EXIT_UNTRUSTED)
    click.echo(f"TAMPERED: {verification.problems[0]}", err=True)
    for problem in verification.problems[1:]:
        click.echo(f"  also: {problem}", err=True)
    raise SystemExit(EXIT_TAMPERED)


@click.group(cls=FullHelpGroup)
def key() -> None:
    """The lab's signing key."""


@key.command("public")
@key_option
@click.option("--fingerprint", "show_fingerprint", is_flag=True, help="print the key's SHA256 fingerprint instead")
def public_key(key_path: Path | None, show_fingerprint: bool) -> None:
    """Print the lab's public key (PEM) that `eqlab verify` trusts, or with --fingerprint its fingerprint."""
    lab_key = LabKey.load_or_create(key_path)
    if show_fingerprint:
        click.echo(lab_key.fingerprint)
    else:
        click.echo(lab_key.public_pem().decode(), nl=False)
