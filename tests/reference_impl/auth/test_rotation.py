"""Signing-key rotation: old tokens keep validating while their key is in the JWKS, and no longer after."""

from __future__ import annotations

import time

import httpx
from joserfc import jws
from sqlalchemy import Connection

from reference_impl.auth.keys import SigningKeys
from reference_impl.auth.operator import rotate_signing_key, rotate_signing_key_in_store
from reference_impl.platform import migrate_platform
from reference_impl.settings import Settings
from reference_impl.store.database import Database
from tests.reference_impl.auth.conftest import TEST_MASTER_KEY, AuthLab
from tests.reference_impl.auth.test_lifecycle import WEBAPP, patient_tokens


def kid_of(token: str) -> str:
    return str(jws.extract_compact(token.encode()).protected["kid"])


def jwks_kids(lab: AuthLab, http: httpx.Client) -> set[str]:
    return {key["kid"] for key in http.get(lab.url("jwks")).json()["keys"]}


def active(lab: AuthLab, http: httpx.Client, token: str) -> bool:
    answer = http.post(lab.url("introspect"), data={"token": token}, auth=WEBAPP).json()
    return bool(answer["active"])


def userinfo_status(lab: AuthLab, http: httpx.Client, token: str) -> int:
    return http.get(lab.url("userinfo"), headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_token_signed_before_a_rotation_validates_until_its_key_leaves_the_jwks(
    lab: AuthLab, http: httpx.Client
) -> None:
    before = patient_tokens(lab, http)["access_token"]
    old_kid = kid_of(before)
    db = lab.app.state.fhir.db

    rotation = rotate_signing_key(db, lab.service)
    assert rotation.kid != old_kid and rotation.withdrawn == ()
    after = patient_tokens(lab, http)["access_token"]
    assert kid_of(after) == rotation.kid, "the new key signs from now on"
    assert {old_kid, rotation.kid} <= jwks_kids(lab, http)
    assert active(lab, http, before) and userinfo_status(lab, http, before) == 200

    # An operator who suspects the old key withdraws it: its tokens stop validating at once.
    withdrawal = rotate_signing_key(db, lab.service, withdraw_previous=True)
    assert old_kid in withdrawal.withdrawn and rotation.kid in withdrawal.withdrawn
    assert old_kid not in jwks_kids(lab, http)
    assert not active(lab, http, before)
    assert userinfo_status(lab, http, before) == 401
    assert userinfo_status(lab, http, patient_tokens(lab, http)["access_token"]) == 200


def test_a_retired_key_leaves_the_jwks_one_token_lifetime_after_rotation(sqlite_db_url: str) -> None:
    db = Database(sqlite_db_url)
    migrate_platform(db)
    keys = SigningKeys(Settings(master_key=TEST_MASTER_KEY).master(), token_lifetime_s=600, rotate_after_s=3600)
    start = int(time.time())

    def work(conn: Connection) -> None:
        first = keys.active(conn, start)
        second = keys.rotate(conn, start + 100)
        assert set(keys.verification_keys(conn, start + 100 + 599)) == {first.kid, second.kid}
        assert set(keys.verification_keys(conn, start + 100 + 600)) == {second.kid}
        # Rotation by age: a key older than rotate_after_s is replaced when it would sign.
        third = keys.active(conn, start + 100 + 3600)
        assert third.kid not in (first.kid, second.kid)

    try:
        db.run(work, write=True)
    finally:
        db.dispose()


def test_the_operator_function_rotates_in_a_store_by_its_settings(sqlite_db_url: str) -> None:
    settings = Settings(db_url=sqlite_db_url, master_key=TEST_MASTER_KEY)
    first = rotate_signing_key_in_store(settings)
    second = rotate_signing_key_in_store(settings)
    assert first.kid != second.kid and second.withdrawn == ()
