"""What ``eqlab token`` does once it knows the client and the user: get an access token over HTTP.

A system token by client credentials (``private_key_jwt`` with the key file); a user's by the
code + PKCE flow through the login client, posting the platform's own login and consent forms.
The reference implementation's demo accounts are looked up by ``eqlab.cli`` (the only engine
module that may import it); nothing here knows about them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eqlab.evidence.origins import guarded_client
from eqlab.oauth_client import oauth
from eqlab.oauth_client.browser import BrowserFlow
from eqlab.oauth_client.client_key import load_signing_key
from eqlab.oauth_client.model import AuthError
from eqlab.oauth_client.oauth import ClientAuth

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SignIn:
    """A user signing in through a login client."""

    client_id: str
    redirect_uri: str
    username: str
    password: str = field(repr=False)
    client_secret: str | None = field(default=None, repr=False)
    purpose: str | None = None


def system_token(base: str, client_id: str, key_file: Path, scope: str) -> str:
    client = ClientAuth(client_id, signing_key=load_signing_key(key_file))
    with guarded_client(base, timeout=TIMEOUT_S) as http:
        smart = oauth.discover(http, base)
        return oauth.client_credentials(http, str(smart["token_endpoint"]), client, scope).access_token


def user_token(base: str, sign_in: SignIn, scope: str) -> str:
    with guarded_client(base, timeout=TIMEOUT_S) as http:
        smart = oauth.discover(http, base)
        issuer, endpoint = smart.get("issuer"), smart.get("authorization_endpoint")
        if not isinstance(endpoint, str):
            raise AuthError(f"the SMART configuration of {base} names no authorization_endpoint")
        flow = BrowserFlow(
            http,
            endpoint,
            sign_in.client_id,
            sign_in.redirect_uri,
            sign_in.username,
            sign_in.password,
            issuer if isinstance(issuer, str) else None,
        )
        code = flow.run(scope, base.rstrip("/"), sign_in.purpose)
        client = ClientAuth(sign_in.client_id, secret=sign_in.client_secret)
        token_url = str(smart["token_endpoint"])
        return oauth.exchange_code(http, token_url, client, code.code, code.verifier, code.redirect_uri).access_token
