"""The test plan: what to test, against what, and how to decide the label (one YAML file per label).

Unknown keys are errors everywhere; secrets never appear in a plan (only the names of the
environment variables or files that hold them).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from eqlab.catalogue import REQUIREMENT_ID, SELECTOR
from eqlab.clients.scenarios import Scenario

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
Environment = Literal["integration", "qualification", "pre-production", "production"]
SuiteKind = Literal["contract", "fuzz", "load", "ui", "client"]
Level = Literal["SHALL", "SHOULD", "MAY"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ROLE = r"^[a-z][a-z0-9_]*$"
DEFAULT_SYSTEM_SCOPE = "system/*.cruds"


def _inline_secret(name: str, env_key: str, example: str) -> ValueError:
    return ValueError(
        f"'{name}' holds a secret inline; put it in an environment variable and name that variable in "
        f"'{env_key}' (e.g. {env_key}: {example})"
    )


class LoginClient(Strict):
    """The client application test users sign in through (authorization code + PKCE S256)."""

    client_id: str = Field(..., min_length=1)
    redirect_uri: str = Field(
        ..., min_length=1, description="a redirect URI registered for the client; the lab never calls it"
    )
    secret_env: str | None = Field(
        None, pattern=ENV_NAME, description="for a confidential client: the variable holding its secret"
    )
    scope: str | None = Field(None, description="scope users ask for through this client (default: patient scopes)")
    client_secret: str | None = Field(None, description="not allowed: use secret_env")

    @field_validator("client_secret")
    @classmethod
    def _no_inline_secret(cls, value: str | None) -> None:
        # a field validator, not a model one: it runs (and is reported) whatever else is wrong
        raise _inline_secret("client_secret", "secret_env", "EQLAB_LOGIN_CLIENT_SECRET")


class UserAccount(Strict):
    """A test user: the username and the NAME of the environment variable holding the password."""

    username: str = Field(..., min_length=1)
    password_env: str | None = Field(None, pattern=ENV_NAME, description="the variable holding the password")
    scope: str | None = Field(None, description="scope this user asks for (default: the login client's)")
    login_client: LoginClient | None = Field(None, description="this user's own login client (default: auth's)")
    password: str | None = Field(None, description="not allowed: use password_env")

    @field_validator("password")
    @classmethod
    def _no_inline_password(cls, value: str | None, info: ValidationInfo) -> None:
        username = str(info.data.get("username", "user"))
        raise _inline_secret("password", "password_env", "EQLAB_PASSWORD_" + username.upper()[:20])

    @model_validator(mode="after")
    def _password_by_name(self) -> UserAccount:
        if self.password_env is None:
            raise ValueError("'password_env' is required: the name of the environment variable holding the password")
        return self


class Auth(Strict):
    """How the lab authenticates to the SUT. Names of secrets, never the secrets."""

    client_id: str | None = Field(None, description="the lab's system client (client credentials)")
    key_file: str | None = Field(
        None, description="the system client's private key (JWK or PEM) for private_key_jwt, relative to the plan"
    )
    secret_env: str | None = Field(
        None, pattern=ENV_NAME, description="name of the environment variable holding a client secret"
    )
    token_url: str | None = Field(None, description="default: the token_endpoint of the SMART configuration")
    scope: str = Field(DEFAULT_SYSTEM_SCOPE, description="scope of the system client's tokens")
    login_client: LoginClient | None = None
    users: dict[Annotated[str, Field(pattern=ROLE)], UserAccount] = Field(
        default_factory=dict, description="role name (patient, practitioner...) -> test user"
    )
    client_secret: str | None = Field(None, description="not allowed: use secret_env")
    token: str | None = Field(None, description="not allowed: use secret_env")

    @field_validator("key_file")
    @classmethod
    def _key_by_path(cls, value: str | None) -> str | None:
        if value and "-----BEGIN" in value:
            raise ValueError("'key_file' holds a private key inline; save the key in a file and give its path")
        return value

    @field_validator("client_secret", "token")
    @classmethod
    def _no_inline_secrets(cls, value: str | None, info: ValidationInfo) -> None:
        raise _inline_secret(str(info.field_name), "secret_env", "EQLAB_CLIENT_SECRET")

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        proofs = [name for name in ("key_file", "secret_env") if getattr(self, name)]
        if len(proofs) > 1:
            raise ValueError("give 'key_file' (private_key_jwt) or 'secret_env' (client_secret_basic), not both")
        if self.client_id and not proofs:
            raise ValueError("'client_id' needs 'key_file' (private_key_jwt) or 'secret_env' (client_secret_basic)")
        if proofs and not self.client_id:
            raise ValueError(f"'{proofs[0]}' needs the 'client_id' of the system client it authenticates")
        lost = sorted(role for role, user in self.users.items() if user.login_client is None and not self.login_client)
        if lost:
            raise ValueError(f"users {', '.join(lost)} need a 'login_client' to sign in through")
        return self


class Target(Strict):
    base_url: str = Field(..., description="the FHIR base URL of the system under test")
    auth: Auth | None = None
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="other origins (scheme://host[:port]) that are part of the system under test, e.g. its "
        "authorization server; the lab sends nothing anywhere else, whatever the system answers",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.match(r"^https?://[^/\s?#]+/?\Z", value):
                raise ValueError(f"'{value}' is not an origin (scheme://host[:port], no path)")
        return values


def _selector(value: str) -> str:
    if not SELECTOR.match(value):
        raise ValueError(f"'{value}' is not a requirement ID or selector (service@n, service@n-m, service@*)")
    return value


Selector = Annotated[str, AfterValidator(_selector)]  # each entry checked alone: every bad one is named


class RequirementScope(Strict):
    include: list[Selector] = Field(
        default_factory=lambda: ["*@*"], description="IDs (fhir@3) or selectors (fhir@*, fhir@1-20)"
    )
    exclude: list[Selector] = Field(default_factory=list)


class Suite(Strict):
    kind: SuiteKind
    path: str | None = Field(None, description="folder or file under suites/ (default: suites/<kind>)")
    timeout: float = Field(60.0, gt=0, le=3600, description="seconds one check may take")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    scenarios: list[Scenario] = Field(
        default_factory=list, description="client suites: what the client under test is made to do, in order"
    )

    @field_validator("params")
    @classmethod
    def _load_distribution(cls, params: dict[str, str | int | float | bool], info: ValidationInfo) -> dict[str, Any]:
        if info.data.get("kind") != "load":
            return params
        workers = params.get("workers", 0)
        if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= MAX_LOAD_WORKERS:
            raise ValueError(
                f"'workers' must be a whole number from 0 (one process) to {MAX_LOAD_WORKERS}, not {workers!r}"
            )
        bind = params.get("master_bind")
        if bind is not None:
            if not isinstance(bind, str) or not re.match(r"^(\[[0-9a-fA-F:]+\]|[^\s:\[\]]+):\d{1,5}$", bind):
                raise ValueError(f"'master_bind' must be HOST:PORT (e.g. 0.0.0.0:5557), not {bind!r}")
            if not workers:
                raise ValueError("'master_bind' waits for workers started elsewhere: say how many in 'workers'")
        return params

    @model_validator(mode="after")
    def _scenarios_for_clients(self) -> Suite:
        if self.kind == "client" and not self.scenarios:
            raise ValueError("a client suite needs 'scenarios': what the client under test is made to do")
        if self.kind != "client" and self.scenarios:
            raise ValueError(f"only client suites have scenarios, not a {self.kind} suite")
        names = [s.name for s in self.scenarios]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"scenario names must be unique: {', '.join(repeated)}")
        return self

    @model_validator(mode="after")
    def _known_params(self) -> Suite:
        allowed = SUITE_PARAMS[self.kind]
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ValueError(
                f"unknown {self.kind} parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed)) or 'none'}"
            )
        return self


MAX_LOAD_WORKERS = 64  # locust workers of one load suite (processes here, or on other machines)
SUITE_PARAMS: dict[str, set[str]] = {
    "contract": set(),
    "fuzz": {"max_examples", "operations"},
    "load": {"users", "spawn_rate", "duration", "scenario", "workers", "master_bind"},
    "ui": {"headless"},
    "client": set(),
}


class ClientUnderTest(Strict):
    """The vendor's client, registered on the simulated platform before the first scenario."""

    client_id: str = Field(..., min_length=1)
    kind: Literal["public", "confidential", "system"]
    redirect_uris: list[str] = Field(default_factory=list, description="public and confidential clients")
    scope: str = Field(..., min_length=1, description="the scopes registered for it, space-separated")
    jwks_file: str | None = Field(
        None, description="its public key(s) for private_key_jwt (JWK, JWKS or PEM), relative to the plan"
    )
    secret_env: str | None = Field(None, pattern=ENV_NAME, description="a confidential client: its secret's variable")
    users: dict[Annotated[str, Field(pattern=ROLE)], UserAccount] = Field(
        default_factory=dict, description="the test users its scenarios sign in as (role -> user)"
    )

    @model_validator(mode="after")
    def _complete(self) -> ClientUnderTest:
        if self.kind == "system" and not self.jwks_file:
            raise ValueError("a system client needs 'jwks_file': the public key of its private_key_jwt assertions")
        if self.kind == "confidential" and not self.secret_env:
            raise ValueError("a confidential client needs 'secret_env': the variable holding its secret")
        if self.kind != "system" and not self.redirect_uris:
            raise ValueError(f"a {self.kind} client needs 'redirect_uris'")
        return self


class Platform(Strict):
    """What a client under test talks to: the embedded reference implementation, or a running sandbox."""

    embedded: Literal["reference"] | None = Field(
        None, description="start it for the run: a fresh store, seeded with the demo data"
    )
    url: str | None = Field(None, description="the FHIR base URL of an already running platform")

    @model_validator(mode="after")
    def _one_of(self) -> Platform:
        if (self.embedded is None) == (self.url is None):
            raise ValueError("give exactly one of 'embedded: reference' or 'url'")
        return self


# Where an embedded platform's address goes before it is started (the run replaces it).
EMBEDDED_PLATFORM_PLACEHOLDER = "http://127.0.0.1:0/fhir"


class Slos(Strict):
    p95_ms: float | None = Field(None, gt=0)
    p99_ms: float | None = Field(None, gt=0)
    error_rate: float | None = Field(None, ge=0, le=1)
    throughput_rps: float | None = Field(None, gt=0)

    def defined(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Reservations(Strict):
    """How many non-SHALL failures still allow a label (with reservations)."""

    max_should_failures: int = Field(3, ge=0)
    max_may_failures: int = Field(10, ge=0)


class DecisionRules(Strict):
    reservations: Reservations = Field(default_factory=Reservations)
    security_services: list[str] = Field(
        default_factory=lambda: ["auth", "audit"], description="services whose every failure refuses the label"
    )
    validity_days: int = Field(365, ge=1, le=1825, description="how long a granted label is valid")


class NotTested(Strict):
    requirement: Annotated[str, Field(pattern=REQUIREMENT_ID)]
    reason: str = Field(..., min_length=3)


class Attestation(Strict):
    requirement: Annotated[str, Field(pattern=REQUIREMENT_ID)]
    evidence: str = Field(..., description="path of the evidence file, relative to the plan")
    reviewer: str = Field(..., min_length=2)
    date: dt.date
    note: str | None = None


class Plan(Strict):
    name: str
    label: str = Field(..., pattern=r"^[a-z0-9][a-z0-9-]*$", description="the label this plan certifies")
    version: str
    description: str | None = None
    environment: Environment
    target: Target = Field(..., description="the system under test; for a client plan, set from 'platform'")
    platform: Platform | None = Field(None, description="client plans: the platform the client talks to")
    client: ClientUnderTest | None = Field(None, description="client plans: the client under test")
    requirements: RequirementScope = Field(default_factory=RequirementScope)
    suites: list[Suite] = Field(..., min_length=1)
    slos: Slos = Field(default_factory=Slos)
    decision: DecisionRules = Field(default_factory=DecisionRules)
    not_tested: list[NotTested] = Field(default_factory=list)
    attestations: list[Attestation] = Field(default_factory=list)
    allow_production: bool = Field(False, description="let load and fuzz suites run against a production target")
    time_budget_s: float = Field(
        3600.0,
        gt=0,
        le=86_400,
        description="the whole run's time budget in seconds: when it is spent the run stops, the checks "
        "that did not finish are not tested and the verdict is at most inconclusive",
    )

    @model_validator(mode="before")
    @classmethod
    def _target_from_platform(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("platform"), dict):
            if "target" in data:
                raise ValueError("a client plan's target is its 'platform': remove 'target'")
            platform = data["platform"]
            data = {**data, "target": {"base_url": platform.get("url") or EMBEDDED_PLATFORM_PLACEHOLDER}}
        return data

    @model_validator(mode="after")
    def _client_plans_are_whole(self) -> Plan:
        has_client_suite = any(s.kind == "client" for s in self.suites)
        if has_client_suite and (self.client is None or self.platform is None):
            raise ValueError("a plan with a client suite needs 'client' (the client under test) and 'platform'")
        if not has_client_suite and (self.client is not None or self.platform is not None):
            raise ValueError("'client' and 'platform' belong to plans with a client suite")
        if self.client is not None:
            users = set(self.client.users)
            unknown = sorted(
                {s.user for suite in self.suites for s in suite.scenarios if s.user and s.user not in users}
            )
            if unknown:
                raise ValueError(f"scenarios sign in as {', '.join(unknown)}, not among client.users")
        return self

    @model_validator(mode="after")
    def _production_needs_consent(self, info: ValidationInfo) -> Plan:
        risky = sorted({s.kind for s in self.suites if s.kind in ("load", "fuzz")})
        allowed = self.allow_production or bool((info.context or {}).get("allow_production"))
        if self.environment == "production" and risky and not allowed:
            raise ValueError(
                f"the target is production and the plan runs {' and '.join(risky)} suites: "
                "refused unless allow_production is true in the plan or --allow-production is given"
            )
        return self

    def suite_kinds(self) -> list[str]:
        return [s.kind for s in self.suites]
