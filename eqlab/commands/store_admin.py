"""``eqlab client`` and ``eqlab platform-keys``: administering the reference implementation's store.

With ``eqlab/cli.py``, the only engine module that imports ``reference_impl``, lazily, inside
the commands (ARCHITECTURE.md, layer rules); ``serve`` shares its store helpers.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from eqlab.commands.common import FullHelpGroup
from eqlab.oauth_client import AuthConfigError
from eqlab.oauth_client.client_key import public_jwks
from eqlab.plan.model import ClientUnderTest

if TYPE_CHECKING:
    from reference_impl.settings import Settings


@contextmanager
def store_errors(url: str) -> Iterator[None]:
    """A store that cannot be opened or used is the operator's to fix: say which and why, no traceback."""
    from sqlalchemy.exc import DBAPIError  # lazily, like everything of the store: `eqlab --help` stays quick

    try:
        yield
    except DBAPIError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise click.ClickException(f"cannot use the store {safe_url(url)}: {reason}") from None


def platform_settings(**values: Any) -> Settings:
    """The platform's ``Settings``: ``values`` over the ``EQLAB_*`` environment. A bad variable is a usage
    error that names it (its value unsaid: it may be the master key), not a validation traceback."""
    from pydantic import ValidationError

    from reference_impl.platform import installed
    from reference_impl.settings import Settings

    try:
        settings = Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"EQLAB_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise click.UsageError(f"bad platform setting: {problems}") from None
    try:
        installed(settings)
    except ValueError as exc:
        raise click.UsageError(f"bad platform setting: EQLAB_SERVICES: {exc}") from None
    return settings


def migrate_store(url: str) -> None:
    from reference_impl.platform import migrate_platform
    from reference_impl.store.database import Database

    db = Database(url)
    try:
        migrate_platform(db)
    finally:
        db.dispose()


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# The variables testplans/reference.yaml names for the demo accounts' secrets.
DEMO_PASSWORD_ENV = "EQLAB_DEMO_PASSWORD_{}"
DEMO_WEBAPP_SECRET_ENV = "EQLAB_DEMO_WEBAPP_SECRET"


def demo_secret_values() -> dict[str, str]:
    """The variables the reference plan names, with the demo accounts' published secrets."""
    from reference_impl.seed import accounts

    values = {DEMO_PASSWORD_ENV.format(u.username.upper()): u.password for u in accounts.demo_users()}
    values[DEMO_WEBAPP_SECRET_ENV] = accounts.WEBAPP_SECRET
    return values


@contextmanager
def demo_secrets() -> Iterator[None]:
    """The demo accounts' published passwords in the variables the reference plan names, for one run
    against the embedded demo server only (never for a user's own target); restored afterwards."""
    values = demo_secret_values()
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True)
class ClientRegistration:
    client_id: str
    kind: str  # system, confidential or public
    name: str
    scopes: str
    redirect_uris: list[str]
    jwks: dict[str, Any] | None  # public keys only
    secret: str | None


def register_in_store(url: str, client: ClientRegistration) -> None:
    """Register ``client`` in the reference implementation's store (migrated first); one clear error
    when it is already there or its settings are refused."""
    from sqlalchemy import Connection

    from reference_impl.auth.registry import ClientKind, find_client, register_client
    from reference_impl.platform import migrate_platform
    from reference_impl.store.database import Database

    def work(conn: Connection) -> None:
        if find_client(conn, client.client_id) is not None:
            raise click.ClickException(f"a client {client.client_id} is already registered")
        kind = cast("ClientKind", client.kind)  # the three kinds are all that click and the plan let through
        register_client(
            conn, client.client_id, kind, client.name, client.scopes, client.redirect_uris, client.jwks, client.secret
        )

    db = Database(url)
    try:
        with store_errors(url):
            migrate_platform(db)
            db.run(work, write=True)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.dispose()


@contextmanager
def embedded_platform(client: ClientUnderTest, plan_dir: Path, seeded_store: Path | None = None) -> Iterator[str]:
    """The reference implementation on a free loopback port, with a fresh store seeded with the demo
    data (a copy of ``seeded_store``, when given: a store of the demo data alone, made once for many
    runs) and the client under test registered; yields its FHIR base URL."""
    from reference_impl.app import create_app
    from reference_impl.embedded import serve_in_thread
    from reference_impl.settings import Settings

    jwks = None
    if client.jwks_file:
        try:
            jwks, _ = public_jwks(plan_dir / client.jwks_file)
        except AuthConfigError as exc:
            raise click.ClickException(f"client.jwks_file: {exc}") from None
    secret = os.environ.get(client.secret_env) if client.secret_env else None
    registration = ClientRegistration(
        client.client_id, client.kind, client.client_id, client.scope, list(client.redirect_uris), jwks, secret
    )
    with tempfile.TemporaryDirectory(prefix="eqlab-platform-") as store:
        path = Path(store) / "reference.sqlite3"
        if seeded_store:
            shutil.copyfile(seeded_store, path)
        url = f"sqlite:///{path}"
        register_in_store(url, registration)
        with serve_in_thread(create_app(Settings(db_url=url, seed="demo"))) as base_url:
            yield base_url


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
    from reference_impl.settings import default_db_url

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
    register_in_store(
        url, ClientRegistration(client_id, kind, name or client_id, scopes, list(redirect_uris), jwks, secret)
    )
    click.echo(f"registered {kind} client {client_id} (scopes {scopes}) in {safe_url(url)}")
    if secret is not None:
        click.echo(f"client secret (shown once, keep it safe): {secret}")


@click.group("platform-keys", cls=FullHelpGroup)
def platform_keys() -> None:
    """The reference implementation's token-signing keys (they also rotate by themselves, daily) and master key."""


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


@platform_keys.command("rotate-master")
@click.option("--db", "db_url", default=None, help="The reference implementation's store (default: as `eqlab serve`).")
@click.option(
    "--old-key-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="The master key being replaced: a file holding its base64, like the master key file.",
)
def rotate_master_key(db_url: str | None, old_key_file: Path) -> None:
    """Re-wrap every key the master key wraps (document keys, token-signing keys) from the old master
    key to the configured one, in one transaction; documents are not re-encrypted.

    The new master key comes from EQLAB_MASTER_KEY or the key file, as for `eqlab serve` (a missing key
    file is made: move the old file aside, then name it here). Stop the servers first; start them with
    the new key. Running it again changes nothing; a wrong old key changes nothing and says so.
    """
    from reference_impl.auth.operator import rotate_master_key_in_store
    from reference_impl.settings import Settings
    from reference_impl.vault import MasterKey, VaultError

    settings = Settings(db_url=db_url) if db_url else Settings()
    try:
        old = MasterKey.from_text(old_key_file.read_text(encoding="ascii"))
        with store_errors(settings.db_url):
            rotation = rotate_master_key_in_store(settings, old)
    except (VaultError, UnicodeDecodeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"re-wrapped {rotation.document_keys} document key(s) and {rotation.signing_keys} token-signing key(s) "
        f"under the new master key in {safe_url(settings.db_url)}"
    )
