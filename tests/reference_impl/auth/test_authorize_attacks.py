"""Attacks on the authorize endpoint and the login pages: refused, never an open redirect, audited."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
import pytest

from reference_impl.seed import accounts
from tests.reference_impl.auth.conftest import AuthLab, new_request_id, tagged
from tests.reference_impl.auth.flows import (
    PATIENT_SCOPE,
    PORTAL_REDIRECT,
    Browser,
    authorize_params,
    authorize_url,
    form_of,
    pkce_pair,
    query_of,
)

# Each differs from the registered "http://localhost:8400/callback" in some way an attacker would try.
OPEN_REDIRECTS = [
    "https://evil.example",
    "https://evil.example/callback",
    "http://localhost:8400/callback/extra",
    "http://localhost:8400/callback?next=https://evil.example",
    "http://localhost:8400/callback#https://evil.example",
    "http://localhost:8400/callback/",
    "http://localhost:8400/callback/../evil",
    "http://localhost:8400/callback%2F..%2Fevil",
    "http://localhost:8400@evil.example/callback",
    "http://evil.example@localhost:8400/callback",
    "http://localhost:8400.evil.example/callback",
    "http://LOCALHOST:8400/callback",
    "http://localhost:8401/callback",
    "http://localhost/callback",
    "https://localhost:8400/callback",
    "//evil.example/callback",
    "http://127.0.0.1:9999/callback",
    " http://localhost:8400/callback",
]


def portal_params(lab: AuthLab, **changes: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {**authorize_params(lab, accounts.PORTAL_CLIENT, PORTAL_REDIRECT, PATIENT_SCOPE, challenge), **changes}


def assert_error_page(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text[:300]
    assert "location" not in response.headers, "an untrusted redirect URI must never be redirected to"
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("redirect_uri", OPEN_REDIRECTS)
def test_an_unregistered_redirect_uri_gets_an_error_page(lab: AuthLab, http: httpx.Client, redirect_uri: str) -> None:
    rid = new_request_id()
    response = http.get(authorize_url(lab, portal_params(lab, redirect_uri=redirect_uri)), headers=tagged(rid))
    assert_error_page(response)
    event = lab.refusal_event(rid, "authorize")
    assert "not registered" in event["outcomeDesc"] and accounts.PORTAL_CLIENT in str(event["agent"])


def test_a_second_redirect_uri_parameter_is_not_followed(lab: AuthLab, http: httpx.Client) -> None:
    items = [*portal_params(lab).items(), ("redirect_uri", "https://evil.example/callback")]
    rid = new_request_id()
    assert_error_page(http.get(authorize_url(lab, items), headers=tagged(rid)))
    lab.refusal_event(rid, "authorize")


def test_an_unknown_client_gets_an_error_page(lab: AuthLab, http: httpx.Client) -> None:
    rid = new_request_id()
    response = http.get(authorize_url(lab, portal_params(lab, client_id="no-such-client")), headers=tagged(rid))
    assert_error_page(response)
    assert "no-such-client" in str(lab.refusal_event(rid, "authorize")["agent"])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "user/*.cruds"}, "invalid_scope"),
        ({"scope": "system/*.rs"}, "invalid_scope"),
        ({"scope": "patient/*.rs admin"}, "invalid_scope"),
        ({"aud": "https://elsewhere.example/fhir"}, "invalid_request"),
        ({"aud": ""}, "invalid_request"),
    ],
)
def test_a_bad_request_from_a_known_client_goes_back_to_it_with_the_error(
    lab: AuthLab, http: httpx.Client, change: dict[str, str], error: str
) -> None:
    params = portal_params(lab, **change)
    rid = new_request_id()
    response = http.get(authorize_url(lab, params), headers=tagged(rid))
    assert response.status_code == 302, response.text[:300]
    location = response.headers["location"]
    assert location.startswith(PORTAL_REDIRECT + "?")
    answer = query_of(location)
    assert answer["error"] == error and answer["state"] == params["state"]
    assert answer["iss"] == f"{lab.origin}/auth"
    lab.refusal_event(rid, "authorize")


def test_a_request_without_state_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    params = portal_params(lab)
    del params["state"]
    response = http.get(authorize_url(lab, params))
    assert response.status_code == 302
    assert query_of(response.headers["location"])["error"] == "invalid_request"


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(lab: AuthLab, http: httpx.Client) -> None:
    browser = Browser(http)
    page = browser.open(authorize_url(lab, portal_params(lab)))
    answers = {}
    for username, password in [("patient1", "Not-The-Password-42"), ("nobody", "eqlab-demo-patient1")]:
        rid = new_request_id()
        browser.headers = tagged(rid)
        answer = browser.login(page, username, password)
        assert answer.status_code == 401 and "location" not in answer.headers
        assert "Wrong username or password." in answer.text
        event = lab.refusal_event(rid, "login")
        assert username in str(event["agent"]) and password not in str(event)
        answers[username] = re.sub(r'nonce="[^"]+"', "", answer.text.replace(username, ""))
    # The same page either way (but for the username echoed and the CSP nonce): no user enumeration.
    assert len(set(answers.values())) == 1
    # And the right password still works afterwards.
    assert browser.login(page, "patient1", "eqlab-demo-patient1").status_code == 303


def test_a_login_without_the_sessions_csrf_token_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    browser = Browser(http)
    page = browser.open(authorize_url(lab, portal_params(lab)))
    action, fields = form_of(page)
    rid = new_request_id()
    forged = {**fields, "csrf": "forged", "username": "patient1", "password": "eqlab-demo-patient1"}
    assert_error_page(http.post(action, data=forged, headers=tagged(rid)))
    lab.refusal_event(rid, "login")
    # A cross-site post carries no session cookie at all: refused the same way.
    with httpx.Client(timeout=30) as stranger:
        assert_error_page(stranger.post(action, data={**fields, "username": "patient1", "password": "x"}))


def test_the_login_form_cannot_smuggle_in_another_redirect_uri(lab: AuthLab, http: httpx.Client) -> None:
    browser = Browser(http)
    page = browser.open(authorize_url(lab, portal_params(lab)))
    action, fields = form_of(page)
    tampered = fields["request"].replace(
        urlencode({"redirect_uri": PORTAL_REDIRECT}), urlencode({"redirect_uri": "https://evil.example/cb"})
    )
    assert tampered != fields["request"]
    rid = new_request_id()
    data = {**fields, "request": tampered, "username": "patient1", "password": "eqlab-demo-patient1"}
    assert_error_page(http.post(action, data=data, headers=tagged(rid)))
    lab.refusal_event(rid, "login")


def test_denying_consent_goes_back_as_access_denied(lab: AuthLab, http: httpx.Client) -> None:
    browser = Browser(http)
    params = portal_params(lab)
    page = browser.open(authorize_url(lab, params))
    consent_page = browser.open(browser.login(page, "patient1", "eqlab-demo-patient1").headers["location"])
    rid = new_request_id()
    browser.headers = tagged(rid)
    answer = browser.consent(consent_page, decision="deny")
    assert answer.status_code == 303
    back = query_of(answer.headers["location"])
    assert back["error"] == "access_denied" and back["state"] == params["state"] and "code" not in back
    lab.refusal_event(rid, "consent")


def test_a_practitioner_must_choose_a_real_purpose_of_use(lab: AuthLab, http: httpx.Client) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(lab, accounts.WEBAPP_CLIENT, accounts.WEBAPP_REDIRECTS[0], "user/*.rs", challenge)
    browser = Browser(http)
    page = browser.open(authorize_url(lab, params))
    consent_page = browser.open(browser.login(page, "doctor2", "eqlab-demo-doctor2").headers["location"])
    assert 'value="TREAT"' in consent_page.text and 'value="EMERGENCY"' in consent_page.text
    rid = new_request_id()
    browser.headers = tagged(rid)
    answer = browser.consent(consent_page, purpose="HMARKT")
    assert answer.status_code == 303 and query_of(answer.headers["location"])["error"] == "invalid_request"
    lab.refusal_event(rid, "consent")
