"""Operator actions on the authorization server (the ``eqlab`` CLI calls these).

Rotating the signing key: the new key signs from now on; the old one stays in the JWKS, so the
tokens it signed keep validating until they expire. ``withdraw_previous`` is for a key suspected
compromised: the old keys leave the JWKS at once and their tokens stop validating (in a running
server within ``keys.CACHE_SECONDS``, its JWKS cache; at once through the ``service`` passed in).

Rotating the master key: every key it wraps (document keys, token-signing keys) is re-wrapped from
the old master key to the new one in one transaction; sealed documents are not re-encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, update

from reference_impl.auth import keys
from reference_impl.auth.schema import AUTH_MIGRATIONS, signing_keys
from reference_impl.auth.service import AuthService
from reference_impl.settings import Settings
from reference_impl.store.database import Database
from reference_impl.store.documents import rewrap_document_keys
from reference_impl.store.migrations import STORE_MIGRATIONS, migrate
from reference_impl.vault import MasterKey, VaultError, rewrapped


@dataclass(frozen=True)
class Rotation:
    kid: str  # the key that signs from now on
    withdrawn: tuple[str, ...]  # keys taken out of the JWKS (withdraw_previous)


def rotate_signing_key(db: Database, service: AuthService, withdraw_previous: bool = False) -> Rotation:
    def work(conn: Connection) -> Rotation:
        key = service.keys.rotate(conn)
        withdrawn = service.keys.withdraw_retired(conn) if withdraw_previous else []
        return Rotation(str(key.kid), tuple(withdrawn))

    return db.run(work, write=True)


def rotate_signing_key_in_store(settings: Settings, withdraw_previous: bool = False) -> Rotation:
    """For the CLI: rotate in the store of ``settings`` (migrated first, so a new store works too)."""
    db = Database(settings.db_url)
    try:
        migrate(db, (*STORE_MIGRATIONS, *AUTH_MIGRATIONS))  # what a key rotation needs
        return rotate_signing_key(db, AuthService.from_settings(settings), withdraw_previous)
    finally:
        db.dispose()


@dataclass(frozen=True)
class MasterRotation:
    document_keys: int  # re-wrapped now (keys already under the new master key are not counted)
    signing_keys: int


def rotate_master_key(db: Database, old: MasterKey, new: MasterKey) -> MasterRotation:
    """Re-wrap the document and token-signing keys from ``old`` to ``new``, all or nothing."""

    def work(conn: Connection) -> MasterRotation:
        return MasterRotation(rewrap_document_keys(conn, old, new), _rewrap_signing_keys(conn, old, new))

    return db.run(work, write=True)


def _rewrap_signing_keys(conn: Connection, old: MasterKey, new: MasterKey) -> int:
    if conn.dialect.name == "postgresql":  # a daily signing-key rotation waits for this one
        conn.exec_driver_sql("LOCK TABLE auth_signing_keys IN SHARE ROW EXCLUSIVE MODE")
    changes = []
    for kid, wrapped in conn.execute(select(signing_keys.c.kid, signing_keys.c.wrapped_jwk)).all():
        try:
            again = rewrapped(wrapped, keys.CONTEXT, old, new)
        except VaultError:
            raise VaultError(
                f"the token-signing key {kid} unwraps with neither the old nor the new master key: "
                "nothing was re-wrapped"
            ) from None
        if again is not None:
            changes.append({"key_kid": kid, "wrapped_jwk": again})
    if changes:
        conn.execute(update(signing_keys).where(signing_keys.c.kid == bindparam("key_kid")), changes)
    return len(changes)


def rotate_master_key_in_store(settings: Settings, old: MasterKey) -> MasterRotation:
    """For the CLI: from ``old`` to the master key of ``settings`` (made when it is a missing key file)."""
    db = Database(settings.db_url)
    try:
        migrate(db, (*STORE_MIGRATIONS, *AUTH_MIGRATIONS))  # what a rotation needs
        return rotate_master_key(db, old, settings.master())
    finally:
        db.dispose()
