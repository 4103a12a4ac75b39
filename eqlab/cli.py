"""The ``eqlab`` command line.

The engine never imports the reference implementation; only the commands that run it or use its
demo accounts (``serve``, ``demo``, ``token``) import it, lazily, here, the ones that administer its
store (``client``, ``platform-keys``) in ``commands/store_admin.py``, and ``detection`` in
``commands/detection.py``.
"""

from __future__ import annotations

import functools
import os
import shlex
import socket
import sys
import tempfile
from pathlib import Path

import click
from click.core import ParameterSource

from eqlab import paths
from eqlab.commands.catalogue import catalogue
from eqlab.commands.common import EXIT_LAB_ERROR, FullHelpGroup, key_option, load_catalogue, reports_source_errors
from eqlab.commands.detection import run_matrix
from eqlab.commands.lab import key, report, verify
from eqlab.commands.plans import plan
from eqlab.commands.run import EXIT_INTERRUPTED, exit_code, print_outcome, run, run_or_exit
from eqlab.commands.seeding import seed as seed_command
from eqlab.commands.store_admin import (
    client,
    demo_secret_values,
    demo_secrets,
    migrate_store,
    platform_keys,
    platform_settings,
    safe_url,
    store_errors,
)
from eqlab.plan.loader import load_plan
from eqlab.runner.options import RunOptions
from eqlab.signing import LabKey


class EqlabCommands(FullHelpGroup):
    """The top command: Ctrl-C outside a run (which handles it itself) exits 130, as shells expect,
    not click's "Aborted!" with 1, the code for "refused"."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            raise SystemExit(EXIT_INTERRUPTED) from None


@click.group(cls=EqlabCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eqlab")
def main() -> None:
    """eqlab: conformance tests and labels for national e-health platforms."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port).")
@click.option(
    "--db", "db_url", default=None, help="sqlite:///FILE (default: in the user data dir) or postgresql://HOST/DB."
)
@click.option(
    "--seed", type=click.Choice(["demo", "none"]), default="none", show_default=True, help="Load the demo dataset."
)
@click.option("--faults", default="", metavar="A,B", help="Switch on deliberate defects (see --list-faults).")
@click.option("--list-faults", is_flag=True, help="List the deliberate defects and exit.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes on one store and one port (for multi-core machines).",
)
def serve(host: str, port: int, db_url: str | None, seed: str, faults: str, list_faults: bool, workers: int) -> None:
    """Run the reference implementation of the national platform.

    With --workers N the store is migrated and seeded once, then N processes share the port; a
    worker that dies is replaced, one that cannot start stops the server (exit status 3).
    """
    from eqlab.commands.serving import serve_process, serve_processes, start_once
    from reference_impl.app import FAULTS, create_app
    from reference_impl.faults import FaultSwitches

    if list_faults:
        for fault in FAULTS.values():
            click.echo(f"{fault.name:28} {fault.description}")
        return
    try:
        switches = FaultSwitches(faults.split(","))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    settings = platform_settings(seed="demo" if seed == "demo" else "none", faults=switches.active)
    if db_url:
        settings = settings.model_copy(update={"db_url": db_url})
    with store_errors(settings.db_url):  # an unreachable store is said once, not as a startup traceback
        migrate_store(settings.db_url)
    listener = _bind(host, port)
    bound_port = listener.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"eqlab reference platform: http://{shown_host}:{bound_port}/fhir")
    click.echo(f"  capability statement:  http://{shown_host}:{bound_port}/fhir/metadata")
    click.echo(f"  database:              {safe_url(settings.db_url)}")
    if seed == "demo":
        _print_demo_accounts(f"http://{shown_host}:{bound_port}/fhir")
    if switches.active:
        click.echo(f"  DELIBERATE DEFECTS ON: {', '.join(sorted(switches.active))}")
    if workers > 1:
        click.echo(f"  server processes:      {workers}")
    sys.stdout.flush()
    if workers == 1:
        serve_process(create_app(settings), listener)
        return
    with store_errors(settings.db_url):
        start_once(create_app(settings))  # migrations, terminology and --seed: once, before any worker
    # The workers find the store ready: seeding again would only race the other workers to no effect.
    worker_settings = settings.model_copy(update={"seed": "none"})
    raise SystemExit(serve_processes(functools.partial(create_app, worker_settings), listener, workers))


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="parent folder of the run folder (default: reports/out)",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="run checks in parallel processes"
)
@click.option("--progress/--no-progress", default=None, help="live progress display (default: on a terminal)")
@key_option
@reports_source_errors(exit_code=EXIT_LAB_ERROR)
def demo(out: Path | None, workers: int, progress: bool | None, key_path: Path | None) -> None:
    """Start the embedded reference implementation and run testplans/reference.yaml against it."""
    from reference_impl.app import create_app
    from reference_impl.embedded import serve_in_thread

    catalogue_ = load_catalogue(None)
    loaded = load_plan(paths.testplans_dir() / "reference.yaml", catalogue_, paths.suites_dir())
    with tempfile.TemporaryDirectory(prefix="eqlab-demo-") as store, demo_secrets():
        app = create_app(platform_settings(db_url=f"sqlite:///{Path(store) / 'reference.sqlite3'}", seed="demo"))
        with serve_in_thread(app) as base_url:
            click.echo(f"embedded reference implementation: {base_url}")
            options = RunOptions(target=base_url, workers=workers, out=out, progress=progress, demo=True)
            outcome = run_or_exit(loaded, catalogue_, options, LabKey.load_or_create(key_path))
    print_outcome(outcome)
    click.echo(f"\nopen {outcome.run_dir / 'summary.html'} in a browser")
    with_key = f" --key {key_path}" if key_path else ""
    click.echo(f"check its signature with: eqlab verify {outcome.run_dir}{with_key}")
    raise SystemExit(exit_code(outcome))


@main.command("demo-secrets")
def demo_secrets_command() -> None:
    """Print shell exports of the demo accounts' published secrets, for `eqlab run` against `eqlab serve`.

    Use: eval "$(eqlab demo-secrets)". DEMO ONLY: these are public, documented credentials of the
    demo dataset (reference_impl/seed/accounts.py); a real platform's secrets come from your vault.
    """
    for name, value in demo_secret_values().items():
        click.echo(f"export {name}={shlex.quote(value)}")


@main.command()
@click.option("--faults", "only", default=None, help="only these faults, comma-separated (default: all, one at a time)")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=None,
    help=f"runs at once, each a process with its own server (default: the number of CPUs, {os.cpu_count() or 1} here)",
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="parallel checks in each run")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None, help="parent folder of the runs")
@key_option
@reports_source_errors(exit_code=EXIT_LAB_ERROR)
def detection(only: str | None, jobs: int | None, workers: int, out: Path | None, key_path: Path | None) -> None:
    """Prove the checks catch each deliberate defect: the clean reference is granted, every fault refused.

    The clean server runs the whole plan; each fault runs the checks of the requirements it breaks;
    the runs go --jobs at a time, and the table keeps its order.
    """
    if not run_matrix(only, workers, jobs or os.cpu_count() or 1, out, key_path):
        raise SystemExit(1)


def _print_demo_accounts(base: str) -> None:
    from reference_impl.seed import accounts

    click.echo(f"  demo data:             {base}/Patient?_count=10 (every FHIR request needs a bearer token)")
    click.echo("  demo accounts (DEMO ONLY: public credentials, documented in reference_impl/seed/accounts.py")
    click.echo("  and testplans/keys/README.md):")
    for kind, name, how in accounts.demo_credentials():
        click.echo(f"    {kind:6} {name:20} {how}")
    shown = "" if base == DEFAULT_BASE else f" --base {base}"
    click.echo(f"  a system token:        eqlab token{shown}")
    click.echo(f"  a user's token:        eqlab token{shown} --user patient1   (code + PKCE through the login pages)")
    click.echo(f'  try:                   curl -H "Authorization: Bearer $(eqlab token{shown})" {base}/Patient')


DEFAULT_BASE = "http://127.0.0.1:8080/fhir"
BASE_ENV = "EQLAB_BASE"
USER_SCOPE = "openid fhirUser profile offline_access user/*.cruds"


@main.command()
@click.option(
    "--base",
    default=DEFAULT_BASE,
    envvar=BASE_ENV,
    show_default=True,
    show_envvar=True,
    help="FHIR base URL of the platform.",
)
@click.option(
    "--client",
    "client_id",
    default=None,
    help="System client (default: the demo system client); with --user, the demo login client "
    "(default: the demo portal for patients, the demo web app for other users).",
)
@click.option(
    "--key", "key_file", type=click.Path(path_type=Path, dir_okay=False), default=None, help="The client's private key."
)
@click.option("--user", default=None, help="A demo user (patient1, doctor1, auditor...): sign in as that user.")
@click.option("--scope", default=None, help="Scope to ask for (default: system/*.cruds, or the user's).")
@click.option("--purpose", default=None, help="With --user: the purpose of use to choose (TREAT, EMERGENCY...).")
def token(
    base: str, client_id: str | None, key_file: Path | None, user: str | None, scope: str | None, purpose: str | None
) -> None:
    """Print an access token for the platform at --base, obtained over HTTP as any client would.

    By default a system token of the demo system client (client credentials, private_key_jwt with
    testplans/keys/demo-system-client.private.jwk); with --user, a demo user's token (authorization
    code + PKCE, with the user's published demo password). Try it against `eqlab serve --seed demo`.
    """
    from eqlab.commands.tokens import SignIn, system_token, user_token
    from eqlab.oauth_client import AuthError
    from eqlab.oauth_client.config import DEFAULT_SYSTEM_SCOPE, DEFAULT_USER_SCOPE
    from reference_impl.seed import accounts

    try:
        if user is None:
            client_id = client_id or accounts.SYSTEM_CLIENT
            if key_file is None and client_id != accounts.SYSTEM_CLIENT:
                raise click.UsageError(f"--key: the private key of client {client_id} is needed")
            key = key_file or paths.project_dir() / accounts.SYSTEM_KEY_FILE
            click.echo(system_token(base, client_id, key, scope or DEFAULT_SYSTEM_SCOPE))
            return
        demo_users = {u.username: u for u in accounts.demo_users()}
        found = demo_users.get(user)
        if found is None:
            raise click.BadParameter(f"not a demo user; demo users: {', '.join(demo_users)}", param_hint="--user")
        is_patient = found.role == "patient"
        client_id = client_id or (accounts.PORTAL_CLIENT if is_patient else accounts.WEBAPP_CLIENT)
        logins = {
            accounts.PORTAL_CLIENT: (accounts.PORTAL_REDIRECTS[-1], None),
            accounts.WEBAPP_CLIENT: (accounts.WEBAPP_REDIRECTS[-1], accounts.WEBAPP_SECRET),
        }
        if client_id not in logins:
            raise click.BadParameter(f"with --user, one of {', '.join(logins)}", param_hint="--client")
        redirect_uri, secret = logins[client_id]
        sign_in = SignIn(client_id, redirect_uri, found.username, found.password, secret, purpose)
        click.echo(user_token(base, sign_in, scope or (DEFAULT_USER_SCOPE if is_patient else USER_SCOPE)))
    except AuthError as exc:
        source = click.get_current_context().get_parameter_source("base")
        where = None
        if source == ParameterSource.DEFAULT:
            where = f"{base} is the default: pass --base or set {BASE_ENV}"
        elif source == ParameterSource.ENVIRONMENT:
            where = f"{base} came from {BASE_ENV}"
        raise click.ClickException(f"{exc}" + (f" ({where})" if where else "")) from None


for command in (run, report, verify, plan, catalogue, key, client, platform_keys):
    main.add_command(command)
main.add_command(seed_command)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


if __name__ == "__main__":
    main()
