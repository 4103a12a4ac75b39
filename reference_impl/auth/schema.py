"""Tables of the authorization server: keys, clients, users, codes, tokens, replay stores, sessions.

Secrets are never stored in the clear: client secrets, passwords, codes, refresh tokens and session
ids are stored as hashes; signing keys are wrapped with the master key.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Connection, String, Table, Text

from reference_impl.store.migrations import Migration
from reference_impl.store.schema import metadata

signing_keys = Table(
    "auth_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("wrapped_jwk", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),  # epoch seconds
    Column("retired_at", BigInteger, nullable=True),
)

clients = Table(
    "auth_clients",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),  # public | confidential | system
    Column("name", String(200), nullable=False),
    Column("auth_method", String(32), nullable=False),  # none | client_secret_basic | private_key_jwt
    Column("redirect_uris", Text, nullable=False, default="[]"),  # JSON list
    Column("scopes", Text, nullable=False),  # allowed scopes, space-separated
    Column("jwks", Text, nullable=True),  # JSON key set, for private_key_jwt
    Column("secret_hash", Text, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
)

users = Table(
    "auth_users",
    metadata,
    Column("username", String(128), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(64), nullable=False),  # patient | auditor | a practitioner role code
    Column("display_name", String(200), nullable=False),
    Column("person_id", String(32), nullable=True),  # national identification number
    Column("fhir_user", String(200), nullable=True),  # Patient/x or PractitionerRole/y
    Column("active", Boolean, nullable=False, default=True),
)

codes = Table(
    "auth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("username", String(128), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("purpose_of_use", String(16), nullable=True),
    Column("nonce", String(256), nullable=True),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
)

refresh_tokens = Table(
    "auth_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family", String(64), nullable=False),  # all refresh tokens rotated from one grant
    Column("client_id", String(128), nullable=False),
    Column("username", String(128), nullable=False),
    Column("scope", Text, nullable=False),
    Column("purpose_of_use", String(16), nullable=True),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),  # rotated: a second use revokes the family
    Column("revoked_at", BigInteger, nullable=True),
)

issued_tokens = Table(
    "auth_issued_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("family", String(64), nullable=True),  # the grant (code or refresh family) it came from
    Column("client_id", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

assertion_jtis = Table(
    "auth_assertion_jtis",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("jti", String(256), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)

sessions = Table(
    "auth_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("username", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

AUTH_TABLES = (signing_keys, clients, users, codes, refresh_tokens, issued_tokens, assertion_jtis, sessions)


def _create_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(AUTH_TABLES))


AUTH_MIGRATIONS = (Migration(2, "authorization server: keys, clients, users, codes, tokens, sessions", _create_tables),)
