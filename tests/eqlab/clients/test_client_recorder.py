"""The recording proxy a client under test talks to, in front of the real reference implementation.

What a client sends reaches the platform unchanged and comes back unchanged; the journal keeps it in
order, tagged by scenario and step, with credentials sealed (comparable, unusable) and the evidence
redacted; injected failures answer in the platform's place; nothing a client or platform does can
make the proxy hold unbounded data or hang.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import ECKey

from eqlab.clients import sealing
from eqlab.clients.journal import Journal
from eqlab.clients.matchers import Injection, RequestMatcher
from eqlab.clients.proxy import MAX_JUDGED_JSON, MAX_REQUEST_BODY, RecordingProxy, serve_on_loopback
from tests.eqlab.conftest import DemoReference


def _origin(base_url: str) -> str:
    return base_url.removesuffix("/fhir")


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def recorder(demo_reference: DemoReference, journal: Journal) -> Iterator[str]:
    with serve_on_loopback(RecordingProxy(_origin(demo_reference.base_url), journal)) as origin:
        yield origin


def test_the_client_reaches_the_platform_through_the_proxy_and_never_leaves_it(recorder: str, journal: Journal) -> None:
    journal.enter("sign-in", "discover")
    discovery = httpx.get(f"{recorder}/fhir/.well-known/smart-configuration", timeout=10)
    journal.enter("sign-in", "read")
    metadata = httpx.get(f"{recorder}/fhir/metadata", headers={"accept": "application/fhir+json"}, timeout=30)

    assert discovery.status_code == 200 and metadata.status_code == 200
    assert discovery.json()["token_endpoint"].startswith(f"{recorder}/"), "the platform saw the proxy's Host"
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    seen = journal.requests()
    assert [(r.n, r.scenario, r.step, r.method, r.path, r.status) for r in seen] == [
        (1, "sign-in", "discover", "GET", "/fhir/.well-known/smart-configuration", 200),
        (2, "sign-in", "read", "GET", "/fhir/metadata", 200),
    ]
    assert seen[1].headers["accept"] == "application/fhir+json"
    assert seen[1].exchange is not None and seen[1].exchange.id == "x2" and seen[1].exchange.status == 200


def test_credentials_are_sealed_for_the_checks_and_redacted_in_the_evidence(recorder: str, journal: Journal) -> None:
    verifier, code, token = secrets.token_urlsafe(48), secrets.token_urlsafe(24), secrets.token_urlsafe(32)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "client_id": "app"}
    httpx.post(f"{recorder}/auth/token", data=form, timeout=10)
    httpx.get(f"{recorder}/fhir/Patient", params={"access_token": token, "code": "1234-5"}, timeout=10)

    posted, searched = journal.requests()
    assert posted.param("code_verifier") == sealing.seal(verifier)
    assert sealing.seal_facts(sealing.seal(verifier)) == (sealing.s256(verifier), len(verifier))
    assert posted.param("code") == sealing.seal(code) and posted.param("client_id") == "app"
    assert searched.param("access_token") == sealing.seal(token), "a token in the query is still visible as one"
    assert searched.param("code") == "1234-5", "code is a FHIR search parameter outside an OAuth exchange"
    dumped = "".join(r.model_dump_json() for r in journal.requests())
    for value in (verifier, code, token):
        assert value not in dumped
    assert posted.exchange is not None and posted.exchange.request.body_excerpt is not None
    assert "code_verifier=%5BREDACTED%5D" in posted.exchange.request.body_excerpt
    assert posted.exchange.url == f"{recorder}/auth/token", "the evidence shows the URL the client called"


def test_a_redirect_that_carries_an_authorization_code_is_sealed() -> None:
    code = secrets.token_urlsafe(24)
    sealed = sealing.headers({"Location": f"http://127.0.0.1:8402/callback?code={code}&state=abc"})
    assert code not in sealed["location"]
    address, _, back = sealed["location"].partition("?")
    assert address == "http://127.0.0.1:8402/callback"
    assert urllib.parse.parse_qsl(back) == [("code", sealing.seal(code)), ("state", "abc")]


def test_the_s256_seal_of_a_verifier_is_its_pkce_challenge() -> None:
    """RFC 7636 appendix B's example, and authlib's S256 for a fresh verifier: a check can compare
    the sealed verifier of a token request with the challenge of the authorization request."""
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert sealing.s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    fresh = secrets.token_urlsafe(64)
    assert sealing.seal_facts(sealing.seal(fresh)) == (create_s256_code_challenge(fresh), len(fresh))


def test_a_client_assertion_keeps_its_header_and_claims_and_seals_its_signature() -> None:
    key = ECKey.generate_key("P-384")
    claims = {"iss": "app", "sub": "app", "aud": "http://127.0.0.1/auth/token", "exp": 2_000_000_000, "jti": "j-1"}
    assertion = jwt.encode({"alg": "ES384", "kid": "k1"}, claims, key, algorithms=["ES384"])
    decoded = sealing.decoded_assertion(assertion)
    assert decoded["header"] == {"alg": "ES384", "kid": "k1", "typ": "JWT"}  # joserfc adds the type
    assert decoded["claims"] == claims
    assert decoded["signature"] == sealing.seal(assertion.rsplit(".", 1)[1])
    assert sealing.decoded_assertion("not-a-jwt") == {"unreadable": sealing.seal("not-a-jwt")}
    form = dict(sealing.form(f"client_assertion={assertion}&grant_type=client_credentials".encode()))
    assert json.loads(form["client_assertion"])["claims"]["jti"] == "j-1"


def test_an_injected_failure_answers_in_the_platforms_place_then_the_platform_answers(
    recorder: str, journal: Journal
) -> None:
    when = RequestMatcher(method="GET", path="/fhir/metadata")
    journal.inject(Injection(when, 503, {"retry-after": "2", "content-type": "text/plain"}, "busy", remaining=1))
    first = httpx.get(f"{recorder}/fhir/metadata", timeout=30)
    second = httpx.get(f"{recorder}/fhir/metadata", timeout=30)
    assert (first.status_code, first.headers["retry-after"], first.text) == (503, "2", "busy")
    assert second.status_code == 200
    assert [(r.status, r.injected) for r in journal.requests()] == [(503, True), (200, False)]


def test_a_body_over_the_cap_gets_413_without_reaching_the_platform(recorder: str, journal: Journal) -> None:
    answer = httpx.post(f"{recorder}/fhir/Patient", content=b"x" * (MAX_REQUEST_BODY + 1), timeout=60)
    assert answer.status_code == 413 and "recorder" in answer.text
    assert [r.status for r in journal.requests()] == [413]


def test_a_large_body_keeps_only_what_a_bundle_says_of_itself(recorder: str, journal: Journal) -> None:
    filler = "x" * (MAX_JUDGED_JSON + 1)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"fullUrl": filler}]}
    httpx.post(f"{recorder}/fhir", json=bundle, headers={"content-type": "application/fhir+json"}, timeout=60)
    httpx.post(f"{recorder}/fhir/Patient", json={"resourceType": "Patient", "note": filler}, timeout=60)
    big_bundle, big_patient = journal.requests()
    assert big_bundle.json_body == {"resourceType": "Bundle", "type": "transaction"}
    assert big_patient.json_body is None


def test_a_flood_is_counted_but_only_the_first_requests_are_kept(demo_reference: DemoReference) -> None:
    journal = Journal(max_kept=20)
    proxy = RecordingProxy(_origin(demo_reference.base_url), journal)
    with serve_on_loopback(proxy) as origin, httpx.Client(base_url=origin, timeout=10) as client:
        for _ in range(60):
            client.get("/fhir/.well-known/smart-configuration")
    assert journal.received == 60
    assert [r.n for r in journal.requests()] == list(range(1, 21))


def test_a_platform_that_is_down_becomes_a_502_that_says_so(journal: Journal) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with serve_on_loopback(RecordingProxy(f"http://127.0.0.1:{port}", journal)) as origin:
        answer = httpx.get(f"{origin}/fhir/metadata", timeout=10)
    assert answer.status_code == 502 and "ConnectError" in answer.text
    assert journal.requests()[0].status == 502


def test_the_platform_behind_must_be_an_origin() -> None:
    with pytest.raises(ValueError, match="needs an origin"):
        RecordingProxy("127.0.0.1:8080", Journal())


def test_matchers_select_by_method_path_and_fields_and_say_what_they_wait_for(recorder: str, journal: Journal) -> None:
    httpx.get(f"{recorder}/fhir/Patient", params={"_count": "2", "family": "Muller"}, timeout=10)
    httpx.post(f"{recorder}/auth/token", data={"grant_type": "refresh_token"}, timeout=10)
    paged = RequestMatcher(method="get", path="/fhir/Patient", query={"_count": r"\d+", "family": None})
    refresh = RequestMatcher(path="/auth/token", form={"grant_type": "refresh_token"})
    unpaged = RequestMatcher(path="/fhir/Patient", query={"_count": "100"})
    assert [r.n for r in journal.requests(paged.matches)] == [1]
    assert [r.n for r in journal.requests(refresh.matches)] == [2]
    assert journal.requests(unpaged.matches) == []
    assert paged.describe() == r"get /fhir/Patient with query _count~\d+, family"
    with pytest.raises(ValueError, match="'\\(unclosed' is not a regular expression: missing \\)"):
        RequestMatcher(path="(unclosed")


def test_waiting_ends_when_the_request_arrives_or_when_the_time_is_up(recorder: str, journal: Journal) -> None:
    began = time.monotonic()
    assert journal.wait(lambda: journal.received > 0, timeout_s=0.5) is False
    assert 0.5 <= time.monotonic() - began < 2
    httpx.get(f"{recorder}/fhir/metadata", timeout=30)
    assert journal.wait(lambda: len(journal.requests()) == 1, timeout_s=5) is True
