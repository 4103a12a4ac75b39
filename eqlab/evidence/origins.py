"""The lab's one rule for where it sends requests: the system under test's origin, nothing else.

A hostile or misconfigured system can point the lab elsewhere: a redirect from its authorize
endpoint to another host (the lab would post the test users' passwords there), a ``next`` link or
a discovery document naming another server, a load request redirected and re-sent. Every HTTP
client of the lab goes through ``OriginGuard``, which refuses any request to an origin the plan
did not name, before a connection is opened; the check that asked fails with the reason. The lab's
clients never follow redirects by themselves: the browser flow follows them one by one, through
the guard.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from eqlab.evidence.recorder import DEFAULT_MAX_RESPONSE, CappingTransport

DEFAULT_PORTS = {"http": 80, "https": 443}


class OffOrigin(httpx.TransportError):
    """The lab refused to send a request to another origin than the system under test's."""


def origin_key(url: str) -> str:
    """``scheme://host:port`` of ``url``, the port always written (so ``:80`` and no port are one origin)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        port = 0
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


def allowed_origins(base_url: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The target's origin and those the plan adds (``target.allowed_origins``)."""
    return frozenset(origin_key(u) for u in (base_url, *extra))


class OriginGuard(httpx.BaseTransport):
    """A transport that sends only to ``allowed`` origins and raises ``OffOrigin`` for any other."""

    def __init__(self, inner: httpx.BaseTransport, allowed: frozenset[str]) -> None:
        self.inner = inner
        self.allowed = allowed

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check(str(request.url), self.allowed, request.method)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def check(url: str, allowed: frozenset[str], method: str = "GET") -> None:
    """Raise ``OffOrigin`` unless ``url`` is on an allowed origin."""
    origin = origin_key(url)
    if origin not in allowed:
        known = ", ".join(sorted(allowed))
        raise OffOrigin(
            f"the system under test led the lab to {method} {_short(url)}, on another origin than its own "
            f"({known}): the lab sends nothing there (list it in target.allowed_origins if it is part of "
            "the system under test)"
        )


def _short(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]


def guarded_client(base_url: str, extra: Iterable[str] = (), timeout: float = 30.0) -> httpx.Client:
    """A plain client (no evidence) that talks to the system under test at ``base_url`` only; each
    response whole within ``timeout`` and the evidence clients' size bound (a trickling server
    cannot hold the lab)."""
    capped = CappingTransport(httpx.HTTPTransport(), DEFAULT_MAX_RESPONSE, timeout)
    transport = OriginGuard(capped, allowed_origins(base_url, extra))
    return httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)
