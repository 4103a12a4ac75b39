"""The sign-in flow against another vendor's pages (a mock server): only HTML is assumed, and the
client's checks of the redirect (state, issuer) hold."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from eqlab.oauth_client import AuthError, AuthorizeRefused, LoginFailed
from eqlab.oauth_client.browser import BrowserFlow, pkce_pair

ISSUER = "https://idp.test"
REDIRECT = "https://app.test/cb"
LOGIN = """<html><body><h1>Welcome</h1><form method="post" action="/signin">
<input type="hidden" name="_token" value="t0k3n-csrf-value"><input type="email" name="login">
<input type="password" name="pass"><input type="checkbox" name="remember" value="1">
<button type="submit" name="go" value="Sign in">Sign in</button></form></body></html>"""
CONSENT = """<form method="get" action="/approve"><input type="hidden" name="ticket" value="abc">
<label><input type="radio" name="why" value="TREAT" checked> care</label>
<label><input type="radio" name="why" value="EMERGENCY"> emergency</label>
<input type="submit" name="answer" value="Cancel"><input type="submit" name="answer" value="Approve"></form>"""


class Idp:
    """A tiny authorization server with its own page design; ``mode`` bends its last answer."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.seen: dict[str, dict[str, str]] = {}
        self.request: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/authorize":
            self.request = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
            return httpx.Response(200, html=LOGIN)
        if path == "/signin":
            self.seen["login"] = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            if self.seen["login"].get("pass") != "right-password":
                return httpx.Response(401, html=LOGIN.replace("<h1>Welcome</h1>", "<p>Bad credentials</p>"))
            return httpx.Response(302, headers={"Location": "/consent"})
        if path == "/consent":
            return httpx.Response(200, html=CONSENT)
        if path == "/approve":
            self.seen["consent"] = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
            params = {"code": "the-code", "state": self.request["state"], "iss": ISSUER}
            if self.mode == "other-state":
                params["state"] = "forged"
            elif self.mode == "other-issuer":
                params["iss"] = "https://evil.test"
            elif self.mode == "denied":
                params = {"error": "access_denied", "error_description": "no", "state": self.request["state"]}
            return httpx.Response(302, headers={"Location": f"{REDIRECT}?{urlencode(params)}"})
        raise AssertionError(f"the flow must never call {request.url}")  # the redirect URI included


def flow(idp: Idp, password: str = "right-password") -> BrowserFlow:
    http = httpx.Client(transport=httpx.MockTransport(idp), base_url=ISSUER)
    return BrowserFlow(http, f"{ISSUER}/authorize", "app", REDIRECT, "alice@example", password, ISSUER)


def test_another_vendors_pages_are_filled_in_as_a_browser_would() -> None:
    idp = Idp()
    got = flow(idp).run("openid patient/*.rs", "https://fhir.test/r4", purpose="EMERGENCY")
    assert (got.code, got.state, got.issuer, got.redirect_uri) == ("the-code", idp.request["state"], ISSUER, REDIRECT)
    assert idp.request["code_challenge_method"] == "S256" and idp.request["aud"] == "https://fhir.test/r4"
    assert idp.request["code_challenge"] != got.verifier and "nonce" in idp.request
    assert idp.seen["login"] == {"_token": "t0k3n-csrf-value", "login": "alice@example", "pass": "right-password",
                                 "go": "Sign in"}  # fmt: skip
    assert idp.seen["consent"] == {"ticket": "abc", "why": "EMERGENCY", "answer": "Approve"}


@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("other-state", AuthError, "another state"),
        ("other-issuer", AuthError, "names issuer https://evil.test, not https://idp.test"),
        ("denied", AuthorizeRefused, r"was refused: access_denied \(no\)"),
    ],
)
def test_the_redirect_is_checked_as_a_client_must(mode: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        flow(Idp(mode)).run("openid", "https://fhir.test/r4")


def test_wrong_credentials_end_the_flow_with_what_the_page_said() -> None:
    with pytest.raises(LoginFailed) as failed:
        flow(Idp(), password="wrong-password-123").run("openid", "https://fhir.test/r4")
    assert "Bad credentials" in str(failed.value) and "401" in str(failed.value)
    assert "wrong-password-123" not in str(failed.value)


def test_pkce_pairs_are_fresh_s256_values() -> None:
    (v1, c1), (v2, _) = pkce_pair(), pkce_pair()
    assert v1 != v2 and 43 <= len(v1) <= 128 and len(c1) == 43 and "=" not in c1
    assert urlsplit(f"x:?{c1}").query == c1  # base64url: safe in a URL as is
