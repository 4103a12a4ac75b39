"""Attacks on the grants (authorization code with PKCE, refresh token): each is refused, and leaves
exactly one AuditEvent (outcome 4)."""

from __future__ import annotations

import base64
import hashlib

import httpx

from reference_impl.seed import accounts
from tests.reference_impl.auth.conftest import AuthLab, new_request_id, tagged
from tests.reference_impl.auth.flows import code_for, introspect, pkce_pair, redeem, refused

# --- authorization codes and PKCE ------------------------------------------------------------------


def test_a_wrong_code_verifier_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    code, _, _ = code_for(lab, http)
    other_verifier, _ = pkce_pair()
    rid = new_request_id()
    refused(redeem(lab, http, code, other_verifier, rid), 400, "invalid_grant")
    assert "code_verifier" in lab.refusal_event(rid, "token")["outcomeDesc"]


def test_a_verifier_of_42_characters_is_refused_even_when_it_matches(lab: AuthLab, http: httpx.Client) -> None:
    verifier, challenge = pkce_pair(42)
    code, _, _ = code_for(lab, http, code_challenge=challenge)
    rid = new_request_id()
    refused(redeem(lab, http, code, verifier, rid), 400, "invalid_grant")
    assert "43 to 128" in lab.refusal_event(rid, "token")["outcomeDesc"]


def test_a_verifier_ending_in_a_line_break_is_refused_even_when_it_matches(lab: AuthLab, http: httpx.Client) -> None:
    verifier = pkce_pair(64)[0] + "\n"  # 65 characters, one outside the RFC 7636 alphabet
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code, _, _ = code_for(lab, http, code_challenge=challenge)
    rid = new_request_id()
    body = refused(redeem(lab, http, code, verifier, rid), 400, "invalid_grant")
    assert "43 to 128" in body["error_description"]
    assert "43 to 128" in lab.refusal_event(rid, "token")["outcomeDesc"]


def test_a_missing_verifier_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    code, _, _ = code_for(lab, http)
    rid = new_request_id()
    body = refused(redeem(lab, http, code, None, rid), 400, "invalid_grant")
    assert body["error_description"] == "code_verifier is required (PKCE)"
    assert "code_verifier is required" in lab.refusal_event(rid, "token")["outcomeDesc"]


def test_a_code_burnt_by_a_wrong_verifier_cannot_be_retried(lab: AuthLab, http: httpx.Client) -> None:
    code, verifier, _ = code_for(lab, http)
    first = refused(redeem(lab, http, code, pkce_pair()[0]), 400, "invalid_grant")
    assert first["error_description"] == "code_verifier does not match the code_challenge"
    retry = refused(redeem(lab, http, code, verifier), 400, "invalid_grant")
    assert retry["error_description"] == "the authorization code was already used", "the right verifier comes too late"


def test_a_reused_code_is_refused_and_revokes_what_it_gave(lab: AuthLab, http: httpx.Client) -> None:
    code, verifier, _ = code_for(lab, http)
    first = redeem(lab, http, code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert introspect(lab, http, tokens["access_token"])["active"] is True
    rid = new_request_id()
    refused(redeem(lab, http, code, verifier, rid), 400, "invalid_grant")
    assert "already used" in lab.refusal_event(rid, "token")["outcomeDesc"]
    assert introspect(lab, http, tokens["access_token"]) == {"active": False}
    refresh = http.post(
        lab.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": accounts.PORTAL_CLIENT,
        },
    )
    refused(refresh, 400, "invalid_grant")


def test_the_redirect_uri_must_be_the_one_of_the_code(lab: AuthLab, http: httpx.Client) -> None:
    code, verifier, _ = code_for(lab, http)
    rid = new_request_id()
    body = refused(
        redeem(lab, http, code, verifier, rid, redirect_uri=accounts.PORTAL_REDIRECTS[1]), 400, "invalid_grant"
    )
    assert body["error_description"] == "redirect_uri differs from the one of the authorization request"
    assert "redirect_uri differs" in lab.refusal_event(rid, "token")["outcomeDesc"]


def test_a_code_is_for_its_own_client_only(lab: AuthLab, http: httpx.Client) -> None:
    code, verifier, _ = code_for(lab, http)
    rid = new_request_id()
    response = http.post(
        lab.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": accounts.PORTAL_REDIRECTS[0],
        },
        auth=(accounts.WEBAPP_CLIENT, accounts.WEBAPP_SECRET),
        headers=tagged(rid),
    )
    body = refused(response, 400, "invalid_grant")
    assert body["error_description"] == "the authorization code was issued to another client"
    assert "issued to another client" in lab.refusal_event(rid, "token")["outcomeDesc"]


# --- refresh tokens --------------------------------------------------------------------------------


def refresh_with(lab: AuthLab, http: httpx.Client, token: str, rid: str = "", **extra: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": accounts.PORTAL_CLIENT, **extra}
    return http.post(lab.token_url, data=data, headers=tagged(rid) if rid else {})


def test_widening_the_scope_on_refresh_is_refused(lab: AuthLab, http: httpx.Client) -> None:
    code, verifier, _ = code_for(lab, http, scope="openid offline_access patient/Observation.rs")
    tokens = redeem(lab, http, code, verifier).json()
    rid = new_request_id()
    refused(refresh_with(lab, http, tokens["refresh_token"], rid, scope="patient/*.cruds"), 400, "invalid_scope")
    assert "exceeds" in lab.refusal_event(rid, "token")["outcomeDesc"]
    # The attempt cost the holder nothing: the refresh token still works, with its own scope.
    assert (
        refresh_with(lab, http, tokens["refresh_token"]).json()["scope"]
        == "openid offline_access patient/Observation.rs"
    )


def test_a_reused_refresh_token_revokes_its_whole_family(lab: AuthLab, http: httpx.Client) -> None:
    code, verifier, _ = code_for(lab, http)
    first = redeem(lab, http, code, verifier).json()
    second = refresh_with(lab, http, first["refresh_token"]).json()
    rid = new_request_id()
    refused(refresh_with(lab, http, first["refresh_token"], rid), 400, "invalid_grant")
    assert "already used" in lab.refusal_event(rid, "token")["outcomeDesc"]
    refused(refresh_with(lab, http, second["refresh_token"]), 400, "invalid_grant")
    assert introspect(lab, http, second["access_token"]) == {"active": False}
    assert introspect(lab, http, first["access_token"]) == {"active": False}
