"""``eqlab client`` and ``eqlab platform-keys``: administering the reference implementation's store.

With ``eqlab/cli.py``, the only engine module that imports ``reference_impl``, lazily, inside
the commands (ARCHITECTURE.md, layer rules); ``serve`` shares its store helpers.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import click

from eqlab.auth import AuthConfigError
from eqlab.auth.keys import public_jwks
from eqlab.commands.common import FullHelpGroup


@contextmanager
def store_errors(url: str) -> Iterator[None]:
    """A store that cannot be opened or used is the operator's to fix: say which and why, no traceback."""
    from sqlalchemy.exc import DBAPIError  # lazily, like everything of the store: `eqlab --help` stays quick

    try:
        yield
    except DBAPIError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise click.ClickException(f"cannot use the store {safe_url(url)}: {reason}") from None


def migrate_store(url: str) -> None:
    from reference_impl.store.database import Database
    from reference_impl.store.migrations import migrate

    db = Database(url)
    try:
        migrate(db)
    finally:
        db.dispose()


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.group(cls=FullHelpGroup)
def client() -> None:
    """Clients of the reference implementation's authorization server."""


@client.command("register")
@click.option("--db", "db_url", default=None, help="The reference implementation's store (default: as `eqlab serve`).")
@click.option("--id", "client_id", required=True, help="The client id.")
@click.option("--kind", type=click.Choice(["system", "confidential", "public"]), required=True)
@click.option("--scopes", required=True, help='Scopes the client may ask for, e.g. "system/*.rs".')
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The client's key(s) for private_key_jwt: JWK, JWKS or PEM (the public part is registered).",
)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="A redirect URI (repeat for several).")
@click.option("--name", default=None, help="A display name (default: the id).")
def register(
    db_url: str | None,
    client_id: str,
    kind: str,
    scopes: str,
    jwks_file: Path | None,
    redirect_uris: tuple[str, ...],
    name: str | None,
) -> None:
    """Register a client; a confidential client's generated secret is printed once."""
    from sqlalchemy import Connection

    from reference_impl.auth.registry import ClientKind, find_client, register_client
    from reference_impl.settings import default_db_url
    from reference_impl.store.database import Database
    from reference_impl.store.migrations import migrate

    jwks = None
    if jwks_file is not None:
        try:
            jwks, had_private = public_jwks(jwks_file)
        except AuthConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--jwks") from None
        if had_private:
            click.echo(f"note: {jwks_file} holds a private key; only its public part is registered", err=True)
    secret = secrets.token_urlsafe(32) if kind == "confidential" else None
    url = db_url or default_db_url()

    def work(conn: Connection) -> None:
        if find_client(conn, client_id) is not None:
            raise click.ClickException(f"a client {client_id} is already registered")
        kind_ = cast("ClientKind", kind)  # click.Choice only lets the three kinds through
        register_client(conn, client_id, kind_, name or client_id, scopes, list(redirect_uris), jwks, secret)

    db = Database(url)
    try:
        with store_errors(url):
            migrate(db)
            db.run(work, write=True)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.dispose()
    click.echo(f"registered {kind} client {client_id} (scopes {scopes}) in {safe_url(url)}")
    if secret is not None:
        click.echo(f"client secret (shown once, keep it safe): {secret}")


@click.group("platform-keys", cls=FullHelpGroup)
def platform_keys() -> None:
    """The reference implementation's token-signing keys (they also rotate by themselves, daily)."""


@platform_keys.command("rotate")
@click.option("--db", "db_url", default=None, help="The reference implementation's store (default: as `eqlab serve`).")
@click.option(
    "--withdraw-previous",
    is_flag=True,
    help="Also take the previous keys out of the JWKS at once (a key suspected compromised): "
    "the tokens they signed stop validating.",
)
def rotate_platform_key(db_url: str | None, withdraw_previous: bool) -> None:
    """Make a new token-signing key: it signs from now on, older keys verify until their tokens expire.

    A running server notices within 30 seconds (its key cache). The store's master key comes from
    EQLAB_MASTER_KEY or the key file, as for `eqlab serve`.
    """
    from reference_impl.auth.operator import rotate_signing_key_in_store
    from reference_impl.settings import Settings

    settings = Settings(db_url=db_url) if db_url else Settings()
    with store_errors(settings.db_url):
        rotation = rotate_signing_key_in_store(settings, withdraw_previous)
    click.echo(f"new signing key {rotation.kid} in {safe_url(settings.db_url)}")
    if withdraw_previous:
        withdrawn = ", ".join(rotation.withdrawn) or "none"
        click.echo(f"withdrawn from the JWKS (their tokens no longer validate): {withdrawn}")
