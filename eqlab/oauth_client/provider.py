"""Tokens on demand for the lab: discovered endpoints, cached per principal and scope, renewed in time.

A system token comes from client credentials; a user token from the code + PKCE flow through the
plan's login client. Both are cached per (client, user, scope, purpose) and renewed a minute
before they expire (a user's by its refresh token when it has one, else by signing in again).
Every HTTP exchange goes through the client ``open_http`` gives, which inside a check records it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from eqlab.evidence.origins import guarded_client
from eqlab.oauth_client import oauth
from eqlab.oauth_client.browser import Authorization, BrowserFlow
from eqlab.oauth_client.config import SYSTEM, AuthConfig, LoginClient
from eqlab.oauth_client.model import AuthError, TokenSet
from eqlab.oauth_client.oauth import ClientAuth

OpenHttp = Callable[[], AbstractContextManager[httpx.Client]]
CacheKey = tuple[str, ...]


def plain_http(base_url: str, allowed: Iterable[str] = (), timeout: float = 30.0) -> OpenHttp:
    """Plain clients for use outside checks (the load runner), sending to the target's origin only."""
    return lambda: guarded_client(base_url, allowed, timeout)


class TokenProvider:
    def __init__(self, config: AuthConfig, fhir_base: str, open_http: OpenHttp) -> None:
        self.config = config
        self.fhir_base = fhir_base.rstrip("/")
        self.open_http = open_http
        self._smart: dict[str, Any] | None = None
        self._system_auth: ClientAuth | None = None
        self._cache: dict[CacheKey, TokenSet] = {}
        self._issued_by: dict[str, LoginClient] = {}  # refresh token -> the client that may use it
        # Every secret handled, so that the lab can scrub them from what checks print or raise
        # (opaque refresh tokens, codes and passwords match no pattern).
        self.secrets: set[str] = set()

    @property
    def roles(self) -> list[str]:
        return sorted(self.config.users)

    @property
    def smart(self) -> dict[str, Any]:
        """The SMART configuration (fetched once)."""
        if self._smart is None:
            with self.open_http() as http:
                self._smart = oauth.discover(http, self.fhir_base)
        return self._smart

    @property
    def token_url(self) -> str:
        return self.config.token_url or str(self.smart["token_endpoint"])

    # --- system ----------------------------------------------------------------------------------

    def system_token(self, scope: str | None = None, fresh: bool = False) -> TokenSet:
        """A token of the plan's system client (client credentials); ``fresh`` bypasses the cache."""
        wanted = scope or self.config.scope
        if self._system_auth is None:
            self._system_auth = self.config.system_auth()  # reads the key file once
            self._keep(self._system_auth.secret)
        key = (SYSTEM, self._system_auth.client_id, wanted)
        cached = self._cache.get(key)
        if cached is not None and cached.is_fresh() and not fresh:
            return cached
        with self.open_http() as http:
            tokens = oauth.client_credentials(http, self.token_url, self._system_auth, wanted)
        self._keep(tokens.access_token)
        if not fresh:
            self._cache[key] = tokens
        return tokens

    def system(self, scope: str | None = None, fresh: bool = False) -> str:
        """The access token of the plan's system client for ``scope`` (default: the plan's scope)."""
        return self.system_token(scope, fresh).access_token

    # --- users -----------------------------------------------------------------------------------

    def user(self, role: str, scope: str | None = None, purpose: str | None = None, fresh: bool = False) -> TokenSet:
        """Tokens of the plan's user ``role`` (code + PKCE through the login client); ``fresh``: a new
        grant, not cached, for a check that spends it (revokes, replays, refreshes it)."""
        client = self.config.login_client_for(role)
        wanted = scope or self.config.user_scope(role)
        key = ("user", client.client_id, self.config.user(role).username, wanted, purpose or "")
        cached = None if fresh else self._cache.get(key)
        if cached is not None and cached.is_fresh():
            return cached
        if cached is not None and cached.refresh_token:
            try:
                return self.refresh(cached)
            except AuthError:
                pass  # an expired or revoked grant: sign in again
        tokens = self.redeem(self.authorize(role, wanted, purpose))
        if not fresh:
            self._cache[key] = tokens
        return tokens

    def authorize(self, role: str, scope: str | None = None, purpose: str | None = None) -> Authorization:
        """Sign ``role`` in and consent: the authorization code and its PKCE verifier, not yet redeemed."""
        user, client = self.config.user(role), self.config.login_client_for(role)
        endpoint = self.smart.get("authorization_endpoint")
        if not isinstance(endpoint, str):
            raise AuthError("the SMART configuration names no authorization_endpoint: users cannot sign in")
        issuer = self.smart.get("issuer")
        password = user.password(role)
        self._keep(password)
        with self.open_http() as http:
            flow = BrowserFlow(
                http,
                endpoint,
                client.client_id,
                client.redirect_uri,
                user.username,
                password,
                issuer if isinstance(issuer, str) else None,
            )
            authorization = flow.run(scope or self.config.user_scope(role), self.fhir_base, purpose)
        self._keep(authorization.code, authorization.verifier)
        return authorization

    def redeem(self, authorization: Authorization) -> TokenSet:
        """Exchange an authorization code (with its verifier) at the token endpoint."""
        client = self._login_client(authorization.client_id)
        with self.open_http() as http:
            code, verifier = authorization.code, authorization.verifier
            tokens = oauth.exchange_code(
                http, self.token_url, self._client_auth(client), code, verifier, authorization.redirect_uri
            )
        self._remember(tokens, client)
        return tokens

    def refresh(self, tokens: TokenSet, scope: str | None = None) -> TokenSet:
        """Use ``tokens``' refresh token; the new set replaces the old one in the cache (the old
        refresh token is spent: servers rotate them)."""
        client = self._issued_by.get(tokens.refresh_token or "")
        if client is None:
            raise AuthError("this token set has no refresh token the lab obtained through tokens.user")
        assert tokens.refresh_token is not None
        with self.open_http() as http:
            renewed = oauth.refresh(http, self.token_url, self._client_auth(client), tokens.refresh_token, scope)
        self._remember(renewed, client)
        for key, cached in list(self._cache.items()):
            if cached.refresh_token != tokens.refresh_token:
                continue
            if scope is None:
                self._cache[key] = renewed
            else:  # a narrowed set is the caller's; the cached one's refresh token is spent
                del self._cache[key]
        return renewed

    def _client_auth(self, client: LoginClient) -> ClientAuth:
        auth = client.auth()
        self._keep(auth.secret)
        return auth

    def _keep(self, *values: str | None) -> None:
        self.secrets.update(v for v in values if v)

    def _remember(self, tokens: TokenSet, client: LoginClient) -> None:
        self._keep(tokens.access_token, tokens.refresh_token, tokens.id_token)
        if tokens.refresh_token:
            self._issued_by[tokens.refresh_token] = client

    def _login_client(self, client_id: str) -> LoginClient:
        clients = [self.config.login_client, *(u.login_client for u in self.config.users.values())]
        found = next((c for c in clients if c is not None and c.client_id == client_id), None)
        if found is None:
            raise AuthError(f"client {client_id} is not a login client of the plan")
        return found
