"""The verified-token memory: a remembered token is accepted without verifying its signature again,
but never past its expiry, for another audience, once revoked or once its key is not trusted."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from joserfc.jwk import ECKey

from reference_impl.auth import tokens
from reference_impl.auth.tokens import TokenInvalid, VerifiedTokens

ISSUER, AUDIENCE = "http://platform.test/auth", "http://platform.test/fhir"
KEY = ECKey.generate_key("P-256", {"kid": "k1"})
CLAIMS = {
    "iss": ISSUER,
    "aud": AUDIENCE,
    "sub": "client",
    "client_id": "client",
    "scope": "system/*.rs",
    "subject_role": "system",
}


class Keys:
    """The platform's trusted signing keys."""

    def __init__(self) -> None:
        self.trusted: dict[str, ECKey] = {"k1": KEY}

    def find(self, kid: str) -> ECKey | None:
        return self.trusted.get(kid)


def check(token: str, keys: Keys, verified: VerifiedTokens, **options: Any) -> tokens.Principal:
    revoked: set[str] = options.pop("revoked", set())
    return tokens.validate(
        token, keys.find, ISSUER, options.pop("audience", AUDIENCE), revoked.__contains__, verified=verified, **options
    )


def test_a_remembered_token_is_accepted_without_verifying_its_signature_again(monkeypatch: pytest.MonkeyPatch) -> None:
    token, _ = tokens.issue(KEY, CLAIMS, 300)
    verified = VerifiedTokens()
    first = check(token, Keys(), verified)
    monkeypatch.setattr(tokens.jwt, "decode", lambda *_a, **_k: pytest.fail("verified twice"))
    assert check(token, Keys(), verified) == first


def test_tokens_are_remembered_by_their_hash_not_their_text() -> None:
    token, _ = tokens.issue(KEY, CLAIMS, 300)
    verified = VerifiedTokens()
    check(token, Keys(), verified)
    assert len(verified) == 1
    remembered = [(key, verified._entries.get(key)) for key in verified._entries.remembered()]
    assert token.split(".")[2] not in repr(remembered)


def test_a_remembered_token_is_refused_once_revoked() -> None:
    token, claims = tokens.issue(KEY, CLAIMS, 300)
    verified, keys = VerifiedTokens(), Keys()
    check(token, keys, verified)
    with pytest.raises(TokenInvalid, match="revoked"):
        check(token, keys, verified, revoked={claims["jti"]})


def test_a_remembered_token_is_refused_once_its_key_is_not_trusted() -> None:
    token, _ = tokens.issue(KEY, CLAIMS, 300)
    verified, keys = VerifiedTokens(), Keys()
    check(token, keys, verified)
    keys.trusted.clear()
    with pytest.raises(TokenInvalid, match="kid"):
        check(token, keys, verified)


def test_a_remembered_token_expires_with_the_token() -> None:
    now = int(time.time())
    token, claims = tokens.issue(KEY, CLAIMS, 60, now=now)
    verified = VerifiedTokens()
    check(token, Keys(), verified, now=now)
    with pytest.raises(TokenInvalid, match="expired"):
        check(token, Keys(), verified, now=claims["exp"] + tokens.LEEWAY_S + 1)
    assert len(verified) == 0


def test_a_token_remembered_for_one_audience_is_not_accepted_for_another() -> None:
    token, _ = tokens.issue(KEY, CLAIMS, 300)
    verified = VerifiedTokens()
    check(token, Keys(), verified)
    with pytest.raises(TokenInvalid, match="audience"):
        check(token, Keys(), verified, audience="http://elsewhere.test/fhir")


def test_the_memory_is_bounded_and_forgets_the_least_recently_used() -> None:
    verified, keys = VerifiedTokens(capacity=2), Keys()
    first, second, third = (tokens.issue(KEY, CLAIMS, 300)[0] for _ in range(3))
    check(first, keys, verified)
    check(second, keys, verified)
    check(first, keys, verified)  # first is now the most recently used
    check(third, keys, verified)
    assert len(verified) == 2
    assert verified.get(second, AUDIENCE, int(time.time())) is None
    assert verified.get(first, AUDIENCE, int(time.time())) is not None


def test_an_unsigned_token_accepted_by_the_fault_is_never_remembered() -> None:
    head = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({**CLAIMS, "jti": "x", "exp": 2**31}).encode()).rstrip(b"=").decode()
    verified = VerifiedTokens()
    check(f"{head}.{body}.", Keys(), verified, accept_unsigned=True)
    assert len(verified) == 0
