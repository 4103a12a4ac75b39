"""Demo clients and users of the authorization server, and helpers to register test ones.

DEMO ONLY: every credential below is public (it is in this file and printed by ``eqlab serve
--seed demo``). Never load the demo seed into a platform that holds real data.

Clients
  ``eqlab-demo-system``  system (backend service), ``private_key_jwt`` ES384, ``system/*.cruds``.
                         Its private key: ``testplans/keys/demo-system-client.private.jwk``.
  ``eqlab-demo-portal``  public browser app (PKCE, no secret), patient scopes; redirect URIs
                         exactly ``http://localhost:8400/callback`` and ``http://127.0.0.1:8400/callback``.
  ``eqlab-demo-webapp``  confidential web app, ``client_secret_basic`` with secret
                         ``eqlab-demo-webapp-secret``; patient and user scopes; redirect URIs
                         exactly ``http://localhost:8401/callback`` and ``http://127.0.0.1:8401/callback``.

Users (password = ``eqlab-demo-`` + username)
  ``patient1``..``patient3``  patients Patient/pat-0001..pat-0003 of the demo dataset
  ``doctor1``..``doctor3``   practitioners PractitionerRole/role-001..role-003 (role ``doctor``; the
                             directory's contract check makes doctor3's role inactive for a moment)
  ``retired1``               a retired doctor: PractitionerRole/role-retired of an inactive practitioner
                             (the directory's demo data): the sign-in refuses him, and says why
  ``auditor``                reads the audit trail (role ``auditor``)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Connection, delete

from reference_impl.auth.registry import (
    Client,
    ClientKind,
    User,
    find_client,
    find_user,
    published_secret_hash,
    register_client,
    register_user,
)
from reference_impl.auth.schema import clients, users
from reference_impl.platform import migrate_platform
from reference_impl.seed.demo import demo_bundle
from reference_impl.services.directory import demo as directory_demo
from reference_impl.services.mpi import matricule
from reference_impl.store.database import Database

T = TypeVar("T")
SYSTEM_CLIENT = "eqlab-demo-system"
PORTAL_CLIENT = "eqlab-demo-portal"
WEBAPP_CLIENT = "eqlab-demo-webapp"
WEBAPP_SECRET = "eqlab-demo-webapp-secret"  # DEMO ONLY
PASSWORD_PREFIX = "eqlab-demo-"  # DEMO ONLY: a demo user's password is this + the username
SYSTEM_KEY_FILE = "testplans/keys/demo-system-client.private.jwk"
# The public half of SYSTEM_KEY_FILE (tests/reference_impl/auth/test_seed.py checks they belong together).
SYSTEM_PUBLIC_JWK: dict[str, Any] = {
    "kty": "EC",
    "crv": "P-384",
    "x": "4lTztFwjZJrYv7RpzBGDnWdp5s3B65-6qv2wY5iEc-J8qPX8xmVqIiDFKI4-MHZW",
    "y": "ZqTjWJYgt9-FB-iuSGGUiW-qbiFo8gkk8FBLhWz5LwtOOxdSHBfYYYMtcuNctzr5",
    "kid": "eqlab-demo-system-es384",
    "alg": "ES384",
    "use": "sig",
}
PORTAL_REDIRECTS = ["http://localhost:8400/callback", "http://127.0.0.1:8400/callback"]
WEBAPP_REDIRECTS = ["http://localhost:8401/callback", "http://127.0.0.1:8401/callback"]
PATIENT_SCOPES = "openid fhirUser profile offline_access launch/patient patient/*.cruds"
WEBAPP_SCOPES = f"{PATIENT_SCOPES} user/*.cruds"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    display_name: str
    person_id: str
    fhir_user: str | None

    @property
    def password(self) -> str:
        return PASSWORD_PREFIX + self.username


def demo_users() -> list[DemoUser]:
    """The demo users, their names and national ids taken from the demo dataset (deterministic)."""
    resources = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in demo_bundle()["entry"]
    }
    found = []
    for n in (1, 2, 3):
        reference = f"Patient/pat-{n:04d}"
        patient = resources[reference]
        name = patient["name"][0]
        person_id = next(i["value"] for i in patient["identifier"] if i["system"] == matricule.SYSTEM)
        found.append(DemoUser(f"patient{n}", "patient", f"{name['given'][0]} {name['family']}", person_id, reference))
    for n in (1, 2, 3):
        reference = f"PractitionerRole/role-{n:03d}"
        practitioner = resources[resources[reference]["practitioner"]["reference"]]
        name = practitioner["name"][0]
        # The dataset gives practitioners no national id: a fixed, valid one per demo practitioner.
        person_id = matricule.make(date(1970 + n, n, 10 + n), 500 + n)
        display = f"Dr {name['given'][0]} {name['family']}"
        found.append(DemoUser(f"doctor{n}", "doctor", display, person_id, reference))
    retired = next(r for r in directory_demo.demo_directory() if r["id"] == directory_demo.RETIRED_PRACTITIONER)
    name = retired["name"][0]
    display = f"Dr {name['given'][0]} {name['family']}"
    role = f"PractitionerRole/{directory_demo.RETIRED_ROLE}"
    found.append(DemoUser("retired1", "doctor", display, matricule.make(date(1950, 3, 14), 503), role))
    found.append(DemoUser("auditor", "auditor", "Demo Auditor", matricule.make(date(1980, 6, 1), 900), None))
    return found


def seed_demo_accounts(conn: Connection) -> list[str]:
    """Register what is missing of the demo clients and users (idempotent); returns what was added."""
    added = []
    demo_clients: list[dict[str, Any]] = [
        {"client_id": SYSTEM_CLIENT, "kind": "system", "name": "eqlab demo backend system", "scopes": "system/*.cruds",
         "jwks": {"keys": [SYSTEM_PUBLIC_JWK]}},
        {"client_id": PORTAL_CLIENT, "kind": "public", "name": "eqlab demo patient portal", "scopes": PATIENT_SCOPES,
         "redirect_uris": PORTAL_REDIRECTS},
        {"client_id": WEBAPP_CLIENT, "kind": "confidential", "name": "eqlab demo web application",
         "scopes": WEBAPP_SCOPES, "redirect_uris": WEBAPP_REDIRECTS, "secret": WEBAPP_SECRET},
    ]  # fmt: skip
    for spec in demo_clients:
        if find_client(conn, spec["client_id"]) is None:
            register_client(conn, **spec, hashed_with=published_secret_hash)
            added.append(spec["client_id"])
    for user in demo_users():
        if find_user(conn, user.username) is None:
            register_user(
                conn,
                user.username,
                user.password,
                user.role,
                user.display_name,
                user.person_id,
                user.fhir_user,
                hashed_with=published_secret_hash,
            )
            added.append(user.username)
    return added


def demo_credentials() -> list[tuple[str, str, str]]:
    """(kind, name, secret or where it is) of every demo account: what ``eqlab serve --seed demo`` prints."""
    rows = [
        ("client", SYSTEM_CLIENT, f"private_key_jwt, key {SYSTEM_KEY_FILE}"),
        ("client", PORTAL_CLIENT, "public (PKCE), redirect " + ", ".join(PORTAL_REDIRECTS)),
        ("client", WEBAPP_CLIENT, f"secret {WEBAPP_SECRET}, redirect " + ", ".join(WEBAPP_REDIRECTS)),
    ]
    rows += [
        ("user", u.username, f"password {u.password} ({' '.join(filter(None, (u.role, u.fhir_user)))})")
        for u in demo_users()
    ]
    return rows


def put_client(conn: Connection, client_id: str, kind: ClientKind, scopes: str, **fields: Any) -> Client:
    """Register ``client_id``, replacing any client of that id (for tests that need a client of their own)."""
    conn.execute(delete(clients).where(clients.c.client_id == client_id))
    return register_client(conn, client_id, kind, fields.pop("name", client_id), scopes, **fields)


def put_user(conn: Connection, username: str, password: str, role: str, **fields: Any) -> User:
    """Register ``username``, replacing any user of that name."""
    conn.execute(delete(users).where(users.c.username == username))
    return register_user(conn, username, password, role, fields.pop("display_name", username), **fields)


def register_test_client(db_url: str, client_id: str, kind: ClientKind, scopes: str, **fields: Any) -> Client:
    """Register a client in the store at ``db_url`` (migrated first): for the lab's own tests."""
    return _in_store(db_url, lambda conn: put_client(conn, client_id, kind, scopes, **fields))


def register_test_user(db_url: str, username: str, password: str, role: str, **fields: Any) -> User:
    """Register a user in the store at ``db_url`` (migrated first): for the lab's own tests."""
    return _in_store(db_url, lambda conn: put_user(conn, username, password, role, **fields))


def _in_store(db_url: str, work: Callable[[Connection], T]) -> T:
    db = Database(db_url)
    try:
        migrate_platform(db)
        return db.run(work, write=True)
    finally:
        db.dispose()
