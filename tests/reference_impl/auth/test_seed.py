"""The demo seed: its clients and users, their documented secrets, idempotence, and test registration."""

from __future__ import annotations

import json

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import Connection, select

from reference_impl.auth.registry import check_secret, find_client, find_user, register_client
from reference_impl.platform import migrate_platform
from reference_impl.seed import accounts
from reference_impl.seed.accounts import register_test_client, register_test_user, seed_demo_accounts
from reference_impl.store.database import Database
from reference_impl.store.schema import resources
from tests.reference_impl.auth.conftest import AuthLab, make_app
from tests.reference_impl.auth.flows import REPO
from tests.support.servers import threaded_server


def test_the_demo_clients_are_registered_as_documented(lab: AuthLab) -> None:
    def work(conn: Connection) -> None:
        system = find_client(conn, accounts.SYSTEM_CLIENT)
        assert system is not None and system.kind == "system" and system.auth_method == "private_key_jwt"
        assert str(system.scopes) == "system/*.cruds" and system.jwks == {"keys": [accounts.SYSTEM_PUBLIC_JWK]}
        portal = find_client(conn, accounts.PORTAL_CLIENT)
        assert portal is not None and portal.kind == "public" and portal.auth_method == "none"
        assert portal.redirect_uris == ("http://localhost:8400/callback", "http://127.0.0.1:8400/callback")
        assert portal.secret_hash is None
        webapp = find_client(conn, accounts.WEBAPP_CLIENT)
        assert webapp is not None and webapp.auth_method == "client_secret_basic"
        assert check_secret(accounts.WEBAPP_SECRET, webapp.secret_hash)
        assert not check_secret("eqlab-demo-webapp-secreT", webapp.secret_hash)

    lab.run(work)


def test_the_demo_users_are_linked_to_the_demo_dataset(lab: AuthLab) -> None:
    def work(conn: Connection) -> None:
        for demo in accounts.demo_users():
            user = find_user(conn, demo.username)
            assert user is not None and user.role == demo.role and check_secret(demo.password, user.password_hash)
            if demo.fhir_user is None:
                continue
            type_name, res_id = demo.fhir_user.split("/")
            row = conn.execute(
                select(resources.c.content).where(resources.c.res_type == type_name, resources.c.res_id == res_id)
            ).first()
            assert row is not None, f"{demo.fhir_user} is not in the demo dataset"
            if type_name == "Patient":
                assert demo.person_id in row[0], "a patient's person_id is the national id of the Patient"

    lab.run(work)
    roles = {(u.username, u.role, u.fhir_user) for u in accounts.demo_users()}
    assert roles == {
        ("patient1", "patient", "Patient/pat-0001"),
        ("patient2", "patient", "Patient/pat-0002"),
        ("patient3", "patient", "Patient/pat-0003"),
        ("doctor1", "doctor", "PractitionerRole/role-001"),
        ("doctor2", "doctor", "PractitionerRole/role-002"),
        ("doctor3", "doctor", "PractitionerRole/role-003"),
        ("retired1", "doctor", "PractitionerRole/role-retired"),  # the directory's inactive practitioner
        ("auditor", "auditor", None),
    }


def test_seeding_is_idempotent_across_restarts(sqlite_db_url: str) -> None:
    for _ in range(2):
        with threaded_server(make_app(sqlite_db_url)):
            pass
    db = Database(sqlite_db_url)
    try:
        assert db.run(seed_demo_accounts, write=True) == []
    finally:
        db.dispose()


def test_the_shipped_private_key_is_the_registered_public_one() -> None:
    private = ECKey.import_key(json.loads((REPO / accounts.SYSTEM_KEY_FILE).read_text(encoding="utf-8")))
    assert private.is_private
    assert private.as_dict(private=False) == accounts.SYSTEM_PUBLIC_JWK
    readme = (REPO / "testplans/keys/README.md").read_text(encoding="utf-8")
    assert "DEMO ONLY" in readme


def test_demo_credentials_list_every_account() -> None:
    names = {name for _, name, _ in accounts.demo_credentials()}
    assert names == {
        accounts.SYSTEM_CLIENT,
        accounts.PORTAL_CLIENT,
        accounts.WEBAPP_CLIENT,
        *(u.username for u in accounts.demo_users()),
    }


def test_tests_can_register_and_replace_clients_and_users(sqlite_db_url: str) -> None:
    first = register_test_client(
        sqlite_db_url, "lab-app", "confidential", "user/*.rs", redirect_uris=["https://a.example/cb"], secret="s1"
    )
    again = register_test_client(
        sqlite_db_url, "lab-app", "confidential", "user/*.rs", redirect_uris=["https://b.example/cb"], secret="s2"
    )
    assert first.redirect_uris != again.redirect_uris and check_secret("s2", again.secret_hash)
    user = register_test_user(sqlite_db_url, "lab-nurse", "pw-1", "nurse", fhir_user="PractitionerRole/role-003")
    assert user.role == "nurse" and user.display_name == "lab-nurse"


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:*/callback", "https://app.example/*", "https://app.example/cb#x", "/relative", "http:///x"],
)
def test_redirect_uris_must_be_literal_absolute_uris(sqlite_db_url: str, uri: str) -> None:
    with pytest.raises(ValueError, match="redirect URI"):
        register_test_client(sqlite_db_url, "bad", "public", "patient/*.rs", redirect_uris=[uri])


def test_a_client_needs_valid_scopes(sqlite_db_url: str) -> None:
    db = Database(sqlite_db_url)
    try:
        migrate_platform(db)
        with pytest.raises(ValueError, match="scope"):
            db.run(lambda conn: register_client(conn, "x", "system", "x", "system/*.rs admin"), write=True)
    finally:
        db.dispose()
