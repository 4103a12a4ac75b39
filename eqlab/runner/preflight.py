"""The pre-flight: what must hold before the first check, checked in seconds with one clear message.

Without it a run with an unset secret or an unreachable target spends minutes failing every check
for the same reason. Before any check the lab resolves every secret the plan names (all the
missing ones are named at once), reaches the target, and when the plan has auth settings fetches
the SMART configuration and one token, as the checks would.
"""

from __future__ import annotations

import os
import time

import httpx

from eqlab.evidence.origins import OffOrigin, guarded_client
from eqlab.oauth_client import AuthConfig, AuthError, TokenProvider, plain_http
from eqlab.oauth_client.client_key import load_signing_key
from eqlab.oauth_client.model import AuthConfigError
from eqlab.plan.loader import LoadedPlan, auth_settings
from eqlab.plan.model import ClientUnderTest

TIMEOUT_S = 5.0  # per request: a reachable target answers its metadata in well under this


class PreflightError(Exception):
    """Why the run cannot start; its text is the whole message for the user."""


def preflight(loaded: LoadedPlan, base_url: str) -> float:
    """Raise PreflightError naming what is wrong; return the seconds it took."""
    started = time.monotonic()
    settings = auth_settings(loaded.plan, loaded.path)
    config = AuthConfig.from_dict(settings) if settings else None
    if config is not None or loaded.plan.client is not None:
        _secrets(config, loaded.plan.client)
    _reach(base_url, loaded.plan.target.allowed_origins)
    if config is not None:
        _one_token(config, base_url, loaded.plan.target.allowed_origins)
    return time.monotonic() - started


def _secrets(config: AuthConfig | None, client_under_test: ClientUnderTest | None) -> None:
    """Every variable and file the auth settings and the client under test name, all the missing ones at once."""
    wanted: dict[str, str] = {}
    if config is not None:
        wanted.update(_auth_secrets(config))
    if client_under_test is not None:
        if client_under_test.secret_env:
            wanted[client_under_test.secret_env] = f"secret of the client under test {client_under_test.client_id}"
        for role, account in client_under_test.users.items():
            if account.password_env:
                wanted[account.password_env] = f"password of the {role} user {account.username} (client scenarios)"
    missing = [f"  {name} ({what})" for name, what in wanted.items() if not os.environ.get(name)]
    problems = []
    if missing:
        problems.append("\n".join([f"{len(missing)} environment variable(s) the plan names are not set:", *missing]))
    if config is not None and config.key_file is not None:
        try:
            load_signing_key(config.key_file)
        except AuthConfigError as exc:
            problems.append(str(exc))
        except (OSError, ValueError) as exc:
            problems.append(f"the key file {config.key_file} cannot be used: {exc}")
    if problems:
        raise PreflightError("\n".join(problems))


def _auth_secrets(config: AuthConfig) -> dict[str, str]:
    wanted: dict[str, str] = {}
    if config.secret_env:
        wanted[config.secret_env] = f"secret of client {config.client_id}"
    clients = {c.client_id: c for c in (config.login_client, *(u.login_client for u in config.users.values())) if c}
    for client in clients.values():
        if client.secret_env:
            wanted[client.secret_env] = f"secret of client {client.client_id}"
    for role, user in config.users.items():
        wanted[user.password_env] = f"password of the {role} user {user.username}"
    return wanted


def _reach(base_url: str, allowed: list[str]) -> None:
    url = f"{base_url}/metadata"
    try:
        with (
            guarded_client(base_url, allowed, TIMEOUT_S) as http,
            http.stream("GET", url, headers={"Accept": "application/fhir+json"}),
        ):
            pass  # an answer's status line is enough: the checks judge what it holds
    except httpx.TimeoutException:
        raise PreflightError(f"the target {base_url} did not answer within {TIMEOUT_S:.0f} s ({url})") from None
    except httpx.TransportError as exc:
        raise PreflightError(f"cannot reach the target {base_url}: {_why(exc)}") from None
    except OffOrigin as exc:
        raise PreflightError(f"the target {base_url} sent the lab elsewhere: {exc}") from None


def _one_token(config: AuthConfig, base_url: str, allowed: list[str]) -> None:
    provider = TokenProvider(config, base_url, plain_http(base_url, allowed, TIMEOUT_S))
    try:
        if config.has_system_client:
            provider.system_token(fresh=True)
        elif config.users:
            provider.user(sorted(config.users)[0], fresh=True)
        else:
            _ = provider.smart
    except (AuthError, AuthConfigError, OffOrigin) as exc:
        raise PreflightError(f"the lab could not get a token from {base_url}: {exc}") from None
    except httpx.TransportError as exc:
        raise PreflightError(f"the lab could not get a token from {base_url}: {_why(exc)}") from None


def _why(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__
