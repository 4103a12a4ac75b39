"""Attacks on client authentication at the token endpoint (private_key_jwt, client_secret_basic, none):
each is refused, and leaves exactly one AuditEvent (outcome 4)."""

from __future__ import annotations

import base64
import warnings
from typing import Any

import httpx
import pytest
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, RSAKey

from reference_impl.seed import accounts
from reference_impl.seed.accounts import put_client
from tests.reference_impl.auth.conftest import AuthLab, new_request_id, tagged
from tests.reference_impl.auth.flows import assertion, assertion_form, demo_system_key, post_assertion, refused

# --- client assertions (private_key_jwt) ---------------------------------------------------------


def test_a_replayed_assertion_jti_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    signed = assertion(demo_system_key(), accounts.SYSTEM_CLIENT, lab.token_url)
    assert post_assertion(lab, http, signed, new_request_id()).status_code == 200
    rid = new_request_id()
    refused(post_assertion(lab, http, signed, rid), 401, "invalid_client")
    event = lab.refusal_event(rid, "token")
    assert "replay" in event["outcomeDesc"]
    assert accounts.SYSTEM_CLIENT in str(event["agent"])


def test_an_assertion_expiring_more_than_five_minutes_ahead_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    rid = new_request_id()
    signed = assertion(demo_system_key(), accounts.SYSTEM_CLIENT, lab.token_url, lifetime=600)
    refused(post_assertion(lab, http, signed, rid), 401, "invalid_client")
    assert "300 seconds" in lab.refusal_event(rid, "token")["outcomeDesc"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": 1_000_000_000}, "client assertion: it has expired"),
        ({"aud": "https://elsewhere.example/token"}, "client assertion: aud must be the token endpoint"),
        ({"iss": accounts.PORTAL_CLIENT}, "this client must authenticate with none"),  # a public client's name
        ({"sub": "someone-else"}, "client assertion: iss and sub must both be the client id"),
        ({"jti": ""}, "client assertion: jti (a string of at most 256 characters) is required"),
    ],
    ids=["expired", "wrong audience", "iss is another client", "sub is not the client", "no jti"],
)
def test_an_assertion_with_bad_claims_is_refused(
    lab: AuthLab, http: httpx.Client, claims: dict[str, Any], reason: str
) -> None:
    rid = new_request_id()
    signed = assertion(demo_system_key(), accounts.SYSTEM_CLIENT, lab.token_url, **claims)
    body = refused(post_assertion(lab, http, signed, rid), 401, "invalid_client")
    assert body["error_description"].startswith(reason), body
    assert reason in lab.refusal_event(rid, "token")["outcomeDesc"]


def test_an_assertion_signed_with_an_unregistered_key_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    rid = new_request_id()
    intruder = ECKey.generate_key("P-384", parameters={"kid": accounts.SYSTEM_PUBLIC_JWK["kid"]})
    refused(
        post_assertion(lab, http, assertion(intruder, accounts.SYSTEM_CLIENT, lab.token_url), rid),
        401,
        "invalid_client",
    )
    assert "signature" in lab.refusal_event(rid, "token")["outcomeDesc"]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256", "none"])
def test_an_assertion_with_another_algorithm_is_refused(lab: AuthLab, http: httpx.Client, alg: str) -> None:
    rid = new_request_id()
    header = {
        "RS256": '{"alg":"RS256"}',
        "ES256": '{"alg":"ES256"}',
        "HS256": '{"alg":"HS256"}',
        "none": '{"alg":"none"}',
    }
    genuine = assertion(demo_system_key(), accounts.SYSTEM_CLIENT, lab.token_url)
    forged_header = base64.urlsafe_b64encode(header[alg].encode()).rstrip(b"=").decode()
    forged = ".".join([forged_header, genuine.split(".")[1], "" if alg == "none" else genuine.split(".")[2]])
    refused(post_assertion(lab, http, forged, rid), 401, "invalid_client")
    assert alg in lab.refusal_event(rid, "token")["outcomeDesc"]


def test_a_system_client_cannot_exceed_its_scopes(lab: AuthLab, http: httpx.Client) -> None:
    rid = new_request_id()
    form = assertion_form(assertion(demo_system_key(), accounts.SYSTEM_CLIENT, lab.token_url), "user/*.rs")
    refused(http.post(lab.token_url, data=form, headers=tagged(rid)), 400, "invalid_scope")
    lab.refusal_event(rid, "token")


# --- client authentication -------------------------------------------------------------------------


def test_a_wrong_client_secret_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    rid = new_request_id()
    response = http.post(
        lab.token_url,
        data={"grant_type": "refresh_token", "refresh_token": "rt.nothing"},
        auth=(accounts.WEBAPP_CLIENT, "not-the-secret"),
        headers=tagged(rid),
    )
    refused(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    event = lab.refusal_event(rid, "token")
    assert accounts.WEBAPP_CLIENT in str(event["agent"])
    assert "not-the-secret" not in str(event)


def test_a_confidential_client_cannot_skip_its_secret(lab: AuthLab, http: httpx.Client) -> None:
    rid = new_request_id()
    response = http.post(
        lab.token_url,
        data={"grant_type": "refresh_token", "refresh_token": "rt.x", "client_id": accounts.WEBAPP_CLIENT},
        headers=tagged(rid),
    )
    refused(response, 401, "invalid_client")
    lab.refusal_event(rid, "token")


def test_an_unknown_client_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    rid = new_request_id()
    response = http.post(
        lab.token_url,
        data={"grant_type": "authorization_code", "code": "x", "client_id": "nobody"},
        headers=tagged(rid),
    )
    refused(response, 401, "invalid_client")
    assert "nobody" in str(lab.refusal_event(rid, "token")["agent"])


def test_a_public_client_cannot_use_client_credentials(lab: AuthLab, http: httpx.Client) -> None:
    rid = new_request_id()
    response = http.post(
        lab.token_url,
        data={"grant_type": "client_credentials", "scope": "system/*.rs", "client_id": accounts.PORTAL_CLIENT},
        headers=tagged(rid),
    )
    refused(response, 400, "unauthorized_client")
    lab.refusal_event(rid, "token")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("grant_type=password&username=a&password=b&client_id=eqlab-demo-portal", "unsupported_grant_type"),
        ("client_id=eqlab-demo-portal", "invalid_request"),
        ("grant_type=client_credentials&grant_type=authorization_code&client_id=x", "invalid_request"),
    ],
)
def test_malformed_token_requests_are_refused(lab: AuthLab, http: httpx.Client, body: str, error: str) -> None:
    rid = new_request_id()
    headers = {**tagged(rid), "Content-Type": "application/x-www-form-urlencoded"}
    refused(http.post(lab.token_url, content=body, headers=headers), 400, error)
    lab.refusal_event(rid, "token")


def test_rs384_keys_under_2048_bits_are_not_accepted(lab: AuthLab, http: httpx.Client) -> None:
    with warnings.catch_warnings():  # joserfc rightly warns about the weak key this test needs
        warnings.simplefilter("ignore", SecurityWarning)
        small = RSAKey.generate_key(1024, parameters={"kid": "small"}, private=True)
        signed = assertion(small, "small-rsa-system", lab.token_url, alg="RS384")
    jwks = {"keys": [small.as_dict(private=False)]}
    lab.run(lambda conn: put_client(conn, "small-rsa-system", "system", "system/*.rs", jwks=jwks))
    rid = new_request_id()
    refused(post_assertion(lab, http, signed, rid), 401, "invalid_client")
    lab.refusal_event(rid, "token")
