"""Introspection (RFC 7662), revocation (RFC 7009) and userinfo, for live, expired and revoked tokens."""

from __future__ import annotations

import base64
import time

import httpx
from sqlalchemy import Connection, insert

from reference_impl.auth import tokens
from reference_impl.auth.schema import issued_tokens
from reference_impl.auth.service import audience_for, issuer_for
from reference_impl.seed import accounts
from tests.reference_impl.auth.conftest import AuthLab, new_request_id, tagged
from tests.reference_impl.auth.flows import (
    Browser,
    assertion,
    authorize_params,
    authorize_url,
    code_for,
    demo_system_key,
    pkce_pair,
    query_of,
    redeem,
)

WEBAPP = (accounts.WEBAPP_CLIENT, accounts.WEBAPP_SECRET)


def introspect(lab: AuthLab, http: httpx.Client, token: str, auth: tuple[str, str] = WEBAPP) -> dict[str, object]:
    response = http.post(lab.url("introspect"), data={"token": token}, auth=auth)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer: dict[str, object] = response.json()
    return answer


def patient_tokens(lab: AuthLab, http: httpx.Client) -> dict[str, str]:
    code, verifier, _ = code_for(lab, http)
    response = redeem(lab, http, code, verifier)
    assert response.status_code == 200, response.text
    answer: dict[str, str] = response.json()
    return answer


def revoke(lab: AuthLab, http: httpx.Client, token: str, client_id: str = accounts.PORTAL_CLIENT) -> httpx.Response:
    return http.post(lab.url("revoke"), data={"token": token, "client_id": client_id})


def expired_token(lab: AuthLab) -> str:
    """A token the server itself signed an hour and a half ago, valid for an hour."""

    def work(conn: Connection) -> str:
        claims = {
            "iss": issuer_for(lab.origin),
            "aud": audience_for(lab.origin),
            "sub": "patient1",
            "client_id": accounts.PORTAL_CLIENT,
            "scope": "patient/*.rs",
            "subject_role": "patient",
        }
        token, full = tokens.issue(lab.service.keys.active(conn), claims, 3600, now=int(time.time()) - 5400)
        conn.execute(
            insert(issued_tokens).values(
                jti=full["jti"], family=None, client_id=accounts.PORTAL_CLIENT, expires_at=full["exp"]
            )
        )
        return token

    return lab.run(work)


def test_introspection_describes_a_live_access_token(lab: AuthLab, http: httpx.Client) -> None:
    answer = introspect(lab, http, patient_tokens(lab, http)["access_token"])
    assert answer["active"] is True and answer["token_type"] == "Bearer"
    assert answer["client_id"] == accounts.PORTAL_CLIENT and answer["sub"] == answer["username"] == "patient1"
    assert answer["patient"] == "pat-0001" and answer["subject_role"] == "patient"
    assert isinstance(answer["exp"], int) and answer["exp"] > time.time()


def test_expired_revoked_and_unknown_tokens_are_inactive(lab: AuthLab, http: httpx.Client) -> None:
    assert introspect(lab, http, expired_token(lab)) == {"active": False}
    assert introspect(lab, http, "not-a-token") == {"active": False}
    assert introspect(lab, http, "rt.unknown") == {"active": False}
    live = patient_tokens(lab, http)
    assert revoke(lab, http, live["access_token"]).status_code == 200
    assert introspect(lab, http, live["access_token"]) == {"active": False}


def webapp_tokens(lab: AuthLab, http: httpx.Client) -> dict[str, str]:
    verifier, challenge = pkce_pair()
    redirect_uri = accounts.WEBAPP_REDIRECTS[0]
    params = authorize_params(lab, accounts.WEBAPP_CLIENT, redirect_uri, "offline_access patient/*.rs", challenge)
    back = Browser(http).sign_in(authorize_url(lab, params), "patient2", "eqlab-demo-patient2")
    data = {"grant_type": "authorization_code", "code": query_of(back)["code"], "code_verifier": verifier}
    response = http.post(lab.token_url, data={**data, "redirect_uri": redirect_uri}, auth=WEBAPP)
    assert response.status_code == 200, response.text
    answer: dict[str, str] = response.json()
    return answer


def test_a_refresh_token_is_introspected_by_its_own_client_only(lab: AuthLab, http: httpx.Client) -> None:
    own = introspect(lab, http, webapp_tokens(lab, http)["refresh_token"])
    assert own["active"] is True and own["token_type"] == "refresh_token" and own["sub"] == "patient2"
    assert own["scope"] == "offline_access patient/*.rs"
    assert introspect(lab, http, patient_tokens(lab, http)["refresh_token"]) == {"active": False}


def test_revoking_a_refresh_token_revokes_its_family(lab: AuthLab, http: httpx.Client) -> None:
    live = patient_tokens(lab, http)
    response = revoke(lab, http, live["refresh_token"])
    assert response.status_code == 200 and response.content == b""
    assert introspect(lab, http, live["access_token"]) == {"active": False}
    again = http.post(
        lab.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": live["refresh_token"],
            "client_id": accounts.PORTAL_CLIENT,
        },
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_revocation_answers_200_for_anything_but_touches_only_the_callers_tokens(
    lab: AuthLab, http: httpx.Client
) -> None:
    assert revoke(lab, http, "whatever").status_code == 200
    live = patient_tokens(lab, http)
    other_client = http.post(lab.url("revoke"), data={"token": live["access_token"]}, auth=WEBAPP)
    assert other_client.status_code == 200
    assert introspect(lab, http, live["access_token"])["active"] is True


def test_only_confidential_and_system_clients_may_introspect(lab: AuthLab, http: httpx.Client) -> None:
    token = patient_tokens(lab, http)["access_token"]
    attempts: list[tuple[dict[str, str], tuple[str, str] | None]] = [
        ({"token": token, "client_id": accounts.PORTAL_CLIENT}, None),
        ({"token": token}, None),
        ({"token": token}, (accounts.WEBAPP_CLIENT, "wrong")),
    ]
    for data, auth in attempts:
        rid = new_request_id()
        headers = tagged(rid)
        if auth is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        response = http.post(lab.url("introspect"), data=data, headers=headers)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
        lab.refusal_event(rid, "introspect")
    system = {
        "token": token,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(demo_system_key(), accounts.SYSTEM_CLIENT, lab.token_url),
    }
    response = http.post(lab.url("introspect"), data=system)
    assert response.status_code == 200 and response.json()["active"] is True


def test_userinfo_needs_a_valid_token_with_openid(lab: AuthLab, http: httpx.Client) -> None:
    assert http.get(lab.url("userinfo")).status_code == 401
    expired = http.get(lab.url("userinfo"), headers={"Authorization": f"Bearer {expired_token(lab)}"})
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"].startswith('Bearer realm="eqlab", error="invalid_token"')
    code, verifier, _ = code_for(lab, http, scope="patient/*.rs")
    no_openid = redeem(lab, http, code, verifier).json()["access_token"]
    forbidden = http.get(lab.url("userinfo"), headers={"Authorization": f"Bearer {no_openid}"})
    assert forbidden.status_code == 403 and "insufficient_scope" in forbidden.headers["www-authenticate"]
    with_openid = patient_tokens(lab, http)["access_token"]
    info = http.get(lab.url("userinfo"), headers={"Authorization": f"Bearer {with_openid}"})
    assert info.status_code == 200 and info.json()["sub"] == "patient1"
