"""SMART Backend Services: client credentials with private_key_jwt (ES384 and RS384), via authlib."""

from __future__ import annotations

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from reference_impl.seed import accounts
from reference_impl.seed.accounts import register_test_client
from tests.reference_impl.auth.conftest import AuthLab
from tests.reference_impl.auth.flows import demo_system_key, system_client


def claims_of(lab: AuthLab, http: httpx.Client, token: str) -> dict[str, object]:
    keys = KeySet.import_key_set(http.get(lab.url("jwks")).json())
    claims: dict[str, object] = jwt.decode(token, keys, algorithms=["ES256"]).claims
    return claims


def test_the_demo_system_gets_a_token_with_its_es384_key(lab: AuthLab, http: httpx.Client) -> None:
    with system_client(lab, accounts.SYSTEM_CLIENT, demo_system_key(), "ES384", "system/Patient.rs") as client:
        token = client.fetch_token(lab.token_url, grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "system/Patient.rs"
    assert "refresh_token" not in token and "id_token" not in token
    claims = claims_of(lab, http, token["access_token"])
    assert claims["sub"] == claims["client_id"] == accounts.SYSTEM_CLIENT
    assert claims["subject_role"] == "system" and claims["aud"] == lab.fhir_base


def test_a_system_registered_with_an_rsa_key_signs_rs384(lab: AuthLab, http: httpx.Client) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "lab-rs384", "alg": "RS384"}, private=True)
    register_test_client(
        lab.db_url, "lab-rs384-system", "system", "system/*.rs", jwks={"keys": [key.as_dict(private=False)]}
    )
    with system_client(lab, "lab-rs384-system", key, "RS384", "system/Observation.rs system/Patient.r") as client:
        token = client.fetch_token(lab.token_url, grant_type="client_credentials")
    assert token["scope"] == "system/Observation.rs system/Patient.r"
    assert claims_of(lab, http, token["access_token"])["sub"] == "lab-rs384-system"


def test_each_assertion_is_fresh_so_repeated_grants_work(lab: AuthLab) -> None:
    with system_client(lab, accounts.SYSTEM_CLIENT, demo_system_key(), "ES384", "system/*.rs") as client:
        first = client.fetch_token(lab.token_url, grant_type="client_credentials")
        second = client.fetch_token(lab.token_url, grant_type="client_credentials")
    assert first["access_token"] != second["access_token"]
