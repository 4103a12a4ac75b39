"""The authorization code flow with PKCE (S256), completed without a browser and without a back door.

The lab plays the user at a browser: it opens the authorization URL, follows redirects, fills in
the platform's own login form (keeping its CSRF field) and consent form (choosing the purpose of
use when asked), and stops at the redirect to the client's registered ``redirect_uri``, which it
never calls: the code is read from that URL, and the state and issuer checked, as a client would.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from eqlab.evidence import redaction
from eqlab.oauth_client.forms import Form, consent_form, forms_of, login_form
from eqlab.oauth_client.model import AuthError, AuthorizeRefused, LoginFailed

MAX_STEPS = 12  # authorize, login, back to authorize, consent, and redirects between: a loop is an error
HTML = "text/html,application/xhtml+xml"
_INVISIBLE = re.compile(r"(?is)<(style|script|head)\b.*?</\1\s*>")
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Authorization:
    """An authorization code as the client receives it, with the PKCE verifier that redeems it."""

    code: str = field(repr=False)
    verifier: str = field(repr=False)
    redirect_uri: str
    state: str
    client_id: str
    issuer: str | None = None  # the ``iss`` parameter of the redirect (RFC 9207), when sent


def pkce_pair() -> tuple[str, str]:
    """A random verifier (64 characters, within RFC 7636's 43-128) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _is_redirect_uri(url: str, redirect_uri: str) -> bool:
    got, wanted = urlsplit(url), urlsplit(redirect_uri)
    return (got.scheme, got.netloc, got.path) == (wanted.scheme, wanted.netloc, wanted.path)


def _describe(response: httpx.Response) -> str:
    """Status and the page's visible text, short: what a person at the browser would have read."""
    if not response.content:
        return f"{response.status_code} (empty body)"
    text = _INVISIBLE.sub(" ", response.text[:20000])
    words = " ".join(_TAG.sub(" ", text).split())
    return f"{response.status_code} {redaction.text(words[:240])}"


@dataclass
class BrowserFlow:
    """One sign-in: a fresh cookie jar (no single sign-on leaks from one user to the next)."""

    http: httpx.Client
    authorize_url: str
    client_id: str
    redirect_uri: str
    username: str
    password: str = field(repr=False)
    issuer: str | None = None

    def run(self, scope: str, audience: str, purpose: str | None = None) -> Authorization:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": state,
            "aud": audience,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if "openid" in scope.split():
            params["nonce"] = secrets.token_urlsafe(16)
        separator = "&" if urlsplit(self.authorize_url).query else "?"
        self.http.cookies.clear()
        try:
            back = self._walk(f"{self.authorize_url}{separator}{urlencode(params)}", purpose)
        finally:
            self.http.cookies.clear()
        return self._authorization(back, state, verifier)

    def _walk(self, url: str, purpose: str | None) -> str:
        """Follow pages and forms until the server redirects to the client; that URL."""
        response = self.http.get(url, headers={"Accept": HTML})
        logged_in = consented = False
        for _ in range(MAX_STEPS):
            if response.is_redirect:
                target = urljoin(str(response.url), str(response.headers.get("location", "")))
                if _is_redirect_uri(target, self.redirect_uri):
                    return target
                response = self.http.get(target, headers={"Accept": HTML})
                continue
            forms = forms_of(response.text) if "html" in response.headers.get("content-type", "") else []
            login, consent = login_form(forms), consent_form(forms)
            if login is not None:
                if logged_in:
                    raise LoginFailed(
                        f"the login page came back after signing in as {self.username}: wrong username or "
                        f"password? ({_describe(response)})"
                    )
                logged_in = True
                response = self._submit(response, login, login.login_fields(self.username, self.password))
            elif consent is not None and not consented:
                consented = True
                response = self._submit(response, consent, consent.consent_fields(purpose))
            else:
                raise LoginFailed(
                    f"signing in {self.username} with client {self.client_id}: unexpected answer {_describe(response)}"
                )
        raise LoginFailed(f"signing in {self.username}: no redirect to the client after {MAX_STEPS} steps")

    def _submit(self, page: httpx.Response, form: Form, data: dict[str, str]) -> httpx.Response:
        action = urljoin(str(page.url), form.action or str(page.url))
        if form.method == "post":
            return self.http.post(action, data=data, headers={"Accept": HTML})
        return self.http.get(action, params=data, headers={"Accept": HTML})

    def _authorization(self, back: str, state: str, verifier: str) -> Authorization:
        query = {k: v[0] for k, v in parse_qs(urlsplit(back).query, keep_blank_values=True).items()}
        if query.get("state") != state:
            raise AuthError("the authorization server sent the browser back with another state than the client's")
        issuer = query.get("iss")
        if issuer is not None and self.issuer is not None and issuer != self.issuer:
            # RFC 9207: a client must not use a code from another issuer than the one it asked (mix-up).
            raise AuthError(f"the redirect names issuer {issuer}, not {self.issuer} from the SMART configuration")
        if "error" in query:
            description = query.get("error_description", "")
            raise AuthorizeRefused(
                f"the authorization request of {self.username} with client {self.client_id} was refused: "
                f"{query['error']}" + (f" ({description})" if description else ""),
                query["error"],
            )
        code = query.get("code")
        if not code:
            raise AuthError("the redirect to the client carries neither a code nor an error")
        return Authorization(code, verifier, self.redirect_uri, state, self.client_id, issuer)
