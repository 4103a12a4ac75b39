"""The Python SMART client ``fhirclient`` finds the platform's OAuth endpoints in its CapabilityStatement."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from fhirclient import client

from reference_impl.app import create_app
from reference_impl.settings import Settings
from tests.support.servers import sqlite_url, threaded_server


def test_fhirclient_finds_the_authorize_url(tmp_path: Path) -> None:
    app = create_app(Settings(db_url=sqlite_url(tmp_path)))
    with threaded_server(app) as base:
        origin = base.removesuffix("/fhir")
        smart = client.FHIRClient(
            settings={"app_id": "interop-app", "api_base": base, "redirect_uri": "http://127.0.0.1:9/callback"}
        )
        authorize = smart.authorize_url
        assert authorize is not None
        parts = urlsplit(authorize)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{origin}/auth/authorize"
        query = parse_qs(parts.query)
        assert query["client_id"] == ["interop-app"] and query["aud"] == [base]
        assert smart.server is not None and smart.server.auth is not None
        assert smart.server.auth._token_uri == f"{origin}/auth/token"
