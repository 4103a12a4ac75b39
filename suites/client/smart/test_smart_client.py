"""SMART client rules (SPEC §2, client side), judged on the requests of a client run.

Credentials arrive sealed (``eqlab.clients.sealing``): equal seals mean equal values, and the
digest of a sealed code verifier is its S256 code challenge.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from eqlab.checks import ClientRequest, ClientRun, seal_facts
from suites.client.support import (
    authorize_requests,
    discovery_requests,
    endpoint_path,
    nothing_to_judge,
    preceding,
    token_requests,
)

ASSERTION_ALGS = ("ES384", "RS384")
MAX_ASSERTION_LIFETIME_S = 300


@pytest.mark.requirement("smartclient@1")
def test_the_client_discovers_the_endpoints_before_using_them(client_run: ClientRun) -> None:
    """in every scenario, SMART discovery comes before the first authorization or token request"""
    oauth = sorted(authorize_requests(client_run) + token_requests(client_run), key=lambda r: r.n)
    if not oauth:
        nothing_to_judge("authorization or token request")
    discoveries = discovery_requests(client_run)
    undiscovered = []
    for scenario in client_run.scenarios():
        first = next((r for r in oauth if r.scenario == scenario), None)
        if first and not any(d.scenario == scenario and d.n < first.n for d in discoveries):
            undiscovered.append(first)
    assert not undiscovered, (
        f"the client used the authorization server without SMART discovery first: {client_run.cite(*undiscovered)}"
    )


@pytest.mark.requirement("smartclient@2")
def test_every_authorization_request_uses_pkce_s256(client_run: ClientRun) -> None:
    """each authorization request carries a code_challenge with method S256"""
    requests = authorize_requests(client_run)
    if not requests:
        nothing_to_judge("authorization request")
    bad = [r for r in requests if not r.param("code_challenge") or r.param("code_challenge_method") != "S256"]
    assert not bad, (
        "authorization requests without PKCE S256 (code_challenge_method "
        f"{sorted({str(r.param('code_challenge_method')) for r in bad})}): {client_run.cite(*bad)}"
    )


@pytest.mark.requirement("smartclient@3")
def test_each_flow_has_its_own_verifier_matching_its_challenge(client_run: ClientRun) -> None:
    """the code_verifier is 43–128 characters, matches the challenge by S256, and is never reused"""
    redeemed = token_requests(client_run, "authorization_code")
    if not redeemed:
        nothing_to_judge("authorization-code token request")
    authorizations = authorize_requests(client_run)
    problems: list[tuple[ClientRequest, str]] = []
    for request in redeemed:
        facts = seal_facts(request.param("code_verifier") or "")
        if facts is None:
            problems.append((request, "no code_verifier"))
            continue
        digest, length = facts
        if not 43 <= length <= 128:
            problems.append((request, f"a verifier of {length} characters"))
        authorization = preceding(request, authorizations)
        if authorization is not None and authorization.param("code_challenge") != digest:
            problems.append((request, f"a verifier whose S256 is not the challenge of #{authorization.n}"))
    reused = [v for v, n in Counter(r.param("code_verifier") for r in redeemed).items() if v and n > 1]
    problems += [
        (r, "a verifier already used for another flow") for r in redeemed if r.param("code_verifier") in reused
    ]
    assert not problems, "; ".join(f"{why}: {client_run.cite(r)}" for r, why in problems)


@pytest.mark.requirement("smartclient@4")
def test_every_authorization_request_has_a_fresh_state(client_run: ClientRun) -> None:
    """each authorization request carries a state, and no state is used twice"""
    requests = authorize_requests(client_run)
    if not requests:
        nothing_to_judge("authorization request")
    missing = [r for r in requests if not r.param("state")]
    assert not missing, f"authorization requests without state: {client_run.cite(*missing)}"
    counts = Counter(r.param("state") for r in requests)
    reused = [r for r in requests if counts[r.param("state")] > 1]
    assert not reused, f"the same state value in several authorization requests: {client_run.cite(*reused)}"


@pytest.mark.requirement("smartclient@5")
def test_the_redirect_uri_is_exactly_a_registered_one(client_run: ClientRun) -> None:
    """authorization and token requests name a registered redirect URI, character for character"""
    registered = client_run.registration.redirect_uris
    if not registered:
        pytest.skip("the plan registers no redirect URI for the client: nothing to compare with")
    requests = authorize_requests(client_run) + token_requests(client_run, "authorization_code")
    if not requests:
        nothing_to_judge("authorization request")
    bad = [r for r in requests if r.param("redirect_uri") not in registered]
    shown = sorted({str(r.param("redirect_uri")) for r in bad})
    assert not bad, (
        f"redirect_uri {shown} is not one of the registered {list(registered)} (exact match): {client_run.cite(*bad)}"
    )


@pytest.mark.requirement("smartclient@6")
def test_the_client_asks_only_for_registered_scopes(client_run: ClientRun) -> None:
    """every scope asked for, in authorization and token requests, is registered for the client"""
    registered = set(client_run.registration.scopes)
    if not registered:
        pytest.skip("the plan registers no scopes for the client: nothing to compare with")
    asking = [r for r in authorize_requests(client_run) + token_requests(client_run) if r.param("scope")]
    if not asking:
        nothing_to_judge("request asking for scopes")
    extra = {r.n: sorted(set((r.param("scope") or "").split()) - registered) for r in asking}
    bad = [r for r in asking if extra[r.n]]
    assert not bad, "; ".join(f"unregistered scopes {extra[r.n]}: {client_run.cite(r)}" for r in bad)


@pytest.mark.requirement("smartclient@7")
def test_client_assertions_are_short_lived_single_use_and_for_the_token_endpoint(client_run: ClientRun) -> None:
    """each client assertion: ES384/RS384, aud = the token endpoint, exp at most 5 minutes ahead, jti unique"""
    asserted = [r for r in token_requests(client_run) if r.param("client_assertion")]
    if not asserted:
        nothing_to_judge("token request with a client assertion")
    problems: list[tuple[ClientRequest, str]] = []
    decoded = {r.n: json.loads(r.param("client_assertion") or "{}") for r in asserted}
    for request in asserted:
        problems += [(request, why) for why in _assertion_problems(request, decoded[request.n])]
    jtis = Counter(d.get("claims", {}).get("jti") for d in decoded.values())
    problems += [
        (r, f"jti {decoded[r.n]['claims']['jti']!r} used before")
        for r in asserted
        if jtis[decoded[r.n].get("claims", {}).get("jti")] > 1 and decoded[r.n].get("claims", {}).get("jti")
    ]
    assert not problems, "; ".join(f"{why}: {client_run.cite(r)}" for r, why in problems)


def _assertion_problems(request: ClientRequest, assertion: dict[str, Any]) -> list[str]:
    if "claims" not in assertion:
        return ["a client assertion that is not a JWT"]
    header, claims = assertion["header"], assertion["claims"]
    problems = []
    if header.get("alg") not in ASSERTION_ALGS:
        problems.append(f"signed {header.get('alg')}, not {' or '.join(ASSERTION_ALGS)}")
    called = request.exchange.url.split("?")[0] if request.exchange else None
    audience = claims.get("aud")
    if called and called not in (audience if isinstance(audience, list) else [audience]):
        problems.append(f"aud {audience!r} is not the token endpoint {called}")
    if not claims.get("jti"):
        problems.append("no jti")
    exp, iat = claims.get("exp"), claims.get("iat")
    issued = iat if isinstance(iat, int | float) else _arrival(request)
    if not isinstance(exp, int | float):
        problems.append("no exp")
    elif issued is not None and exp - issued > MAX_ASSERTION_LIFETIME_S:
        problems.append(f"exp {exp - issued:.0f} s after it was issued (at most {MAX_ASSERTION_LIFETIME_S})")
    return problems


def _arrival(request: ClientRequest) -> float | None:
    return datetime.fromisoformat(request.exchange.started).timestamp() if request.exchange else None


@pytest.mark.requirement("smartclient@8")
def test_a_rotated_refresh_token_is_never_sent_again(client_run: ClientRun) -> None:
    """each refresh token is used once: after rotation the client sends the new one"""
    refreshes = token_requests(client_run, "refresh_token")
    if not refreshes:
        nothing_to_judge("refresh request")
    counts = Counter(r.param("refresh_token") for r in refreshes)
    reused = [r for r in refreshes if counts[r.param("refresh_token")] > 1]
    assert not reused, f"the same refresh token sent again after it was used: {client_run.cite(*reused)}"


@pytest.mark.requirement("smartclient@9")
def test_access_tokens_travel_only_in_the_authorization_header(client_run: ClientRun) -> None:
    """no access token in a query string or a form body"""
    issued = {
        r.response_json["access_token"]
        for r in token_requests(client_run)
        if isinstance(r.response_json, dict) and isinstance(r.response_json.get("access_token"), str)
    }
    if not issued:
        nothing_to_judge("access token issued")
    allowed_forms = {endpoint_path(client_run, "revoke"), endpoint_path(client_run, "introspect")}
    leaking = [
        r
        for r in client_run.requests
        if r.param("access_token")
        or any(value in issued for _, value in r.query)
        or (r.form and not _matches_any(r.path, allowed_forms) and any(value in issued for _, value in r.form))
    ]
    assert not leaking, f"an access token outside the Authorization header: {client_run.cite(*leaking)}"


def _matches_any(path: str, patterns: set[str]) -> bool:
    return any(re.fullmatch(p, path) for p in patterns)


@pytest.mark.requirement("smartclient@10")
def test_after_invalid_token_the_client_renews_and_retries_once(client_run: ClientRun) -> None:
    """a 401 invalid_token is followed by a new token and at most one retry of the refused request"""
    refused = [
        r
        for r in client_run.requests
        if r.status == 401 and "invalid_token" in r.response_headers.get("www-authenticate", "")
    ]
    if not refused:
        nothing_to_judge("401 invalid_token answer")
    problems: list[tuple[ClientRequest, str]] = []
    tokens = token_requests(client_run)
    for first in refused:
        retries = [
            r
            for r in client_run.where(first.method)
            if r.scenario == first.scenario and r.path == first.path and r.n > first.n
        ]
        if len(retries) > 1:
            problems.append((first, f"retried {len(retries)} times after the 401 (at most once)"))
        if retries and not any(first.n < t.n < retries[0].n and t.scenario == first.scenario for t in tokens):
            problems.append((retries[0], "retried without getting a new token first"))
    assert not problems, "; ".join(f"{why}: {client_run.cite(r)}" for r, why in problems)
