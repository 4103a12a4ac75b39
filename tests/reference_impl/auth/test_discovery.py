"""Discovery documents and the JWKS (SMART App Launch 2.x §"SMART configuration", OIDC Discovery)."""

from __future__ import annotations

import httpx

from tests.reference_impl.auth.conftest import AuthLab

SMART_PATHS = ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration")


def test_the_smart_configuration_is_served_at_both_places_and_names_this_origin(
    lab: AuthLab, http: httpx.Client
) -> None:
    documents = []
    for path in SMART_PATHS:
        response = http.get(lab.origin + path)
        assert response.status_code == 200
        # Answered by the authorization server, not swallowed by the FHIR router.
        assert response.headers["content-type"] == "application/json"
        documents.append(response.json())
    smart = documents[0]
    assert documents[1] == smart
    issuer = f"{lab.origin}/auth"
    assert smart["issuer"] == issuer
    for name, path in [
        ("authorization_endpoint", "authorize"),
        ("token_endpoint", "token"),
        ("jwks_uri", "jwks"),
        ("introspection_endpoint", "introspect"),
        ("revocation_endpoint", "revoke"),
        ("userinfo_endpoint", "userinfo"),
    ]:
        assert smart[name] == f"{issuer}/{path}"
    assert smart["code_challenge_methods_supported"] == ["S256"]
    assert smart["token_endpoint_auth_methods_supported"] == ["private_key_jwt", "client_secret_basic", "none"]
    assert smart["token_endpoint_auth_signing_alg_values_supported"] == ["ES384", "RS384"]
    assert set(smart["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert {"openid", "fhirUser", "offline_access", "launch/patient", "patient/*.rs", "system/*.cruds"} <= set(
        smart["scopes_supported"]
    )
    expected = {
        "launch-standalone",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "permission-v1",
        "permission-v2",
        "permission-patient",
        "permission-user",
        "context-standalone-patient",
        "sso-openid-connect",
    }
    assert expected <= set(smart["capabilities"])


def test_urls_follow_the_origin_the_client_called(lab: AuthLab, http: httpx.Client) -> None:
    port = lab.origin.rsplit(":", 1)[1]
    smart = http.get(f"http://localhost:{port}/.well-known/smart-configuration").json()
    assert smart["issuer"] == f"http://localhost:{port}/auth"
    assert smart["token_endpoint"] == f"http://localhost:{port}/auth/token"


def test_the_openid_configuration_matches_the_smart_one(lab: AuthLab, http: httpx.Client) -> None:
    smart = http.get(lab.origin + SMART_PATHS[0]).json()
    for path in ("/.well-known/openid-configuration", "/auth/.well-known/openid-configuration"):
        openid = http.get(lab.origin + path).json()
        for key, value in smart.items():
            assert openid[key] == value, key
        assert openid["id_token_signing_alg_values_supported"] == ["ES256"]
        assert openid["response_types_supported"] == ["code"]
        assert openid["subject_types_supported"] == ["public"]


def test_the_jwks_holds_public_es256_keys_only(lab: AuthLab, http: httpx.Client) -> None:
    response = http.get(lab.url("jwks"))
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys, "the JWKS must hold the key that will sign the next token"
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["use"] == "sig"
        assert key["kid"]
        assert "d" not in key, "a private key part is in the JWKS"
