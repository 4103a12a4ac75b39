"""Client authentication at the token endpoint: private_key_jwt for systems, client_secret_basic
for confidential web apps (auth@15-18).

The lab signs client assertions with the plan's system client key (``tokens.client_assertion``) and
bends them the way an attacker or a careless client would: another algorithm, another key, a jti
used before, a lifetime beyond five minutes.
"""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import (
    Tokens,
    alg_none,
    assert_oauth_refused,
    challenge,
    client_credentials,
    hs256_with,
    jwt_parts,
    oauth_error,
)
from suites.contract.fhir_toolkit import body_of, shown

CLIENT_REFUSED = (400, 401)  # RFC 6749 §5.2: invalid_client is 401, or 400 when no Authorization header was sent


def _unregistered_key_assertion(tokens: Tokens) -> str:
    """The claims of a good assertion, signed by a key the client never registered (its kid kept)."""
    header, claims = jwt_parts(tokens.client_assertion(), "the client assertion")
    key = ECKey.generate_key("P-384")
    return jwt.encode({"alg": "ES384", "kid": header.get("kid", "unregistered")}, claims, key, algorithms=["ES384"])


@pytest.mark.requirement("auth@15")
def test_a_system_client_gets_a_token_with_its_signed_assertion(auth_client: EvidenceClient, tokens: Tokens) -> None:
    """client credentials with an ES384/RS384 assertion of the plan's system client give an access token"""
    assertion = tokens.client_assertion()
    alg = jwt_parts(assertion, "the client assertion")[0].get("alg")
    response = client_credentials(auth_client, tokens, assertion)
    assert response.status_code == 200, (
        f"the client credentials grant with a {alg} assertion answered {shown(response)}"
    )
    body = body_of(response, "the token response")
    assert isinstance(body.get("access_token"), str) and str(body.get("token_type", "")).lower() == "bearer", (
        f"the token response lacks a Bearer access_token: {sorted(body)}"
    )


@pytest.mark.requirement("auth@15")
@pytest.mark.parametrize("variant", ["alg none", "HS256", "unregistered key"])
def test_assertions_not_signed_by_a_registered_key_are_refused(
    auth_client: EvidenceClient, tokens: Tokens, variant: str
) -> None:
    """a client assertion unsigned, HMAC-signed or signed by an unregistered key is refused"""
    if variant == "alg none":
        forged = alg_none(tokens.client_assertion())
    elif variant == "HS256":
        good = tokens.client_assertion()
        forged = hs256_with(good, str(jwt_parts(good)[1].get("iss", "")).encode())
    else:
        forged = _unregistered_key_assertion(tokens)
    response = client_credentials(auth_client, tokens, forged)
    assert_oauth_refused(response, f"a client assertion ({variant})", "invalid_client", statuses=CLIENT_REFUSED)


@pytest.mark.requirement("auth@16")
@pytest.mark.parametrize("variant", ["same assertion", "same jti"])
def test_a_jti_is_accepted_once(auth_client: EvidenceClient, tokens: Tokens, variant: str) -> None:
    """an assertion sent again, or a new one with a jti used before, is refused"""
    first = tokens.client_assertion()
    accepted = client_credentials(auth_client, tokens, first)
    assert accepted.status_code == 200, f"a fresh client assertion was refused: {shown(accepted)}"
    jti = jwt_parts(first, "the client assertion")[1].get("jti")
    again = first if variant == "same assertion" else tokens.client_assertion(jti=jti)
    response = client_credentials(auth_client, tokens, again)
    assert_oauth_refused(
        response, f"a replayed client assertion ({variant})", "invalid_client", statuses=CLIENT_REFUSED
    )


@pytest.mark.requirement("auth@17")
@pytest.mark.parametrize("variant", ["exp 15 minutes ahead", "expired"])
def test_assertion_lifetimes_are_bounded(auth_client: EvidenceClient, tokens: Tokens, variant: str) -> None:
    """an assertion whose exp is more than five minutes ahead, or past, is refused"""
    now = int(time.time())
    bent = (
        tokens.client_assertion(exp=now + 900)
        if variant != "expired"
        else tokens.client_assertion(iat=now - 900, exp=now - 600)
    )
    response = client_credentials(auth_client, tokens, bent)
    assert_oauth_refused(response, f"a client assertion ({variant})", "invalid_client", statuses=CLIENT_REFUSED)


@pytest.mark.requirement("auth@18")
@pytest.mark.parametrize("who", ["unknown client", "system client", "login client"])
def test_wrong_basic_credentials_are_refused_with_401(auth_client: EvidenceClient, tokens: Tokens, who: str) -> None:
    """HTTP Basic client credentials that are wrong are refused with 401 invalid_client and a challenge"""
    if who == "unknown client":
        client_id = "eqlab-no-such-client"
    elif who == "system client":
        client_id = str(jwt_parts(tokens.client_assertion())[1].get("iss"))
    else:
        client_id = tokens.config.login_client_for("patient").client_id
    response = auth_client.post(
        tokens.smart["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        auth=(client_id, "eqlab-wrong-secret"),
    )
    assert response.status_code == 401 and oauth_error(response) == "invalid_client", (
        f"a token request with a wrong HTTP Basic secret for the {who} answered {shown(response)}; "
        "expected 401 invalid_client (RFC 6749 §5.2)"
    )
    assert response.headers.get("www-authenticate") and challenge(response, "bearer") is None, (
        f"the 401 carries WWW-Authenticate {response.headers.get('www-authenticate')!r}; expected the client "
        "authentication scheme's challenge (Basic), as RFC 6749 §5.2 requires"
    )
