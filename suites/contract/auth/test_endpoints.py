"""Introspection (RFC 7662), revocation (RFC 7009) and userinfo (OpenID Connect) (auth@33-35).

The plan's system client introspects and revokes its own tokens (private_key_jwt); the login
client revokes its user's refresh token; userinfo is asked with the patient's token.
"""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import (
    JSON,
    Tokens,
    alg_none,
    as_login_client,
    as_system_client,
    assert_oauth_refused,
    bearer,
    challenge,
    claims_of,
    refresh,
)
from suites.contract.fhir_toolkit import body_of, shown


def _introspect(auth_client: EvidenceClient, tokens: Tokens, token: str) -> JSON:
    response = as_system_client(auth_client, tokens, "introspection_endpoint", {"token": token})
    assert response.status_code == 200, f"introspection by the system client answered {shown(response)}; expected 200"
    return body_of(response, "the introspection answer")


def _revoke_as_system(auth_client: EvidenceClient, tokens: Tokens, token: str) -> None:
    response = as_system_client(auth_client, tokens, "revocation_endpoint", {"token": token})
    assert response.status_code == 200, f"revoking the system client's own token answered {shown(response)}"


@pytest.mark.requirement("auth@33")
def test_introspection_describes_an_active_token(auth_client: EvidenceClient, tokens: Tokens) -> None:
    """introspecting a valid access token answers active true with scope, client_id, sub and exp"""
    token = tokens.system("system/Patient.rs", fresh=True)
    answer = _introspect(auth_client, tokens, token)
    claims = claims_of(token)
    assert answer.get("active") is True, f"a valid access token was introspected as {answer}"
    different = [n for n in ("scope", "client_id", "sub", "exp") if answer.get(n) != claims.get(n)]
    assert not different, "the introspection answer differs from the token in " + ", ".join(
        f"{n} ({answer.get(n)!r} vs {claims.get(n)!r})" for n in different
    )


@pytest.mark.requirement("auth@33")
@pytest.mark.parametrize("variant", ["revoked", "unknown", "forged"])
def test_introspection_says_inactive_and_nothing_more(
    auth_client: EvidenceClient, tokens: Tokens, variant: str
) -> None:
    """introspecting a revoked, unknown or forged token answers {"active": false} only"""
    if variant == "revoked":
        token = tokens.system("system/Patient.rs", fresh=True)
        _revoke_as_system(auth_client, tokens, token)
    else:
        token = "eqlab-no-such-token" if variant == "unknown" else alg_none(tokens.system())
    answer = _introspect(auth_client, tokens, token)
    assert answer == {"active": False}, f"a {variant} token was introspected as {answer}; expected {{'active': false}}"


@pytest.mark.requirement("auth@33")
def test_introspection_needs_an_authenticated_client(auth_client: EvidenceClient, tokens: Tokens) -> None:
    """an introspection request without client authentication is refused with 401"""
    response = auth_client.post(str(tokens.smart["introspection_endpoint"]), data={"token": tokens.system()})
    assert response.status_code == 401, (
        f"introspection without client authentication answered {shown(response)}; expected 401 (RFC 7662 §2.1)"
    )


@pytest.mark.requirement("auth@34")
def test_a_revoked_access_token_is_inactive(
    auth_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens
) -> None:
    """a revoked access token is refused by the FHIR API and introspected as inactive"""
    token = tokens.system("system/Patient.rs", fresh=True)
    assert _introspect(auth_client, tokens, token).get("active") is True, "a fresh token is not active"
    _revoke_as_system(auth_client, tokens, token)
    assert _introspect(auth_client, tokens, token).get("active") is False, "a revoked token is still active"
    response = anonymous_client.get("Patient", params={"_count": "1"}, headers=bearer(token))
    assert response.status_code == 401, f"the FHIR API answered {shown(response)} to a revoked token; expected 401"


@pytest.mark.requirement("auth@34")
def test_a_revoked_refresh_token_cannot_refresh(auth_client: EvidenceClient, tokens: Tokens) -> None:
    """a refresh token revoked by its client no longer gives tokens"""
    grant = tokens.user("patient", fresh=True)
    assert grant.refresh_token, "the patient's grant came without a refresh token (offline_access)"
    form: dict[str, str | None] = {"token": grant.refresh_token, "token_type_hint": "refresh_token"}
    revoked = as_login_client(auth_client, tokens, "revocation_endpoint", form)
    assert revoked.status_code == 200, f"revoking the login client's refresh token answered {shown(revoked)}"
    assert_oauth_refused(refresh(auth_client, tokens, grant.refresh_token), "a revoked refresh token", "invalid_grant")


@pytest.mark.requirement("auth@34")
def test_revoking_an_unknown_token_is_not_an_error(auth_client: EvidenceClient, tokens: Tokens) -> None:
    """revoking a token the server does not know answers 200 (RFC 7009 §2.2)"""
    response = as_system_client(auth_client, tokens, "revocation_endpoint", {"token": "eqlab-no-such-token"})
    assert response.status_code == 200, f"revoking an unknown token answered {shown(response)}; expected 200"


def _userinfo_url(auth_client: EvidenceClient, tokens: Tokens) -> str:
    url = tokens.smart.get("userinfo_endpoint")
    if not isinstance(url, str):
        issuer = str(tokens.smart["issuer"]).rstrip("/")
        metadata = body_of(auth_client.get(f"{issuer}/.well-known/openid-configuration"), "the OpenID metadata")
        url = metadata.get("userinfo_endpoint")
    assert isinstance(url, str), "neither discovery document names a userinfo_endpoint"
    return url


@pytest.mark.requirement("auth@35")
def test_userinfo_answers_the_users_claims(auth_client: EvidenceClient, tokens: Tokens) -> None:
    """userinfo with the patient's token answers the user's claims, sub as in the ID token"""
    issued = tokens.user("patient")
    response = auth_client.get(_userinfo_url(auth_client, tokens), headers=bearer(issued.access_token))
    assert response.status_code == 200, f"userinfo with the patient's token answered {shown(response)}"
    answer = body_of(response, "the userinfo answer")
    assert isinstance(answer.get("sub"), str) and answer["sub"], f"the userinfo answer has no sub: {sorted(answer)}"
    if issued.id_token:
        expected = claims_of(issued.id_token, "the ID token").get("sub")
        assert answer["sub"] == expected, f"userinfo says sub {answer['sub']!r}; the ID token says {expected!r}"


@pytest.mark.requirement("auth@35")
@pytest.mark.parametrize("variant", ["no token", "forged token"])
def test_userinfo_refuses_without_a_valid_token(auth_client: EvidenceClient, tokens: Tokens, variant: str) -> None:
    """userinfo without a valid token answers 401 with a Bearer challenge"""
    headers = bearer(alg_none(tokens.user("patient").access_token)) if variant == "forged token" else {}
    response = auth_client.get(_userinfo_url(auth_client, tokens), headers=headers)
    assert response.status_code == 401 and challenge(response) is not None, (
        f"userinfo with {variant} answered {shown(response)} "
        f"(WWW-Authenticate {response.headers.get('www-authenticate')!r}); expected 401 with a Bearer challenge"
    )
