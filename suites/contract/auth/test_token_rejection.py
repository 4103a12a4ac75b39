"""Tokens the FHIR API must refuse with 401 invalid_token: none, tampered, unsigned or HMAC-signed,
revoked (auth@24-26, auth@29).

The lab forges only what any client can: it holds real tokens and the published public keys, never
the server's private key. An expired token and a token for another audience cannot be made that
way (auth@27, auth@28 have no check here: see the catalogue).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from joserfc.jwk import ECKey

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import (
    Tokens,
    alg_none,
    as_login_client,
    as_system_client,
    assert_invalid_token,
    b64url,
    bearer,
    claims_of,
    flipped_signature,
    hs256_with,
)
from suites.contract.fhir_toolkit import body_of, create, patient, shown


def _target(fhir_client: EvidenceClient, unique: str) -> str:
    return f"Patient/{create(fhir_client, patient(unique))['id']}"


def _attempts(client: EvidenceClient, path: str, headers: dict[str, str], unique: str) -> dict[str, httpx.Response]:
    return {
        f"GET {path}": client.get(path, headers=headers),
        "GET Patient?identifier=...": client.get("Patient", params={"identifier": f"urn:eqlab:contract|{unique}"},
                                                 headers=headers),
        "POST Patient": client.post("Patient", json=patient(unique, "Intruder"), headers=headers),
    }  # fmt: skip


@pytest.mark.requirement("auth@24")
def test_no_token_is_401_invalid_token(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, unique: str
) -> None:
    """reading, searching and writing without a token are refused with 401 invalid_token"""
    path = _target(fhir_client, unique)
    for what, response in _attempts(anonymous_client, path, {}, unique).items():
        assert_invalid_token(response, f"{what} without a token")


@pytest.mark.requirement("auth@25")
@pytest.mark.parametrize("variant", ["signature byte flipped", "claims changed"])
def test_a_tampered_token_is_401_invalid_token(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, tokens: Tokens, unique: str, variant: str
) -> None:
    """a real token with a changed signature, or with changed claims under its signature, is refused"""
    path = _target(fhir_client, unique)
    real = tokens.system("system/Observation.rs")
    if variant == "signature byte flipped":
        forged = flipped_signature(real)
    else:  # the payload widened to every type, the original signature kept
        wider = {**claims_of(real), "scope": "system/*.cruds"}
        head, _, signature = real.split(".")
        forged = f"{head}.{b64url(json.dumps(wider).encode())}.{signature}"
    for what, response in _attempts(anonymous_client, path, bearer(forged), unique).items():
        assert_invalid_token(response, f"{what} with a token whose {variant}")


def _hs256_secrets(auth_client: EvidenceClient, tokens: Tokens) -> dict[str, bytes]:
    response = auth_client.get(str(tokens.smart["jwks_uri"]))
    assert response.status_code == 200, f"GET jwks_uri answered {shown(response)}"
    keys = [k for k in body_of(response, "the JWKS").get("keys") or [] if isinstance(k, dict) and k.get("kty") == "EC"]
    assert keys, "the JWKS holds no EC key to try the HS256 confusion with"
    return {
        "HS256 keyed with the JWK": json.dumps(keys[0], separators=(",", ":")).encode(),
        "HS256 keyed with the PEM": ECKey.import_key(keys[0]).as_pem(private=False),
    }


@pytest.mark.requirement("auth@26")
@pytest.mark.parametrize("variant", ["alg none", "HS256 keyed with the JWK", "HS256 keyed with the PEM"])
def test_unsigned_and_hmac_tokens_are_401_invalid_token(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, auth_client: EvidenceClient, tokens: Tokens,
    unique: str, variant: str,
) -> None:  # fmt: skip
    """a token with alg none, or HS256 with the public key as secret, is refused"""
    path = _target(fhir_client, unique)
    real = tokens.system()
    forged = alg_none(real) if variant == "alg none" else hs256_with(real, _hs256_secrets(auth_client, tokens)[variant])
    for what, response in _attempts(anonymous_client, path, bearer(forged), unique).items():
        assert_invalid_token(response, f"{what} with a token signed {variant}")


@pytest.mark.requirement("auth@29")
@pytest.mark.parametrize("whose", ["system client", "patient"])
def test_a_revoked_token_is_401_invalid_token(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, auth_client: EvidenceClient, tokens: Tokens,
    unique: str, whose: str,
) -> None:  # fmt: skip
    """an access token revoked at the revocation endpoint is refused from then on"""
    if whose == "system client":
        token, path = tokens.system("system/Patient.rs", fresh=True), _target(fhir_client, unique)
    else:
        grant = tokens.user("patient", fresh=True)
        token, path = grant.access_token, f"Patient/{grant.patient}"
    before = anonymous_client.get(path, headers=bearer(token))
    assert before.status_code == 200, f"GET {path} with the {whose}'s fresh token answered {shown(before)}"
    if whose == "system client":
        revoked = as_system_client(auth_client, tokens, "revocation_endpoint", {"token": token})
    else:
        revoked = as_login_client(auth_client, tokens, "revocation_endpoint", {"token": token})
    assert revoked.status_code == 200, f"revoking the {whose}'s access token answered {shown(revoked)}; expected 200"
    assert_invalid_token(anonymous_client.get(path, headers=bearer(token)), f"GET {path} with a revoked token")


@pytest.mark.requirement("auth@39")
@pytest.mark.parametrize(
    "alg",
    ["€", 'x", error="insufficient_scope', "x\r\nSet-Cookie: eqlab=injected"],
    ids=["non-latin-1", "quote", "crlf"],
)
def test_a_hostile_token_header_gets_one_clean_challenge(
    fhir_client: EvidenceClient, anonymous_client: EvidenceClient, unique: str, alg: str
) -> None:
    """a token whose header holds quotes, line breaks or non-ASCII gets 401 with one well-formed challenge"""
    path = _target(fhir_client, unique)
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}, ensure_ascii=False).encode())
    response = anonymous_client.get(path, headers=bearer(f"{header}.{b64url(b'{}')}.{b64url(b'sig')}"))
    assert_invalid_token(response, f"a token with alg {alg!r}")
    raw = response.headers.get("www-authenticate", "")
    errors = re.findall(r'(?:^|[\s,])error="([^"]*)"', raw)
    assert errors == ["invalid_token"], (
        f"a token with alg {alg!r} answered WWW-Authenticate {raw!r}: the token's text ended the quoted string "
        f"and added parameters (errors {errors}); quote or drop what a caller sends (RFC 6750 §3)"
    )
    assert "set-cookie" not in response.headers, f"a token's text became a Set-Cookie header: {raw!r}"
