"""What the authorization checks share: PKCE values, reading and forging JWTs as any client can,
the authorization server's answers, and the token requests a client makes.

The lab holds no key of the server: it reads token claims without verifying them (the checks that
verify use the published JWKS), and forges only what a client could (``alg: none``, HS256 with the
public key as secret, a real token with one byte changed). Authorization codes come from
``sign_in``: the plan's user at a browser, signing in at the authorization endpoint (with the
platform's own login and consent forms) for an authorization request the check chooses; every
request after the redirect is the check's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx

from eqlab.checks import EvidenceClient, LabTokens, TokenSet, consent_form, forms_of, login_form
from suites.contract.fhir_toolkit import shown

Tokens = LabTokens  # what the ``tokens`` fixture gives
JSON = dict[str, Any]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# A patient's grant with a refresh token, read-only on the own record: what the checks sign in for.
PATIENT_SCOPE = "openid fhirUser launch/patient offline_access patient/*.rs"
HTML = {"Accept": "text/html,application/xhtml+xml"}
MAX_BROWSER_STEPS = 12  # authorize, login, back to authorize, consent and redirects between
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,"]+))')  # auth-param: quoted string or token (RFC 9110 §11.2)


# --- PKCE and JWTs -----------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def pkce_pair(length: int = 64) -> tuple[str, str]:
    """A code verifier of ``length`` unreserved characters and its S256 challenge."""
    verifier = (secrets.token_urlsafe(96) * 2)[:length]
    return verifier, s256(verifier)


def jwt_parts(token: str, what: str = "the access token") -> tuple[JSON, JSON]:
    """Header and claims of a compact JWS, read without verifying (a clear failure if it is not one)."""
    pieces = token.split(".")
    assert len(pieces) == 3, f"{what} is not a compact JWT (header.payload.signature): {len(pieces)} parts"
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in pieces[:2])
    except ValueError:
        raise AssertionError(f"{what} is not a JWT: its header or payload is not base64url JSON") from None
    assert isinstance(header, dict) and isinstance(claims, dict), f"{what}: header and payload must be JSON objects"
    return header, claims


def claims_of(token: str, what: str = "the access token") -> JSON:
    return jwt_parts(token, what)[1]


def alg_none(token: str) -> str:
    """The claims of ``token`` unsigned, with ``alg: none``."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{token.split('.')[1]}."


def flipped_signature(token: str) -> str:
    """``token`` with one signature byte changed."""
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


def hs256_with(token: str, secret: bytes) -> str:
    """The claims of ``token`` signed HS256 with ``secret`` (the alg confusion attack)."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{token.split('.')[1]}"
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


# --- answers -----------------------------------------------------------------------------------


def challenge(response: httpx.Response, scheme: str = "bearer") -> dict[str, str] | None:
    """The parameters of the ``scheme`` challenge in WWW-Authenticate (None when there is none)."""
    header = response.headers.get("www-authenticate", "")
    if not header.strip().lower().startswith(scheme):
        return None
    return {k.lower(): quoted or bare for k, quoted, bare in _PARAM.findall(header)}


def assert_invalid_token(response: httpx.Response, what: str) -> None:
    """401 with ``WWW-Authenticate: Bearer error="invalid_token"``."""
    assert response.status_code == 401, f"{what} answered {shown(response)}; expected 401"
    found = challenge(response)
    header = response.headers.get("www-authenticate")
    assert found is not None, f"{what} answered 401 with WWW-Authenticate {header!r}; expected a Bearer challenge"
    assert found.get("error") == "invalid_token", (
        f'{what} answered 401 with WWW-Authenticate {header!r}; expected error="invalid_token"'
    )


def oauth_error(response: httpx.Response) -> str | None:
    """The ``error`` of an OAuth JSON error answer (RFC 6749 §5.2), if it is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def assert_oauth_refused(response: httpx.Response, what: str, *errors: str, statuses: tuple[int, ...] = (400,)) -> None:
    """An RFC 6749 §5.2 refusal: one of ``statuses`` and one of ``errors``."""
    assert response.status_code in statuses, (
        f"{what} answered {shown(response)}; "
        f"expected {' or '.join(map(str, statuses))} with error {' or '.join(errors)}"
    )
    assert oauth_error(response) in errors, (
        f"{what} was refused with error {oauth_error(response)!r}; expected {' or '.join(errors)} (RFC 6749 §5.2)"
    )


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of the redirect ``response`` sends the browser to (empty if none)."""
    if response.status_code not in (301, 302, 303, 307, 308):
        return {}
    return dict(parse_qsl(urlsplit(response.headers.get("location", "")).query))


def location(response: httpx.Response) -> str:
    return str(response.headers.get("location", "")) if 300 <= response.status_code < 400 else ""


# --- client requests ---------------------------------------------------------------------------


def sign_in(
    browser: EvidenceClient, tokens: Tokens, params: dict[str, str | None], role: str = "patient"
) -> httpx.Response:
    """The plan's ``role`` user at a browser: the authorization request of the login client with
    ``params`` (replacing or, as None, removing its parameters), the login and consent pages filled
    in as far as the server shows them; the last answer: the redirect back to a client, or the
    page where the server stopped (an error page). The redirect is never followed."""
    client, user = tokens.config.login_client_for(role), tokens.config.user(role)
    _, challenge_ = pkce_pair()
    query: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": tokens.config.user_scope(role),
        "state": secrets.token_urlsafe(12),
        "aud": tokens.fhir_base,
        "code_challenge": challenge_,
        "code_challenge_method": "S256",
        **params,
    }
    endpoint = str(tokens.smart["authorization_endpoint"])
    server = urlsplit(endpoint).netloc
    clients = tuple(u for u in (client.redirect_uri, query.get("redirect_uri")) if u)
    sent = {k: v for k, v in query.items() if v is not None}
    response = browser.get(f"{endpoint}?{urlencode(sent)}", headers=HTML)
    logged_in = consented = False
    for _ in range(MAX_BROWSER_STEPS):
        if response.is_redirect:
            target = urljoin(str(response.url), str(response.headers.get("location", "")))
            if urlsplit(target).netloc != server or target.startswith(clients):
                return response
            response = browser.get(target, headers=HTML)
            continue
        forms = forms_of(response.text) if "html" in response.headers.get("content-type", "") else []
        login, consent = login_form(forms), consent_form(forms)
        if login is not None and not logged_in:
            logged_in, data = True, login.login_fields(user.username, user.password(role))
            response = browser.post(urljoin(str(response.url), login.action), data=data, headers=HTML)
        elif consent is not None and not consented:
            consented, data = True, consent.consent_fields(None)
            response = browser.post(urljoin(str(response.url), consent.action), data=data, headers=HTML)
        else:
            return response
    return response


def sign_in_code(
    browser: EvidenceClient, tokens: Tokens, challenge_: str, scope: str = PATIENT_SCOPE, **params: str | None
) -> str:
    """An authorization code for the plan's patient, bound to ``challenge_`` (S256)."""
    back = sign_in(browser, tokens, {"code_challenge": challenge_, "scope": scope, **params})
    code = redirect_params(back).get("code")
    assert code, (
        f"signing the patient in (data this check needs) ended with {shown(back)} "
        f"at {location(back) or 'no redirect'}; expected a redirect to the client with a code"
    )
    return code


def as_login_client(
    auth_client: EvidenceClient, tokens: Tokens, endpoint: str, form: dict[str, str | None]
) -> httpx.Response:
    """POST ``form`` (None values left out) to the ``endpoint`` of the SMART configuration as the login
    client (client_id for a public client, HTTP Basic for a confidential one)."""
    data = {k: v for k, v in form.items() if v is not None}
    headers: dict[str, str] = {"Accept": "application/json"}
    url = str(tokens.smart[endpoint])
    tokens.config.login_client_for("patient").auth().apply(data, headers, url)
    return auth_client.post(url, data=data, headers=headers)


def as_system_client(
    auth_client: EvidenceClient, tokens: Tokens, endpoint: str, form: dict[str, str]
) -> httpx.Response:
    """POST ``form`` to the ``endpoint`` of the SMART configuration as the plan's system client (private_key_jwt)."""
    data = {**form, "client_assertion_type": ASSERTION_TYPE, "client_assertion": tokens.client_assertion()}
    return auth_client.post(str(tokens.smart[endpoint]), data=data, headers={"Accept": "application/json"})


def redeem(
    auth_client: EvidenceClient, tokens: Tokens, code: str, verifier: str | None, **fields: str | None
) -> httpx.Response:
    """The login client's token request for ``code`` (``fields`` replace or, as None, remove fields)."""
    redirect_uri = tokens.config.login_client_for("patient").redirect_uri
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect_uri}
    return as_login_client(auth_client, tokens, "token_endpoint", {**form, **fields})


def refresh(auth_client: EvidenceClient, tokens: Tokens, refresh_token: str | None, **fields: str) -> httpx.Response:
    form: dict[str, str | None] = {"grant_type": "refresh_token", "refresh_token": refresh_token, **fields}
    return as_login_client(auth_client, tokens, "token_endpoint", form)


def patient_grant(tokens: Tokens, scope: str = PATIENT_SCOPE) -> TokenSet:
    """A fresh grant of the plan's patient, this check's alone (it may rotate or revoke it)."""
    grant = tokens.user("patient", scope=scope, fresh=True)
    assert grant.refresh_token and grant.patient, (
        "the patient's grant with offline_access and launch/patient came without a refresh token or patient"
    )
    return grant


def client_credentials(
    auth_client: EvidenceClient, tokens: Tokens, assertion: str, scope: str = "system/Patient.rs"
) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return auth_client.post(str(tokens.smart["token_endpoint"]), data=data, headers={"Accept": "application/json"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
