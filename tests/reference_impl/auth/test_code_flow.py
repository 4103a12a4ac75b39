"""Authorization code + PKCE S256 and refresh, driven by authlib's OAuth2 client, through the real pages."""

from __future__ import annotations

from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.testclient import TestClient

from reference_impl.seed import accounts
from tests.reference_impl.auth.conftest import AuthLab, make_app
from tests.reference_impl.auth.flows import PATIENT_SCOPE, PORTAL_REDIRECT, Browser, query_of, webapp_client


def verified_claims(lab: AuthLab, http: httpx.Client, token: str) -> dict[str, object]:
    """The token's claims, its signature checked against the published JWKS (ES256)."""
    keys = KeySet.import_key_set(http.get(lab.url("jwks")).json())
    claims: dict[str, object] = jwt.decode(token, keys, algorithms=["ES256"]).claims
    return claims


def portal_client(scope: str = PATIENT_SCOPE) -> OAuth2Client:
    return OAuth2Client(
        accounts.PORTAL_CLIENT, code_challenge_method="S256", redirect_uri=PORTAL_REDIRECT, scope=scope, timeout=30
    )


def portal_url(lab: AuthLab) -> str:
    with portal_client() as client:
        url, _ = client.create_authorization_url(
            lab.url("authorize"), code_verifier=generate_token(48), aud=lab.fhir_base
        )
    return str(url)


def test_a_patient_signs_in_to_the_public_portal_and_refreshes(lab: AuthLab, http: httpx.Client) -> None:
    with portal_client() as client:
        last = patient_flow(lab, http, client)
    assert reads_own_record(lab, http, last["access_token"])


def test_the_patient_flow_with_authlibs_requests_session(lab: AuthLab, http: httpx.Client) -> None:
    """The same flow with authlib's OAuth2Session (requests), the client most Python apps use."""
    with OAuth2Session(
        accounts.PORTAL_CLIENT, code_challenge_method="S256", redirect_uri=PORTAL_REDIRECT, scope=PATIENT_SCOPE
    ) as session:
        last = patient_flow(lab, http, session)
    assert reads_own_record(lab, http, last["access_token"])


def reads_own_record(lab: AuthLab, http: httpx.Client, access_token: str) -> bool:
    """The patient's token, at the end of the flow, opens Patient/pat-0001 on the FHIR API."""
    headers = {"Authorization": f"Bearer {access_token}"}
    return http.get(f"{lab.fhir_base}/Patient/pat-0001", headers=headers).status_code == 200


def patient_flow(lab: AuthLab, http: httpx.Client, client: OAuth2Client | OAuth2Session) -> dict[str, Any]:
    """Sign in, redeem the code, refresh three times (rotating, narrowing, back); the last token set."""
    verifier = generate_token(64)
    url, state = client.create_authorization_url(
        lab.url("authorize"), code_verifier=verifier, aud=lab.fhir_base, nonce="nonce-1"
    )
    back = Browser(http).sign_in(url, "patient1", "eqlab-demo-patient1")
    assert back.startswith(PORTAL_REDIRECT + "?")
    assert query_of(back)["state"] == state
    assert query_of(back)["iss"] == f"{lab.origin}/auth"

    token = client.fetch_token(lab.token_url, authorization_response=back, code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    assert token["scope"] == PATIENT_SCOPE
    assert token["patient"] == "pat-0001"
    claims = verified_claims(lab, http, token["access_token"])
    assert claims["iss"] == f"{lab.origin}/auth" and claims["aud"] == lab.fhir_base
    assert claims["sub"] == "patient1" and claims["client_id"] == accounts.PORTAL_CLIENT
    assert claims["subject_role"] == "patient" and claims["purpose_of_use"] == "PATRQT"
    assert claims["patient"] == "pat-0001" and claims["fhirUser"] == "Patient/pat-0001"
    assert str(claims["person_id"]).isdigit() and len(str(claims["person_id"])) == 13
    id_token = verified_claims(lab, http, token["id_token"])
    assert id_token["aud"] == accounts.PORTAL_CLIENT and id_token["nonce"] == "nonce-1"
    assert id_token["sub"] == "patient1" and id_token["fhirUser"] == "Patient/pat-0001"

    refreshed = client.refresh_token(lab.token_url, refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"], "refresh tokens rotate"
    assert refreshed["access_token"] != token["access_token"]
    assert verified_claims(lab, http, refreshed["access_token"])["sub"] == "patient1"
    narrowed = client.refresh_token(lab.token_url, refresh_token=refreshed["refresh_token"], scope="patient/*.r")
    assert narrowed["scope"] == "patient/*.r"
    assert verified_claims(lab, http, narrowed["access_token"])["scope"] == "patient/*.r"
    # The successor of a narrowed refresh keeps the grant's scope (RFC 6749 §6).
    again: dict[str, Any] = client.refresh_token(lab.token_url, refresh_token=narrowed["refresh_token"])
    assert again["scope"] == PATIENT_SCOPE
    return again


def test_a_practitioner_uses_the_confidential_web_app_for_an_emergency(lab: AuthLab, http: httpx.Client) -> None:
    with webapp_client("openid fhirUser profile user/*.rs patient/*.rs") as client:
        verifier = generate_token(50)
        url, _ = client.create_authorization_url(lab.url("authorize"), code_verifier=verifier, aud=lab.fhir_base)
        back = Browser(http).sign_in(url, "doctor1", "eqlab-demo-doctor1", purpose="EMERGENCY")
        token = client.fetch_token(lab.token_url, authorization_response=back, code_verifier=verifier)
        # A practitioner holds user/ scopes; patient/ ones need a patient context the server does not pick.
        assert token["scope"] == "openid fhirUser profile user/*.rs"
        assert "refresh_token" not in token, "no offline_access asked: no refresh token"
        assert "patient" not in token
        claims = verified_claims(lab, http, token["access_token"])
        assert claims["subject_role"] == "doctor" and claims["purpose_of_use"] == "EMERGENCY"
        assert claims["fhirUser"] == "PractitionerRole/role-001"

        info = http.get(lab.url("userinfo"), headers={"Authorization": f"Bearer {token['access_token']}"})
        assert info.status_code == 200
        assert info.json()["sub"] == "doctor1" and info.json()["fhirUser"] == "PractitionerRole/role-001"
        assert info.json()["name"].startswith("Dr ")


def test_a_second_authorization_in_the_same_session_skips_the_login(lab: AuthLab, http: httpx.Client) -> None:
    browser = Browser(http)
    browser.sign_in(portal_url(lab), "patient2", "eqlab-demo-patient2")
    page = browser.open(portal_url(lab))
    assert page.status_code == 200 and 'action="' + lab.url("consent") in page.text
    assert "patient2" in page.text


def test_the_pages_are_locked_down_and_the_cookie_is_httponly_lax(lab: AuthLab, http: httpx.Client) -> None:
    page = http.get(portal_url(lab))
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text and " src=" not in page.text and " href=" not in page.text
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/auth" in cookie
    assert "secure" not in cookie, "Secure is for https origins: this one is http"


def test_a_successful_login_is_audited(lab: AuthLab, http: httpx.Client) -> None:
    browser = Browser(http)
    page = browser.open(portal_url(lab))
    browser.headers = {"X-Request-Id": "test-login-ok-" + generate_token(12)}
    assert browser.login(page, "patient3", "eqlab-demo-patient3").status_code == 303
    events = lab.audit_events(browser.headers["X-Request-Id"])
    assert [e["outcome"] for e in events] == ["0"]
    assert events[0]["subtype"][0]["code"] == "login" and "patient3" in events[0]["outcomeDesc"]


def test_the_cookie_is_secure_when_the_origin_is_https(sqlite_db_url: str) -> None:
    app = make_app(sqlite_db_url)
    with TestClient(app, base_url="https://platform.example") as client:
        params = {
            "response_type": "code",
            "client_id": accounts.PORTAL_CLIENT,
            "redirect_uri": PORTAL_REDIRECT,
            "scope": "openid patient/*.rs",
            "state": "s1",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            "aud": "https://platform.example/fhir",
        }
        page = client.get("/auth/authorize", params=params)
        assert page.status_code == 200, page.text
        assert "; secure" in page.headers["set-cookie"].lower()
        assert 'action="https://platform.example/auth/login"' in page.text
