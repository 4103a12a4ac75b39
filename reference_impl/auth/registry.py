"""Clients and users are data: registering them, finding them, checking their secrets.

Client secrets and passwords are stored as scrypt hashes (``hashlib.scrypt``, a vetted KDF: no
crypto written here) and compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Connection, insert, select

from reference_impl.auth.schema import clients, users
from reference_impl.auth.scopes import Scopes, is_valid

ClientKind = Literal["public", "confidential", "system"]
AUTH_METHODS = {"public": "none", "confidential": "client_secret_basic", "system": "private_key_jwt"}
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@cache
def published_secret_hash(secret: str) -> str:
    """The hash of a secret everyone knows (the demo accounts', which ``eqlab serve --seed demo`` prints): a salt
    of its own in each store protects nothing, so a process hashes each such secret once. scrypt costs ~50 ms
    a secret: 0.5 s of every demo store's first start, of which the test suite makes hundreds."""
    return hash_secret(secret)


def check_secret(secret: str, stored: str | None) -> bool:
    if not stored or stored.count("$") != 2:
        return False
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


@dataclass(frozen=True)
class Client:
    client_id: str
    kind: ClientKind
    name: str
    auth_method: str
    redirect_uris: tuple[str, ...]
    scopes: Scopes
    jwks: dict[str, Any] | None
    secret_hash: str | None
    active: bool


@dataclass(frozen=True)
class User:
    username: str
    password_hash: str
    role: str
    display_name: str
    person_id: str | None
    fhir_user: str | None
    active: bool

    @property
    def patient_id(self) -> str | None:
        return self.fhir_user.split("/", 1)[1] if self.fhir_user and self.fhir_user.startswith("Patient/") else None


def check_redirect_uri(uri: str) -> None:
    """Redirect URIs are compared as exact strings, so each must be one complete, literal URI:
    absolute, no fragment (RFC 6749 §3.1.2), no wildcard (there is no pattern matching)."""
    parts = urlsplit(uri)
    if not parts.scheme or (parts.scheme in ("http", "https") and not parts.hostname):
        raise ValueError(f"a redirect URI must be absolute: {uri!r}")
    if parts.fragment or "#" in uri:
        raise ValueError(f"a redirect URI has no fragment: {uri!r}")
    if "*" in uri or uri != uri.strip():
        raise ValueError(f"a redirect URI is one literal URI, no wildcard or blank: {uri!r}")


def register_client(
    conn: Connection,
    client_id: str,
    kind: ClientKind,
    name: str,
    scopes: str,
    redirect_uris: list[str] | None = None,
    jwks: dict[str, Any] | None = None,
    secret: str | None = None,
    hashed_with: Callable[[str], str] = hash_secret,
) -> Client:
    """Add a client; a confidential client gets its secret (given or generated, returned once by the caller)."""
    invalid = [s for s in scopes.split() if not is_valid(s)]
    if invalid:
        raise ValueError(f"not a valid scope: {', '.join(invalid)}")
    if kind == "system" and not (jwks and jwks.get("keys")):
        raise ValueError("a system client authenticates with private_key_jwt: give its public JWKS")
    if kind in ("public", "confidential") and not redirect_uris:
        raise ValueError(f"a {kind} client needs at least one redirect URI")
    for uri in redirect_uris or []:
        check_redirect_uri(uri)
    if kind == "confidential" and not secret:
        raise ValueError("a confidential client needs a secret")
    conn.execute(
        insert(clients).values(
            client_id=client_id,
            kind=kind,
            name=name,
            auth_method=AUTH_METHODS[kind],
            redirect_uris=json.dumps(redirect_uris or []),
            scopes=scopes,
            jwks=json.dumps(jwks) if jwks else None,
            secret_hash=hashed_with(secret) if secret else None,
            active=True,
            created_at=int(time.time()),
        )
    )
    found = find_client(conn, client_id)
    assert found is not None
    return found


def find_client(conn: Connection, client_id: str) -> Client | None:
    row = conn.execute(select(clients).where(clients.c.client_id == client_id)).first()
    if row is None:
        return None
    return Client(
        client_id=row.client_id,
        kind=row.kind,
        name=row.name,
        auth_method=row.auth_method,
        redirect_uris=tuple(json.loads(row.redirect_uris)),
        scopes=Scopes.parse(row.scopes),
        jwks=json.loads(row.jwks) if row.jwks else None,
        secret_hash=row.secret_hash,
        active=bool(row.active),
    )


def register_user(
    conn: Connection,
    username: str,
    password: str,
    role: str,
    display_name: str,
    person_id: str | None = None,
    fhir_user: str | None = None,
    hashed_with: Callable[[str], str] = hash_secret,
) -> User:
    conn.execute(
        insert(users).values(
            username=username,
            password_hash=hashed_with(password),
            role=role,
            display_name=display_name,
            person_id=person_id,
            fhir_user=fhir_user,
            active=True,
        )
    )
    found = find_user(conn, username)
    assert found is not None
    return found


def find_user(conn: Connection, username: str) -> User | None:
    row = conn.execute(select(users).where(users.c.username == username)).first()
    if row is None:
        return None
    return User(
        row.username, row.password_hash, row.role, row.display_name, row.person_id, row.fhir_user, bool(row.active)
    )
