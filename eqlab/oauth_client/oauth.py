"""SMART discovery and the token endpoint's grants, as any client of the platform does them over HTTP.

Each function takes the ``httpx.Client`` to use: inside a check it is an ``EvidenceClient``, so
every exchange becomes evidence (redacted); elsewhere (the load runner, ``eqlab token``) a plain
client. Client authentication is whichever method the client has: ``private_key_jwt`` with a
signing key, ``client_secret_basic`` with a secret, or none for a public client.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import httpx

from eqlab.evidence.origins import OffOrigin
from eqlab.oauth_client.client_key import ASSERTION_TYPE, SigningKey, client_assertion
from eqlab.oauth_client.model import AuthError, TokenRefused, TokenSet

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
WELL_KNOWN = ".well-known/smart-configuration"


@dataclass(frozen=True)
class ClientAuth:
    """Who the client is at the token endpoint, and how it proves it."""

    client_id: str
    signing_key: SigningKey | None = None
    secret: str | None = field(default=None, repr=False)

    @property
    def method(self) -> str:
        if self.signing_key is not None:
            return "private_key_jwt"
        return "client_secret_basic" if self.secret is not None else "none"

    def apply(self, form: dict[str, str], headers: dict[str, str], token_url: str) -> None:
        if self.signing_key is not None:
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = client_assertion(self.signing_key, self.client_id, token_url)
        elif self.secret is not None:
            # RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined and encoded.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.client_id


def discover(http: httpx.Client, fhir_base: str) -> dict[str, Any]:
    """The SMART configuration published at ``<fhir base>/.well-known/smart-configuration``."""
    url = f"{fhir_base.rstrip('/')}/{WELL_KNOWN}"
    try:
        response = http.get(url, headers={"Accept": JSON})
    except OffOrigin:
        raise  # the system under test's fault, not the lab's: the check fails with it
    except httpx.TransportError as exc:
        raise AuthError(f"SMART discovery at {url} failed: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise AuthError(f"SMART discovery at {url} answered {response.status_code}, not 200")
    try:
        config = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AuthError(f"SMART discovery at {url} did not answer JSON") from None
    if not isinstance(config, dict) or not isinstance(config.get("token_endpoint"), str):
        raise AuthError(f"the SMART configuration at {url} names no token_endpoint")
    return config


def request_token(
    http: httpx.Client, token_url: str, form: dict[str, str], client: ClientAuth, requested_scope: str | None = None
) -> TokenSet:
    """POST ``form`` to the token endpoint with the client's authentication; the token set, or TokenRefused."""
    body = dict(form)
    headers = {"Accept": JSON, "Content-Type": FORM}
    client.apply(body, headers, token_url)
    grant = form.get("grant_type", "?")
    try:
        response = http.post(token_url, data=body, headers=headers)
    except OffOrigin:
        raise  # the system under test's fault, not the lab's: the check fails with it
    except httpx.TransportError as exc:
        raise AuthError(f"the token request ({grant}) to {token_url} failed: {type(exc).__name__}: {exc}") from None
    try:
        answer = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict) or not answer.get("access_token"):
        error = answer.get("error") if isinstance(answer, dict) else None
        description = answer.get("error_description") if isinstance(answer, dict) else None
        said = f": {error}" + (f" ({description})" if description else "") if error else " without a token"
        raise TokenRefused(
            f"the token endpoint refused the {grant} request of client {client.client_id} "
            f"({client.method}) with {response.status_code}{said}",
            response.status_code,
            str(error) if error else None,
        )
    return TokenSet.from_response(answer, requested_scope)


def client_credentials(http: httpx.Client, token_url: str, client: ClientAuth, scope: str) -> TokenSet:
    return request_token(http, token_url, {"grant_type": "client_credentials", "scope": scope}, client, scope)


def exchange_code(
    http: httpx.Client, token_url: str, client: ClientAuth, code: str, verifier: str, redirect_uri: str
) -> TokenSet:
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect_uri}
    return request_token(http, token_url, form, client)


def refresh(
    http: httpx.Client, token_url: str, client: ClientAuth, refresh_token: str, scope: str | None = None
) -> TokenSet:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope is not None:
        form["scope"] = scope
    return request_token(http, token_url, form, client, scope)
