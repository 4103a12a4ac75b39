"""Operator actions on the authorization server (the ``eqlab`` CLI calls these).

Rotating the signing key: the new key signs from now on; the old one stays in the JWKS, so the
tokens it signed keep validating until they expire. ``withdraw_previous`` is for a key suspected
compromised: the old keys leave the JWKS at once and their tokens stop validating (in a running
server within ``keys.CACHE_SECONDS``, its JWKS cache; at once through the ``service`` passed in).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from reference_impl.auth.schema import AUTH_MIGRATIONS
from reference_impl.auth.service import AuthService
from reference_impl.settings import Settings
from reference_impl.store.database import Database
from reference_impl.store.migrations import STORE_MIGRATIONS, migrate


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
