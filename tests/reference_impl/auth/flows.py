"""What a browser and the client applications do, as the tests need it: no back door into the server.

``Browser`` fills in the server's own login and consent forms from their HTML; the PKCE values
and client assertions are made the way a client makes them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from reference_impl.seed import accounts
from tests.reference_impl.auth.conftest import AuthLab
from tests.support.paths import REPO

PORTAL_REDIRECT = accounts.PORTAL_REDIRECTS[0]
WEBAPP_REDIRECT = accounts.WEBAPP_REDIRECTS[0]
PATIENT_SCOPE = "openid fhirUser offline_access launch/patient patient/*.rs"


class _Forms(HTMLParser):
    """The fields of the first form of a page, as a browser would submit them (checked radios only)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = attributes.get("action")
        if tag != "input" or "name" not in attributes:
            return
        if attributes.get("type") == "radio" and "checked" not in attributes:
            return
        if attributes.get("type") not in ("text", "password"):
            self.fields[attributes["name"]] = attributes.get("value", "")


def form_of(page: httpx.Response) -> tuple[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(page.text)
    assert parser.action, f"no form on the page: {page.text[:300]}"
    return parser.action, parser.fields


def pkce_pair(length: int = 64) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(96)[:length]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(
    lab: AuthLab, client_id: str, redirect_uri: str, scope: str, challenge: str, **extra: str
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "aud": lab.fhir_base,
    }
    return {k: v for k, v in {**params, **extra}.items() if v is not None}


def authorize_url(lab: AuthLab, params: dict[str, str] | list[tuple[str, str]]) -> str:
    return f"{lab.url('authorize')}?{urlencode(params)}"


@dataclass
class Browser:
    """A user at a browser: follows the server's pages, posts its forms, keeps its cookie."""

    http: httpx.Client
    headers: dict[str, str] = field(default_factory=dict)

    def open(self, url: str) -> httpx.Response:
        return self.http.get(url, headers=self.headers)

    def login(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        action, fields = form_of(page)
        return self.http.post(action, data={**fields, "username": username, "password": password}, headers=self.headers)

    def consent(self, page: httpx.Response, decision: str = "allow", purpose: str | None = None) -> httpx.Response:
        action, fields = form_of(page)
        if purpose is not None:
            fields["purpose_of_use"] = purpose
        return self.http.post(action, data={**fields, "decision": decision}, headers=self.headers)

    def sign_in(self, url: str, username: str, password: str, purpose: str | None = None) -> str:
        """authorize -> login -> consent; the URL the browser is sent back to (code and state)."""
        page = self.open(url)
        assert page.status_code == 200, page.text[:500]
        if form_of(page)[0].endswith("/login"):  # else signed in already (single sign-on): straight to consent
            after_login = self.login(page, username, password)
            assert after_login.status_code == 303, after_login.text[:500]
            page = self.open(after_login.headers["location"])
        consent_page = page
        assert consent_page.status_code == 200, consent_page.text[:500]
        back = self.consent(consent_page, purpose=purpose)
        assert back.status_code == 303, back.text[:500]
        return str(back.headers["location"])


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def code_for(lab: AuthLab, http: httpx.Client, username: str = "patient1", **extra: str) -> tuple[str, str, str]:
    """A fresh authorization code of the demo portal for ``username``: (code, verifier, redirect_uri)."""
    verifier, challenge = pkce_pair()
    scope = extra.pop("scope", PATIENT_SCOPE)
    params = authorize_params(lab, accounts.PORTAL_CLIENT, PORTAL_REDIRECT, scope, challenge, **extra)
    back = Browser(http).sign_in(authorize_url(lab, params), username, accounts.PASSWORD_PREFIX + username)
    return query_of(back)["code"], verifier, PORTAL_REDIRECT


def webapp_client(scope: str) -> OAuth2Client:
    """The demo web app as authlib's client: confidential (client_secret_basic), PKCE S256."""
    return OAuth2Client(
        accounts.WEBAPP_CLIENT,
        accounts.WEBAPP_SECRET,
        token_endpoint_auth_method="client_secret_basic",
        code_challenge_method="S256",
        redirect_uri=WEBAPP_REDIRECT,
        scope=scope,
        timeout=30,
    )


def practitioner_token(lab: AuthLab, http: httpx.Client, username: str = "doctor1", scope: str = "user/*.cruds") -> str:
    """A professional's access token through the demo web app."""
    with webapp_client(f"openid fhirUser {scope}") as client:
        verifier = secrets.token_urlsafe(48)
        url, _ = client.create_authorization_url(lab.url("authorize"), code_verifier=verifier, aud=lab.fhir_base)
        back = Browser(http).sign_in(url, username, accounts.PASSWORD_PREFIX + username)
        token: str = client.fetch_token(lab.token_url, authorization_response=back, code_verifier=verifier)[
            "access_token"
        ]
    return token


def redeem(
    lab: AuthLab, http: httpx.Client, code: str, verifier: str | None, request_id: str = "", **extra: str | None
) -> httpx.Response:
    """The portal's token request for ``code`` (``extra`` replaces or, as None, removes fields)."""
    data: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": PORTAL_REDIRECT,
        "client_id": accounts.PORTAL_CLIENT,
        **extra,
    }
    headers = {"X-Request-Id": request_id} if request_id else {}
    return http.post(lab.token_url, data={k: v for k, v in data.items() if v is not None}, headers=headers)


def demo_system_key() -> ECKey:
    data = json.loads((REPO / accounts.SYSTEM_KEY_FILE).read_text(encoding="utf-8"))
    return ECKey.import_key(data)


class ShortLivedAssertion(PrivateKeyJWT):
    """authlib's private_key_jwt with exp 4 minutes ahead: authlib's default (an hour) is beyond
    what SMART Backend Services allows (5 minutes), and the server refuses it."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        signed: str = private_key_jwt_sign(
            auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint, alg=self.alg, expires_in=240
        )
        return signed


def system_client(lab: AuthLab, client_id: str, key: ECKey | RSAKey, alg: str, scope: str) -> OAuth2Client:
    method = ShortLivedAssertion(lab.token_url, alg=alg)
    return OAuth2Client(client_id, key, token_endpoint_auth_method=method, scope=scope, timeout=30)


def assertion(
    key: ECKey | RSAKey, client_id: str, audience: str, alg: str = "ES384", lifetime: int = 240, **claims: Any
) -> str:
    """A client assertion as the tests need it, good by default, bent by ``claims``."""
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + lifetime}
    body |= {"jti": secrets.token_urlsafe(16), **claims}
    return jwt.encode({"alg": alg, "kid": key.kid}, body, key, algorithms=[alg])


def assertion_form(client_assertion: str, scope: str = "system/*.rs") -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion,
    }


def refused(response: httpx.Response, status: int, error: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, str] = response.json()
    assert body["error"] == error, body
    assert body["error_description"]
    return body


def introspect(lab: AuthLab, http: httpx.Client, token: str) -> dict[str, object]:
    response = http.post(
        lab.url("introspect"), data={"token": token}, auth=(accounts.WEBAPP_CLIENT, accounts.WEBAPP_SECRET)
    )
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def post_assertion(lab: AuthLab, http: httpx.Client, signed: str, request_id: str) -> httpx.Response:
    return http.post(lab.token_url, data=assertion_form(signed), headers={"X-Request-Id": request_id})
