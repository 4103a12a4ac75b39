"""Discovery: the SMART configuration, the OpenID Provider metadata and the JWKS (auth@1-3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import JSON
from suites.contract.fhir_toolkit import body_of, shown

ACCEPT_JSON = {"Accept": "application/json"}
ENDPOINTS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "introspection_endpoint",
    "revocation_endpoint",
)
SHARED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k", "oth")


def _listed(document: JSON, name: str) -> list[Any]:
    value = document.get(name)
    assert isinstance(value, list), f"{name} is {value!r}; expected a JSON array"
    return value


def _is_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _smart(anonymous_client: EvidenceClient) -> JSON:
    response = anonymous_client.get(".well-known/smart-configuration", headers=ACCEPT_JSON)
    assert response.status_code == 200, (
        f"GET [base]/.well-known/smart-configuration answered {shown(response)}; "
        "expected 200 with the SMART configuration"
    )
    return body_of(response, "the SMART configuration")


@pytest.mark.requirement("auth@1")
def test_smart_configuration_names_the_endpoints(anonymous_client: EvidenceClient) -> None:
    """the SMART configuration names the issuer and every endpoint as absolute URLs"""
    smart = _smart(anonymous_client)
    missing = [name for name in ENDPOINTS if not _is_url(smart.get(name))]
    assert not missing, f"the SMART configuration lacks absolute URLs for {', '.join(missing)}; got " + ", ".join(
        f"{n}={smart.get(n)!r}" for n in missing
    )


@pytest.mark.requirement("auth@1")
def test_smart_configuration_states_the_grants_and_methods(anonymous_client: EvidenceClient) -> None:
    """the SMART configuration states the grants, PKCE S256 only and the client authentication methods"""
    smart = _smart(anonymous_client)
    grants = set(_listed(smart, "grant_types_supported"))
    wanted = {"authorization_code", "refresh_token", "client_credentials"}
    assert wanted <= grants, f"grant_types_supported is {sorted(grants)}; it must include {sorted(wanted - grants)}"
    methods = _listed(smart, "code_challenge_methods_supported")
    assert methods == ["S256"], f"code_challenge_methods_supported is {methods}; expected exactly ['S256'] (no plain)"
    auth_methods = set(_listed(smart, "token_endpoint_auth_methods_supported"))
    assert {"private_key_jwt", "client_secret_basic"} <= auth_methods, (
        f"token_endpoint_auth_methods_supported is {sorted(auth_methods)}; "
        "expected private_key_jwt and client_secret_basic"
    )
    algorithms = set(_listed(smart, "token_endpoint_auth_signing_alg_values_supported"))
    assert algorithms & {"ES384", "RS384"} and algorithms <= {"ES384", "RS384"}, (
        f"token_endpoint_auth_signing_alg_values_supported is {sorted(algorithms)}; expected ES384 and/or RS384 only"
    )
    capabilities = set(_listed(smart, "capabilities"))
    wanted = {"permission-v1", "permission-v2", "client-confidential-asymmetric", "client-confidential-symmetric"}
    assert wanted <= capabilities, f"capabilities lack {sorted(wanted - capabilities)} (SPEC section 2 needs them)"


@pytest.mark.requirement("auth@2")
def test_openid_configuration_matches_the_smart_configuration(
    anonymous_client: EvidenceClient, auth_client: EvidenceClient
) -> None:
    """the OpenID Provider metadata names the same issuer and endpoints, userinfo and ES256 ID tokens"""
    smart = _smart(anonymous_client)
    issuer = str(smart["issuer"]).rstrip("/")
    response = auth_client.get(f"{issuer}/.well-known/openid-configuration", headers=ACCEPT_JSON)
    if response.status_code == 404:  # the issuer has a path: some servers answer at the origin too (SPEC §2)
        response = auth_client.get("/.well-known/openid-configuration", headers=ACCEPT_JSON)
    assert response.status_code == 200, (
        f"GET {issuer}/.well-known/openid-configuration answered {shown(response)}; expected the OpenID metadata"
    )
    openid = body_of(response, "the OpenID Provider metadata")
    different = [n for n in SHARED if openid.get(n) != smart.get(n)]
    assert not different, "the OpenID metadata and the SMART configuration differ in " + ", ".join(
        f"{n} ({openid.get(n)!r} vs {smart.get(n)!r})" for n in different
    )
    assert _is_url(openid.get("userinfo_endpoint")), (
        f"userinfo_endpoint is {openid.get('userinfo_endpoint')!r}; expected the URL of the userinfo endpoint"
    )
    assert "code" in _listed(openid, "response_types_supported"), "response_types_supported lacks 'code'"
    assert _listed(openid, "subject_types_supported"), "subject_types_supported is empty"
    algorithms = _listed(openid, "id_token_signing_alg_values_supported")
    assert "ES256" in algorithms, f"id_token_signing_alg_values_supported is {algorithms}; expected ES256 in it"


@pytest.mark.requirement("auth@3")
def test_jwks_holds_public_signing_keys_only(anonymous_client: EvidenceClient, auth_client: EvidenceClient) -> None:
    """the JWKS holds public keys with a kid, an EC P-256 key among them, and no private key material"""
    jwks_uri = str(_smart(anonymous_client)["jwks_uri"])
    response = auth_client.get(jwks_uri, headers=ACCEPT_JSON)
    assert response.status_code == 200, f"GET {jwks_uri} answered {shown(response)}; expected the JWK Set"
    keys = _listed(body_of(response, "the JWKS"), "keys")
    assert keys, "the JWKS holds no key"
    for key in keys:
        assert isinstance(key, dict) and key.get("kty"), f"a JWKS entry is not a JWK: {str(key)[:200]}"
        leaked = [member for member in PRIVATE_MEMBERS if member in key]
        assert not leaked, (
            f"the JWKS publishes private key material ({', '.join(leaked)}) of key {key.get('kid')!r}; "
            "a JWK Set for verifiers holds public keys only (RFC 7517 §5)"
        )
        assert isinstance(key.get("kid"), str) and key["kid"], f"a key of the JWKS has no kid: {key}"
    curves = [(k.get("kty"), k.get("crv")) for k in keys]
    assert ("EC", "P-256") in curves, f"the JWKS holds {curves}; expected an EC P-256 key (ES256 access tokens)"
