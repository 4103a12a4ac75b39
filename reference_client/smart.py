"""SMART on FHIR as a client: discovery, authorization code with PKCE (signing a test user in
through the server's own pages, as a browser would), refresh, and client credentials with
``private_key_jwt``."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, RSAKey

from reference_client.config import Config
from reference_client.wire import Wire

USER_SCOPE = "openid fhirUser offline_access launch/patient patient/*.rs"
SYSTEM_SCOPE = "system/*.cruds"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 240  # SMART Backend Services allows at most 5 minutes
FAULTY_ASSERTION_LIFETIME_S = 3600
CONSTANT_VERIFIER = "reference-client-constant-verifier-" + "0" * 30  # the verifier-reused fault's only one
REDIRECT_EXTRA_QUERY = "from=reference-client"
CONSTANT_JTI = "reference-client-constant-jti"
MAX_LOGIN_PAGES = 5


class ScenarioFailed(Exception):
    """A scenario could not do its work; the message is the one line the client prints."""


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class _Page(HTMLParser):
    """What a browser shows of a sign-in page: its first form (fields as submitted) and its alert."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.alert = ""
        self._in_form = False
        self._in_alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if attributes.get("role") == "alert":
            self._in_alert = True
        if tag == "form" and self.action is None:
            self.action, self._in_form = attributes.get("action", ""), True
        elif tag == "input" and self._in_form and "name" in attributes:
            if attributes.get("type") == "radio" and "checked" not in attributes:
                return
            self.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        self._in_alert = False

    def handle_data(self, data: str) -> None:
        if self._in_alert:
            self.alert += data


def read_page(page: httpx.Response) -> _Page:
    parsed = _Page()
    parsed.feed(page.text)
    return parsed


def load_key(config: Config) -> tuple[Key, str]:
    """The client's private key (JWK or PEM) and the assertion algorithm it signs with."""
    if config.key_file is None:
        raise ScenarioFailed("this scenario needs EQLAB_CLIENT_KEY (the client's private key, JWK or PEM)")
    try:
        data = config.key_file.read_bytes()
    except OSError as exc:
        raise ScenarioFailed(f"cannot read EQLAB_CLIENT_KEY: {exc.strerror}") from None
    try:
        key: Key = JWKRegistry.import_key(json.loads(data)) if data.lstrip().startswith(b"{") else _pem(data)
    except (ValueError, JoseError) as exc:
        raise ScenarioFailed(f"EQLAB_CLIENT_KEY is not a private EC or RSA key: {exc}") from None
    if not key.is_private:
        raise ScenarioFailed("EQLAB_CLIENT_KEY holds a public key: the client signs with its private key")
    return key, "ES384" if isinstance(key, ECKey) else "RS384"


def _pem(data: bytes) -> Key:
    try:
        return ECKey.import_key(data)
    except JoseError:  # not an EC key: perhaps an RSA one
        return RSAKey.import_key(data)


@dataclass
class Smart:
    """The client's side of the authorization server, as one scenario run uses it."""

    config: Config
    faults: frozenset[str]
    wire: Wire
    endpoints: dict[str, Any] = field(default_factory=dict)

    def discover(self) -> dict[str, Any]:
        if not self.endpoints:
            url = f"{self.config.fhir_base}/.well-known/smart-configuration"
            answer = self.wire.http.get(url, headers={"Accept": "application/json"})
            if answer.status_code != 200:
                raise ScenarioFailed(f"SMART discovery at {url} answered HTTP {answer.status_code}")
            self.endpoints = answer.json()
        return self.endpoints

    def token_request(self, form: dict[str, str], what: str) -> dict[str, Any]:
        answer = self.wire.http.post(
            self.discover()["token_endpoint"], data=form, headers={"Accept": "application/json"}
        )
        if answer.status_code != 200:
            raise ScenarioFailed(f"{what} refused: HTTP {answer.status_code} {_oauth_error(answer)}")
        token: dict[str, Any] = answer.json()
        return token

    # --- authorization code with PKCE ---

    def sign_in(self) -> dict[str, Any]:
        """Authorization code flow for the test user; the token response."""
        config = self.config
        config.require(redirect_uri=config.redirect_uri, username=config.username, password=config.password)
        assert config.redirect_uri and config.username and config.password
        verifier = CONSTANT_VERIFIER if "verifier-reused" in self.faults else secrets.token_urlsafe(64)
        redirect_uri = config.redirect_uri
        if "redirect-uri-extra-query" in self.faults:
            redirect_uri += ("&" if "?" in redirect_uri else "?") + REDIRECT_EXTRA_QUERY
        state = secrets.token_urlsafe(16)
        params = {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": redirect_uri,
            "scope": config.scope or USER_SCOPE,
            "state": state,
            "code_challenge": verifier if "pkce-plain" in self.faults else s256(verifier),
            "code_challenge_method": "plain" if "pkce-plain" in self.faults else "S256",
            "aud": config.fhir_base,
        }
        if "state-missing" in self.faults:
            del params["state"]
        back = self._browse(f"{self.discover()['authorization_endpoint']}?{urlencode(params)}", redirect_uri)
        answer = {key: values[0] for key, values in parse_qs(urlsplit(back).query).items()}
        if "error" in answer:
            raise ScenarioFailed(f"authorization refused: {answer['error']} {answer.get('error_description', '')}")
        if "state-missing" not in self.faults and answer.get("state") != state:
            raise ScenarioFailed("the authorization response's state is not the one sent: possible CSRF, stopped")
        if "code" not in answer:
            raise ScenarioFailed(f"the authorization response has no code: {back}")
        form = {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "client_id": config.client_id,
        }
        return self.token_request(form, "authorization code token request")

    def _browse(self, url: str, redirect_uri: str) -> str:
        """Follow the server's pages (login, consent) as the user; the URL it sends the browser back to."""
        assert self.config.username and self.config.password
        page = self.wire.http.get(url, headers={"Accept": "text/html"})
        for _ in range(MAX_LOGIN_PAGES):
            location = page.headers.get("location")
            if page.is_redirect and location:
                target = urljoin(str(page.url), str(location))
                if _without_query(target) == _without_query(redirect_uri):
                    return target
                page = self.wire.http.get(target, headers={"Accept": "text/html"})
                continue
            shown = read_page(page)
            where = _without_query(str(page.url))
            if page.status_code != 200:
                raise ScenarioFailed(f"authorization refused: HTTP {page.status_code} at {where}: {shown.alert}")
            if shown.action is None:
                raise ScenarioFailed(f"expected a login or consent form at {where}, got none")
            action, fields = urljoin(str(page.url), shown.action), shown.fields
            if "password" in fields:
                fields |= {"username": self.config.username, "password": self.config.password}
            else:
                fields["decision"] = "allow"
            page = self.wire.http.post(action, data=fields, headers={"Accept": "text/html"})
        raise ScenarioFailed("the sign-in did not come back to the redirect URI")

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.config.client_id}
        return self.token_request(form, "refresh")

    # --- client credentials with private_key_jwt ---

    def system_token(self) -> dict[str, Any]:
        key, alg = load_key(self.config)
        token_endpoint = self.discover()["token_endpoint"]
        now = int(time.time())
        lifetime = FAULTY_ASSERTION_LIFETIME_S if "assertion-exp-1h" in self.faults else ASSERTION_LIFETIME_S
        claims = {
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": token_endpoint,
            "iat": now,
            "exp": now + lifetime,
            "jti": CONSTANT_JTI if "jti-reused" in self.faults else str(uuid.uuid4()),
        }
        header = {"alg": alg, "typ": "JWT", **({"kid": key.kid} if key.kid else {})}
        form = {
            "grant_type": "client_credentials",
            "scope": self.config.scope or SYSTEM_SCOPE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": jwt.encode(header, claims, key, algorithms=[alg]),
        }
        return self.token_request(form, "client credentials token request")

    def access_token(self) -> str:
        """A token for FHIR calls: a system token when the client has a key, else the user's."""
        token = self.system_token() if self.config.key_file else self.sign_in()
        return str(token["access_token"])


def _without_query(url: str) -> str:
    return urlsplit(url)._replace(query="", fragment="").geturl()


def _oauth_error(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    return f"{body.get('error', '')} {body.get('error_description', '')}".strip()
