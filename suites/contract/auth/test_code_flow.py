"""The authorization code grant with PKCE, and what an attacker tries with codes (auth@4-9, auth@11).

Each check signs the plan's patient in with authorization request parameters of its own and then
makes the token requests itself, as the plan's login client would (client_id for a public client,
HTTP Basic for a confidential one).
"""

from __future__ import annotations

import secrets

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import (
    PATIENT_SCOPE,
    Tokens,
    assert_invalid_token,
    assert_oauth_refused,
    bearer,
    location,
    pkce_pair,
    redeem,
    redirect_params,
    refresh,
    s256,
    sign_in,
    sign_in_code,
)
from suites.contract.fhir_toolkit import body_of, shown


@pytest.mark.requirement("auth@4")
def test_code_flow_issues_usable_tokens(
    auth_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens
) -> None:
    """a signed-in patient's code, redeemed with its verifier, gives tokens the FHIR API accepts"""
    verifier, challenge = pkce_pair()
    state = f"eqlab-{secrets.token_hex(8)}"
    back = sign_in(auth_client, tokens, {"code_challenge": challenge, "scope": PATIENT_SCOPE, "state": state})
    params = redirect_params(back)
    redirect_uri = tokens.config.login_client_for("patient").redirect_uri
    assert location(back).startswith(redirect_uri) and params.get("code"), (
        f"after sign-in the browser was sent to {location(back) or shown(back)}; expected {redirect_uri} with a code"
    )
    assert params.get("state") == state, f"the redirect carries state {params.get('state')!r}; expected {state!r}"
    response = redeem(auth_client, tokens, params["code"], verifier)
    assert response.status_code == 200, f"redeeming the code with its verifier answered {shown(response)}"
    assert "no-store" in response.headers.get("cache-control", ""), (
        f"the token response has Cache-Control {response.headers.get('cache-control')!r}; "
        "expected no-store (RFC 6749 §5.1)"
    )
    body = body_of(response, "the token response")
    problems = [
        f"{name} is {body.get(name)!r}"
        for name, ok in (
            ("access_token", isinstance(body.get("access_token"), str) and body["access_token"]),
            ("token_type", str(body.get("token_type", "")).lower() == "bearer"),
            ("expires_in", isinstance(body.get("expires_in"), int) and body["expires_in"] > 0),
            ("scope", isinstance(body.get("scope"), str) and body["scope"]),
            ("refresh_token", isinstance(body.get("refresh_token"), str) and body["refresh_token"]),
            ("patient", isinstance(body.get("patient"), str) and body["patient"]),
        )
        if not ok
    ]
    assert not problems, "the token response is incomplete: " + "; ".join(problems)
    own = anonymous_client.get(f"Patient/{body['patient']}", headers=bearer(body["access_token"]))
    assert own.status_code == 200, f"reading the own Patient with the new access token answered {shown(own)}"


@pytest.mark.requirement("auth@5")
@pytest.mark.parametrize("variant", ["plain", "no challenge"])
def test_no_code_without_an_s256_challenge(auth_client: EvidenceClient, tokens: Tokens, variant: str) -> None:
    """an authorization request with PKCE plain, or without a challenge, gets no code"""
    verifier, _ = pkce_pair()
    if variant == "plain":
        params: dict[str, str | None] = {"code_challenge": verifier, "code_challenge_method": "plain"}
    else:
        params = {"code_challenge": None, "code_challenge_method": None}
    back = sign_in(auth_client, tokens, {**params, "scope": PATIENT_SCOPE})
    code = redirect_params(back).get("code")
    if code:
        redeemed = redeem(auth_client, tokens, code, verifier)
        pytest.fail(
            f"an authorization request with {variant} PKCE was given a code (the token endpoint then answered "
            f"{redeemed.status_code} to the challenge as verifier); expected error=invalid_request (RFC 7636 §4.4.1)"
        )


@pytest.mark.requirement("auth@6")
@pytest.mark.parametrize("variant", ["another verifier", "no verifier"])
def test_a_code_needs_its_own_verifier(auth_client: EvidenceClient, tokens: Tokens, variant: str) -> None:
    """a code is not redeemed with another verifier or without one"""
    _, challenge = pkce_pair()
    code = sign_in_code(auth_client, tokens, challenge)
    other = pkce_pair()[0] if variant == "another verifier" else None
    response = redeem(auth_client, tokens, code, other)
    assert_oauth_refused(response, f"redeeming a code with {variant}", "invalid_grant", "invalid_request")


@pytest.mark.requirement("auth@7")
@pytest.mark.parametrize("length", [42, 129])
def test_verifiers_outside_43_to_128_characters_are_refused(
    auth_client: EvidenceClient, tokens: Tokens, length: int
) -> None:
    """a code verifier of 42 or 129 characters is refused even though its S256 matches"""
    verifier = (secrets.token_urlsafe(128) * 2)[:length]
    code = sign_in_code(auth_client, tokens, s256(verifier))
    response = redeem(auth_client, tokens, code, verifier)
    assert_oauth_refused(
        response, f"redeeming a code with a {length}-character verifier", "invalid_grant", "invalid_request"
    )


@pytest.mark.requirement("auth@7")
@pytest.mark.parametrize("length", [43, 128])
def test_verifiers_of_43_and_128_characters_are_accepted(
    auth_client: EvidenceClient, tokens: Tokens, length: int
) -> None:
    """code verifiers of exactly 43 and 128 characters are accepted"""
    verifier, challenge = pkce_pair(length)
    response = redeem(auth_client, tokens, sign_in_code(auth_client, tokens, challenge), verifier)
    assert response.status_code == 200, (
        f"redeeming a code with a {length}-character verifier answered {shown(response)}"
    )


@pytest.mark.requirement("auth@8")
def test_a_code_is_redeemed_once(auth_client: EvidenceClient, tokens: Tokens) -> None:
    """a second presentation of a code is refused with invalid_grant"""
    verifier, challenge = pkce_pair()
    code = sign_in_code(auth_client, tokens, challenge)
    first = redeem(auth_client, tokens, code, verifier)
    assert first.status_code == 200, f"redeeming a fresh code answered {shown(first)}"
    second = redeem(auth_client, tokens, code, verifier)
    assert_oauth_refused(second, "presenting the same code a second time", "invalid_grant")


@pytest.mark.requirement("auth@9")
def test_a_replayed_code_revokes_its_tokens(
    auth_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens
) -> None:
    """after a code's replay, the tokens of its first redemption no longer work"""
    verifier, challenge = pkce_pair()
    code = sign_in_code(auth_client, tokens, challenge)
    first = redeem(auth_client, tokens, code, verifier)
    assert first.status_code == 200, f"redeeming a fresh code answered {shown(first)}"
    issued = body_of(first, "the token response")
    redeem(auth_client, tokens, code, verifier)
    response = anonymous_client.get(f"Patient/{issued.get('patient')}", headers=bearer(str(issued["access_token"])))
    assert_invalid_token(response, "the access token of a code that was then replayed")
    again = refresh(auth_client, tokens, str(issued.get("refresh_token")))
    assert_oauth_refused(again, "the refresh token of a code that was then replayed", "invalid_grant")


@pytest.mark.requirement("auth@11")
@pytest.mark.parametrize("variant", ["another", "none"])
def test_the_token_request_repeats_the_redirect_uri(auth_client: EvidenceClient, tokens: Tokens, variant: str) -> None:
    """a token request with another redirect_uri, or none, than the authorization request's is refused"""
    verifier, challenge = pkce_pair()
    code = sign_in_code(auth_client, tokens, challenge)
    changed = f"{tokens.config.login_client_for('patient').redirect_uri}/other" if variant == "another" else None
    response = redeem(auth_client, tokens, code, verifier, redirect_uri=changed)
    assert_oauth_refused(response, f"redeeming a code with {variant} redirect_uri", "invalid_grant", "invalid_request")
