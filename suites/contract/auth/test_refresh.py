"""Refresh tokens: rotation, reuse detection, no scope escalation (auth@12-14).

Every check works on a grant of its own (a fresh sign-in of the plan's patient with
offline_access), since rotating or revoking a grant is what it checks.
"""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient, TokenSet
from suites.contract.auth.support import (
    JSON,
    Tokens,
    assert_invalid_token,
    assert_oauth_refused,
    bearer,
    patient_grant,
    refresh,
)
from suites.contract.fhir_toolkit import body_of, shown


def _rotated(auth_client: EvidenceClient, tokens: Tokens, grant: TokenSet) -> JSON:
    response = refresh(auth_client, tokens, grant.refresh_token)
    assert response.status_code == 200, f"refreshing a fresh grant answered {shown(response)}; expected new tokens"
    return body_of(response, "the refresh response")


@pytest.mark.requirement("auth@12")
def test_refresh_tokens_rotate(auth_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens) -> None:
    """each refresh gives a new refresh token, and the used one is refused afterwards"""
    grant = patient_grant(tokens)
    rotated = _rotated(auth_client, tokens, grant)
    successor = rotated.get("refresh_token")
    assert isinstance(successor, str) and successor, "the refresh answered no new refresh_token (no rotation)"
    assert successor != grant.refresh_token, "the refresh answered the same refresh token again (no rotation)"
    fresh = anonymous_client.get(f"Patient/{grant.patient}", headers=bearer(str(rotated.get("access_token"))))
    assert fresh.status_code == 200, f"the refreshed access token was refused by the FHIR API: {shown(fresh)}"
    again = refresh(auth_client, tokens, grant.refresh_token)
    assert_oauth_refused(again, "using a refresh token a second time (after it rotated)", "invalid_grant")


@pytest.mark.requirement("auth@13")
def test_a_reused_refresh_token_revokes_its_grant(
    auth_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens
) -> None:
    """presenting a used refresh token revokes the newest refresh token and the grant's access tokens"""
    grant = patient_grant(tokens)
    rotated = _rotated(auth_client, tokens, grant)
    refresh(auth_client, tokens, grant.refresh_token)  # the replay (itself refused: auth@12)
    newest = refresh(auth_client, tokens, str(rotated.get("refresh_token")))
    assert_oauth_refused(
        newest, "the newest refresh token of a grant whose older refresh token was replayed", "invalid_grant"
    )
    response = anonymous_client.get(f"Patient/{grant.patient}", headers=bearer(str(rotated.get("access_token"))))
    assert_invalid_token(response, "an access token of a grant whose used refresh token was replayed")


@pytest.mark.requirement("auth@14")
def test_a_refresh_cannot_widen_the_scope(auth_client: EvidenceClient, tokens: Tokens) -> None:
    """a refresh asking for more than the original grant is refused with invalid_scope"""
    grant = patient_grant(tokens)
    granted = grant.scope or ""
    wider = " ".join([*granted.split(), "patient/*.cruds"])
    response = refresh(auth_client, tokens, grant.refresh_token, scope=wider)
    if response.status_code == 200:
        widened = body_of(response, "the refresh response").get("scope")
        pytest.fail(
            f"a refresh of a grant of scope {granted!r} asking for {wider!r} was answered with scope {widened!r}; "
            "expected invalid_scope (RFC 6749 §6)"
        )
    assert_oauth_refused(response, "a refresh asking for more scope than granted", "invalid_scope")
