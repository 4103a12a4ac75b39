"""The lab's auth settings (the plan's ``target.auth``), and reading the secrets they name.

The plan names environment variables and files, never secrets; they are read here, when a token
is needed, so an unset variable is reported by the check that needed it, by name, not by value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eqlab.oauth_client.client_key import SigningKey, load_signing_key
from eqlab.oauth_client.model import AuthConfigError
from eqlab.oauth_client.oauth import ClientAuth

DEFAULT_SYSTEM_SCOPE = "system/*.cruds"
DEFAULT_USER_SCOPE = "openid fhirUser profile offline_access launch/patient patient/*.cruds"
SYSTEM = "system"  # the principal name ``tokens.client_for`` takes for the plan's system client


def secret_from(env_name: str, what: str) -> str:
    value = os.environ.get(env_name)
    if not value:
        raise AuthConfigError(f"the environment variable {env_name} ({what}) is not set")
    return value


@dataclass(frozen=True)
class LoginClient:
    """The client through which test users sign in (authorization code + PKCE)."""

    client_id: str
    redirect_uri: str
    secret_env: str | None = None
    scope: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoginClient:
        return cls(str(data["client_id"]), str(data["redirect_uri"]), data.get("secret_env"), data.get("scope"))

    def auth(self) -> ClientAuth:
        if self.secret_env is None:
            return ClientAuth(self.client_id)  # a public client: PKCE is its only proof
        return ClientAuth(self.client_id, secret=secret_from(self.secret_env, f"secret of client {self.client_id}"))


@dataclass(frozen=True)
class PlanUser:
    username: str
    password_env: str
    scope: str | None = None
    login_client: LoginClient | None = None

    def password(self, role: str) -> str:
        return secret_from(self.password_env, f"password of the {role} user {self.username}")


@dataclass(frozen=True)
class AuthConfig:
    client_id: str | None = None
    key_file: Path | None = None
    secret_env: str | None = None
    token_url: str | None = None
    scope: str = DEFAULT_SYSTEM_SCOPE
    login_client: LoginClient | None = None
    users: dict[str, PlanUser] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: Path | None = None) -> AuthConfig:
        """From the plan's ``target.auth`` (as dumped into the run configuration); a relative
        ``key_file`` is resolved against ``base_dir`` (the plan's folder)."""
        key_file = Path(data["key_file"]) if data.get("key_file") else None
        if key_file is not None and not key_file.is_absolute() and base_dir is not None:
            key_file = (base_dir / key_file).resolve()
        login = LoginClient.from_dict(data["login_client"]) if data.get("login_client") else None
        users = {
            role: PlanUser(
                str(user["username"]),
                str(user["password_env"]),
                user.get("scope"),
                LoginClient.from_dict(user["login_client"]) if user.get("login_client") else None,
            )
            for role, user in (data.get("users") or {}).items()
        }
        return cls(
            client_id=data.get("client_id"),
            key_file=key_file,
            secret_env=data.get("secret_env"),
            token_url=data.get("token_url"),
            scope=data.get("scope") or DEFAULT_SYSTEM_SCOPE,
            login_client=login,
            users=users,
        )

    @property
    def has_system_client(self) -> bool:
        return self.client_id is not None and (self.key_file is not None or self.secret_env is not None)

    def system_auth(self) -> ClientAuth:
        if self.client_id is None or not self.has_system_client:
            raise AuthConfigError("the plan's target.auth names no system client (client_id, key_file or secret_env)")
        if self.key_file is not None:
            return ClientAuth(self.client_id, signing_key=self.signing_key())
        assert self.secret_env is not None
        return ClientAuth(self.client_id, secret=secret_from(self.secret_env, f"secret of client {self.client_id}"))

    def signing_key(self) -> SigningKey:
        assert self.key_file is not None
        return load_signing_key(self.key_file)

    def user(self, role: str) -> PlanUser:
        found = self.users.get(role)
        if found is None:
            known = ", ".join(sorted(self.users)) or "none"
            raise AuthConfigError(f"the plan's target.auth.users has no role {role!r} (roles: {known})")
        return found

    def login_client_for(self, role: str) -> LoginClient:
        client = self.user(role).login_client or self.login_client
        if client is None:
            raise AuthConfigError(f"the plan's target.auth names no login_client for the {role} user")
        return client

    def named_secrets(self) -> list[str]:
        """The values of the environment variables the settings name (those that are set): what a
        log must never show, though no pattern recognises a password."""
        clients = [self.login_client, *(u.login_client for u in self.users.values())]
        names = [self.secret_env, *(c.secret_env for c in clients if c), *(u.password_env for u in self.users.values())]
        return [os.environ[name] for name in names if name and os.environ.get(name)]

    def user_scope(self, role: str) -> str:
        return self.user(role).scope or self.login_client_for(role).scope or DEFAULT_USER_SCOPE
