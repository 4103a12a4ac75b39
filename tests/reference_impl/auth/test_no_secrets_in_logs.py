"""Nothing the server logs holds a token, a code, a secret, a password or a private key.

Everything is logged at DEBUG, SQLAlchemy's statements, parameters and rows included, while a
full set of flows runs (success and refusals); then the log is searched for the actual strings.
Client-side libraries (httpx, httpcore, authlib) are left out: they log what the test client
receives, which is not the server's log.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from authlib.common.security import generate_token

from reference_impl.seed import accounts
from tests.reference_impl.auth.conftest import TEST_MASTER_KEY, AuthLab, make_app
from tests.reference_impl.auth.flows import (
    REPO,
    Browser,
    assertion,
    assertion_form,
    authorize_params,
    authorize_url,
    code_for,
    demo_system_key,
    pkce_pair,
    redeem,
)
from tests.reference_impl.auth.test_lifecycle import WEBAPP, webapp_tokens
from tests.support.servers import threaded_server

CLIENT_SIDE = ("httpx", "httpcore", "authlib", "hpack")


def run_flows(lab: AuthLab, http: httpx.Client) -> list[str]:
    """Every kind of exchange, success and failure; returns the secrets that went over the wire."""
    seen: list[str] = [accounts.WEBAPP_SECRET, "eqlab-demo-patient1", "eqlab-demo-patient2", TEST_MASTER_KEY]
    seen.append(json.loads((REPO / accounts.SYSTEM_KEY_FILE).read_text(encoding="utf-8"))["d"])
    code, verifier, _ = code_for(lab, http)
    seen += [code, verifier, str(http.cookies.get("eqlab_auth_session"))]
    tokens = redeem(lab, http, code, verifier).json()
    seen += [tokens["access_token"], tokens["refresh_token"], tokens["id_token"]]
    assert redeem(lab, http, code, verifier).status_code == 400  # a reused code, refused and logged
    webapp = webapp_tokens(lab, http)
    seen += [webapp["access_token"], webapp["refresh_token"]]
    rotated = http.post(
        lab.token_url,
        data={"grant_type": "refresh_token", "refresh_token": webapp["refresh_token"]},
        auth=WEBAPP,
    ).json()
    seen += [rotated["access_token"], rotated["refresh_token"]]
    wrong_secret = "not-the-webapp-secret-" + generate_token(8)
    seen.append(wrong_secret)
    refused = http.post(
        lab.token_url,
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        auth=(accounts.WEBAPP_CLIENT, wrong_secret),
    )
    assert refused.status_code == 401
    signed = assertion(demo_system_key(), accounts.SYSTEM_CLIENT, lab.token_url)
    system = http.post(lab.token_url, data=assertion_form(signed)).json()
    seen += [signed, system["access_token"]]
    assert http.post(lab.token_url, data=assertion_form(signed)).status_code == 401  # replay
    wrong_password = "Wrong-Password-" + generate_token(8)
    seen.append(wrong_password)
    _, challenge = pkce_pair()
    params = authorize_params(lab, accounts.PORTAL_CLIENT, accounts.PORTAL_REDIRECTS[0], "patient/*.rs", challenge)
    with httpx.Client(timeout=30) as stranger:
        browser = Browser(stranger)
        assert browser.login(browser.open(authorize_url(lab, params)), "patient3", wrong_password).status_code == 401
    http.post(lab.url("introspect"), data={"token": tokens["access_token"]}, auth=WEBAPP)
    http.get(lab.url("userinfo"), headers={"Authorization": f"Bearer {tokens['access_token']}"})
    http.post(lab.url("revoke"), data={"token": tokens["refresh_token"], "client_id": accounts.PORTAL_CLIENT})
    return seen


def test_a_full_set_of_flows_logs_no_secret(
    sqlite_db_url: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")  # statements, parameters and result rows
    app = make_app(sqlite_db_url)  # made after the level is set: SQLAlchemy then logs every statement
    with threaded_server(app) as fhir_base, httpx.Client(timeout=30) as http:
        secrets = run_flows(AuthLab(app, sqlite_db_url, fhir_base), http)
    server_log = "\n".join(record.getMessage() for record in caplog.records if not record.name.startswith(CLIENT_SIDE))
    output = capfd.readouterr()
    text = server_log + output.out + output.err
    assert "refused login" in text and "refused token" in text, "the server's log was not captured"
    assert "INSERT INTO auth_codes" in text, "SQL statements were not captured"
    leaks = [secret[:12] + "..." for secret in secrets if secret and secret in text]
    assert not leaks, f"secrets found in the log: {leaks}"
