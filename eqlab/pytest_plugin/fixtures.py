"""The fixtures checks use (registered by ``eqlab.pytest_plugin.plugin``): every client records evidence.

``fhir_client``      the FHIR base, carrying the plan's system token when the plan has auth settings
``anonymous_client`` the FHIR base without any token
``auth_client``      the target's origin (``/auth/...``, ``/.well-known/...``) without any token
``tokens``           session-wide token source: ``smart``, ``system(scope)``, ``user(role, scope,
                     purpose)`` -> TokenSet, ``client_for("system" | role)``, ``roles``; also
                     ``authorize``/``redeem``/``refresh`` and ``client_assertion`` for checks of the
                     flows themselves (see ``eqlab.oauth_client.lab.LabTokens``)
``client_run``       in a client run: the requests the client under test sent (``eqlab.clients.judging``)
``target``, ``evidence``, ``suite_params``, ``unique``

Without auth settings in the plan, ``anonymous_client``, ``auth_client`` and ``tokens`` skip the
check (its requirement stays untested: a plan that should cover auth must say how to log in).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eqlab.clients.captured import ClientRequest
from eqlab.clients.judging import ClientRun, Registration, load_journal
from eqlab.evidence.recorder import EvidenceClient, EvidenceRecorder
from eqlab.oauth_client.lab import LabTokens, origin_of
from eqlab.pytest_plugin.session import RECORDER_KEY, SESSION_KEY, LabSession, Target

NO_AUTH = "the plan's target has no auth settings (target.auth): the lab cannot log in"
NO_CLIENT_RUN = "not a client run: these checks judge what a client sent during a client plan's scenarios"
JSON = "application/json"


def _lab(request: pytest.FixtureRequest) -> LabSession:
    lab = request.config.stash.get(SESSION_KEY, None)
    if lab is None:
        pytest.skip("no system under test: run with --eqlab-target URL or through `eqlab run`")
    return lab


def _timeout(request: pytest.FixtureRequest) -> float:
    """Of one exchange: below the check's own timeout, so a hang is reported as the exchange's."""
    return max(1.0, _lab(request).suite_of(request.node).timeout * 0.8)


def _client(request: pytest.FixtureRequest, base_url: str, headers: dict[str, str] | None = None) -> EvidenceClient:
    lab = _lab(request)
    recorder: EvidenceRecorder = request.node.stash[RECORDER_KEY]
    return EvidenceClient(
        base_url, recorder, timeout=_timeout(request), transport=lab.transport, shared_transport=True, headers=headers
    )


def _require_auth(request: pytest.FixtureRequest) -> LabTokens:
    tokens = _lab(request).tokens()
    if tokens is None:
        pytest.skip(NO_AUTH)
    return tokens


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The system under test: base URL, environment and auth settings from the plan."""
    return _lab(request).target


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> EvidenceRecorder:
    """This check's evidence: exchanges are added by the clients; add remarks with ``note``."""
    _lab(request)
    recorder: EvidenceRecorder = request.node.stash[RECORDER_KEY]
    return recorder


@pytest.fixture
def fhir_client(request: pytest.FixtureRequest, target: Target, evidence: EvidenceRecorder) -> Iterator[EvidenceClient]:
    """An HTTP client on the FHIR base URL; relative paths (``"Patient/1"``) resolve against it.

    With auth settings it carries the plan's system token (``Authorization: Bearer``), obtained
    (or renewed) as any client would, the token request being this check's evidence when made.
    """
    tokens = _lab(request).tokens()
    headers = {}
    if tokens is not None and tokens.config.has_system_client:
        headers["Authorization"] = f"Bearer {tokens.system()}"
    with _client(request, target.base_url, headers) as client:
        yield client


@pytest.fixture
def anonymous_client(request: pytest.FixtureRequest, target: Target) -> Iterator[EvidenceClient]:
    """A client on the FHIR base URL without any token (what a caller who has none sends)."""
    _require_auth(request)
    with _client(request, target.base_url) as client:
        yield client


@pytest.fixture
def auth_client(request: pytest.FixtureRequest, target: Target) -> Iterator[EvidenceClient]:
    """A client on the target's origin (``scheme://host[:port]``) for ``/auth/...`` and ``/.well-known/...``,
    without any token; it accepts JSON by default and never follows redirects."""
    _require_auth(request)
    with _client(request, origin_of(target.base_url), {"Accept": JSON}) as client:
        yield client


@pytest.fixture(scope="session")
def tokens(request: pytest.FixtureRequest) -> LabTokens:
    """Tokens of the plan's principals (see the module's docstring); the check skips without auth settings."""
    return _require_auth(request)


@pytest.fixture
def suite_params(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The plan's parameters for the suite this check belongs to."""
    return dict(_lab(request).suite_of(request.node).params)


@pytest.fixture
def client_run(request: pytest.FixtureRequest, evidence: EvidenceRecorder) -> ClientRun:
    """The requests the client under test sent during the run's scenarios, and its registration;
    requests a check cites join its evidence. Outside a client run the check skips."""
    client = _lab(request).run_config.client
    if client is None:
        pytest.skip(NO_CLIENT_RUN)
    registration = Registration(client.client_id, tuple(client.redirect_uris), tuple(client.scopes))
    return ClientRun(_journal(client.journal), registration, evidence)


@functools.cache
def _journal(path: Path) -> list[ClientRequest]:
    return load_journal(path)


@pytest.fixture
def unique() -> str:
    """A value no other check or run uses, to keep this check's data apart on a shared system."""
    return f"eqlab-{uuid.uuid4().hex[:12]}"
