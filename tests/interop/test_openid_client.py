"""openid-client 6 (Node) discovers the platform's issuer, builds a PKCE authorization request and gets
a client credentials token with private_key_jwt."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from reference_impl.app import create_app
from reference_impl.settings import Settings
from tests.support.paths import REPO
from tests.support.servers import sqlite_url, threaded_server

SCRIPT = Path(__file__).with_name("openid_discovery.mjs")
REDIRECT = "http://127.0.0.1:9/callback"
DEMO_SYSTEM_KEY = REPO / "testplans" / "keys" / "demo-system-client.private.jwk"  # DEMO ONLY


@pytest.fixture
def node() -> str:
    found = shutil.which("node")
    if found is None or not (REPO / "node_modules" / "openid-client").is_dir():
        pytest.fail("node and openid-client are needed: run `npm ci` (make test does)")
    return found


def openid_client(node: str, *args: str) -> dict[str, Any]:
    """What the Node script printed (one JSON object); it must exit 0."""
    run = subprocess.run([node, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert run.returncode == 0, run.stderr
    found: dict[str, Any] = json.loads(run.stdout)
    return found


def test_openid_client_discovers_the_issuer_and_builds_a_pkce_request(node: str, tmp_path: Path) -> None:
    app = create_app(Settings(db_url=sqlite_url(tmp_path)))
    with threaded_server(app) as base:
        issuer = base.removesuffix("/fhir") + "/auth"
        found = openid_client(node, issuer, "interop-app", REDIRECT)
    assert found["issuer"] == issuer and found["token_endpoint"] == f"{issuer}/token"
    assert found["pkce_s256"] is True
    authorization = urlsplit(found["authorization_url"])
    assert f"{authorization.scheme}://{authorization.netloc}{authorization.path}" == f"{issuer}/authorize"
    query = parse_qs(authorization.query)
    assert query["code_challenge_method"] == ["S256"] and query["redirect_uri"] == [REDIRECT]


def test_openid_client_gets_a_system_token_with_a_private_key_jwt_assertion(node: str, tmp_path: Path) -> None:
    app = create_app(Settings(db_url=sqlite_url(tmp_path), seed="demo"))
    with threaded_server(app) as base:
        issuer = base.removesuffix("/fhir") + "/auth"
        token = openid_client(node, issuer, "interop-app", REDIRECT, "eqlab-demo-system", str(DEMO_SYSTEM_KEY))[
            "system_token"
        ]
    assert token == {"token_type": "bearer", "scope": "system/Patient.rs", "expires_in": token["expires_in"]}
    assert 0 < token["expires_in"] <= 3600
