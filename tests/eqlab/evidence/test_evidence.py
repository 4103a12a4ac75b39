"""Evidence capture: exchanges recorded, secrets redacted, large bodies stored, runaway bodies cut."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from eqlab.evidence import redaction
from eqlab.evidence.recorder import (
    FILE_THRESHOLD,
    EvidenceClient,
    EvidenceRecorder,
    EvidenceStore,
    ResponseTooLarge,
    ResponseTooSlow,
)

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJwYXRpZW50LTEifQ.c2lnbmF0dXJlLWJ5dGVz"
PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----"
SECRETS = [
    JWT,
    "s3cr3t-client-secret",
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg",
    "hunter2-password",
    "session=abc123def456",
]


class Endless(httpx.SyncByteStream):
    """A body that never ends, streamed like a hostile server would."""

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield b"y" * 65536


class Trickle(httpx.SyncByteStream):
    """A body that arrives a byte at a time, each within any per-read timeout, and never ends."""

    def __iter__(self) -> Iterator[bytes]:
        while True:
            time.sleep(0.05)
            yield b"{"


def app(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/token"):
        return httpx.Response(
            200,
            json={"access_token": JWT, "refresh_token": "r-" + JWT, "token_type": "Bearer"},
            headers={"Set-Cookie": "session=abc123def456"},
        )
    if request.url.path.endswith("/big"):
        return httpx.Response(200, content=b"x" * (FILE_THRESHOLD * 2), headers={"Content-Type": "text/plain"})
    if request.url.path.endswith("/huge"):
        return httpx.Response(200, stream=Endless())
    if request.url.path.endswith("/trickle"):
        return httpx.Response(200, stream=Trickle())
    return httpx.Response(
        401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}, json={"resourceType": "OperationOutcome"}
    )


def client(recorder: EvidenceRecorder, max_response_bytes: int = 20 * 1024 * 1024) -> EvidenceClient:
    return EvidenceClient(
        "http://sut.test/fhir", recorder, transport=httpx.MockTransport(app), max_response_bytes=max_response_bytes
    )


def test_exchanges_are_recorded_without_any_secret(tmp_path: Path) -> None:
    recorder = EvidenceRecorder(EvidenceStore(tmp_path))
    with client(recorder) as c:
        c.post(
            "token",
            data={"grant_type": "client_credentials", "client_secret": "s3cr3t-client-secret", "client_assertion": JWT},
        )
        c.get(
            "Patient",
            headers={"Authorization": f"Bearer {JWT}", "Cookie": "session=abc123def456"},
            params={"access_token": JWT},
        )
        c.post(
            "Binary",
            json={
                "resourceType": "Parameters",
                "password": "hunter2-password",
                "key": {"kty": "EC", "d": "private-part", "x": "public"},
            },
        )
        c.post("Binary", content=PEM.encode(), headers={"Content-Type": "text/plain"})
    recorder.note(f"token used: {JWT}")
    dumped = json.dumps([x.model_dump() for x in recorder.exchanges] + recorder.notes)
    for secret in [*SECRETS, "private-part"]:
        assert secret not in dumped, secret
    assert '"x":"public"' in dumped.replace(" ", "").replace('\\"', '"')
    assert 'Bearer error=\\"invalid_token\\"' in dumped  # evidence that matters stays readable
    first = recorder.exchanges[0]
    assert (first.method, first.status, first.url) == ("POST", 200, "http://sut.test/fhir/token")
    assert first.response is not None and first.response.headers["set-cookie"] == redaction.REDACTED


def test_large_bodies_become_files_named_by_hash(tmp_path: Path) -> None:
    recorder = EvidenceRecorder(EvidenceStore(tmp_path))
    with client(recorder) as c:
        c.get("big")
    response = recorder.exchanges[0].response
    assert response is not None and response.truncated and response.body_file
    stored = tmp_path / response.body_file
    assert stored.read_bytes() == b"x" * (FILE_THRESHOLD * 2)
    assert stored.name.startswith(str(response.body_sha256))
    assert response.body_excerpt is not None and len(response.body_excerpt) == 4096


def test_a_runaway_response_is_cut_and_recorded_as_the_error() -> None:
    recorder = EvidenceRecorder()
    with client(recorder, max_response_bytes=1024 * 1024) as c, pytest.raises(ResponseTooLarge):
        c.get("huge")
    (exchange,) = recorder.exchanges
    assert exchange.status is None and exchange.error and "exceeded 1048576 bytes" in exchange.error


def test_a_trickling_response_is_cut_at_its_deadline() -> None:
    recorder = EvidenceRecorder()
    with (
        EvidenceClient("http://sut.test/fhir", recorder, timeout=0.5, transport=httpx.MockTransport(app)) as c,
        pytest.raises(ResponseTooSlow),
    ):
        c.get("trickle")
    (exchange,) = recorder.exchanges
    assert exchange.status is None and "still arriving after 0.5 s" in str(exchange.error)


def test_json_bodies_default_to_fhir_json() -> None:
    recorder = EvidenceRecorder()
    with client(recorder) as c:
        c.post("Patient", json={"resourceType": "Patient"})
    assert recorder.exchanges[0].request.headers["content-type"] == "application/fhir+json"
    assert recorder.exchanges[0].request.headers["accept"] == "application/fhir+json"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ('WWW-Authenticate: Bearer error="invalid_token", error_description="expired"', 'Bearer error="invalid_token"'),
        ("GET /fhir/Patient?family=Bearer", "family=Bearer"),
        ('    token = tokens.system(scope="system/*.rs")', "token = tokens.system("),
        ("    password = secret_from(self.password_env)", "password = secret_from(self.password_env)"),
        ("E   assert refresh_token == rotated", "refresh_token == rotated"),
    ],
)
def test_redaction_keeps_what_is_not_secret(text: str, kept: str) -> None:
    assert kept in redaction.text(text)


@pytest.mark.parametrize(
    "text",
    [
        "token=Zk3vQ9xP2mLw8RtY",
        'token = "Zk3vQ9xP2mLw8RtY"',
        "{'access_token': 'Zk3vQ9xP2mLw8RtY'}",
        "client_secret: Zk3vQ9xP2mLw8RtY",
        "password=hunter2hunter2",
        "token=onlylettersinthisone",
    ],
)
def test_a_traceback_loses_secret_values_but_keeps_its_code(text: str) -> None:
    cleaned = redaction.text(text)
    assert all(secret not in cleaned for secret in ("Zk3vQ9xP2mLw8RtY", "hunter2hunter2", "onlylettersinthisone"))
    assert "[REDACTED]" in cleaned


def test_integers_beyond_64_bits_are_sent() -> None:
    recorder = EvidenceRecorder()
    with client(recorder) as c:
        c.post("Patient", json={"resourceType": "Patient", "multipleBirthInteger": 10**30})
    assert "1000000000000000000000000000000" in (recorder.exchanges[0].request.body_excerpt or "")


LOGIN_PAGE = (
    '<form method="post" action="/auth/login"><input type="hidden" name="csrf" value="csrf-0123456789abcdef">'
    "<input type='hidden' name='request' value='response_type=code&amp;state=s1'>"
    '<input type="password" id="password" name="password" required></form>'
)


@pytest.mark.parametrize(
    ("content_type", "raw", "secrets", "kept"),
    [
        (
            "text/html",
            LOGIN_PAGE,
            ["csrf-0123456789abcdef"],
            ["name='request' value='response_type=code&amp;state=s1'"],
        ),
        (
            "application/x-www-form-urlencoded",
            "csrf=csrf-0123456789abcdef&request=a%3Db&username=patient1&password=pw-0123456789",
            ["csrf-0123456789abcdef", "pw-0123456789"],
            ["username=patient1", "request=a%3Db"],
        ),
        (
            "application/x-www-form-urlencoded",
            "grant_type=authorization_code&code=code-0123456789&code_verifier=verifier-0123456789&redirect_uri=x",
            ["code-0123456789", "verifier-0123456789"],
            ["grant_type=authorization_code"],
        ),
        ("application/x-www-form-urlencoded", "code=8867-4&_count=5", [], ["code=8867-4"]),  # a FHIR search by form
        ("application/fhir+json", '{"code": {"coding": [{"code": "8867-4"}]}, "state": "x"}', [], ['"code":"8867-4"']),
    ],
)
def test_login_flow_secrets_are_redacted_and_fhir_codes_kept(
    content_type: str, raw: str, secrets: list[str], kept: list[str]
) -> None:
    clean = redaction.body(raw.encode(), content_type).decode()
    assert not [s for s in secrets if s in clean] and all(k in clean for k in kept), clean


def test_the_code_of_an_authorization_response_is_redacted_wherever_it_is_quoted() -> None:
    back = "http://127.0.0.1:8400/callback?code=code-0123456789&state=s1&iss=http%3A%2F%2Fsut%2Fauth"
    assert "code-0123456789" not in redaction.headers({"Location": back})["Location"]
    assert "code-0123456789" not in redaction.url(back)
    assert "code-0123456789" not in redaction.text(f"AssertionError: sent back to {back}")
    search = "http://sut/fhir/Observation?code=8867-4&address-state=LU"
    assert redaction.url(search) == search and redaction.text(search) == search


def test_known_secrets_and_truncated_tokens_are_removed_from_text() -> None:
    assert redaction.known("refresh rt.opaque-0123456789 and short abc", {"rt.opaque-0123456789", "abc"}) == (
        "refresh [REDACTED] and short abc"  # values under 8 characters would blank ordinary words
    )
    assert "eyJzdWIiOiJwYXRpZW50LTEifQ" not in redaction.text(f"token {JWT[:60]}")  # cut before the signature
