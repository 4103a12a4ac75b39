"""What the client checks share: finding the OAuth and FHIR requests in a client run.

The authorization server's endpoints are those the platform announced in the discovery documents
the client fetched (so a platform with other paths is judged the same); a client that never asked
is judged on the usual paths (``…/authorize``, ``…/token``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from eqlab.checks import ClientRequest, ClientRun

DISCOVERY = r".*/\.well-known/(smart-configuration|openid-configuration)"
ENDPOINT_KEYS = {
    "authorize": "authorization_endpoint",
    "token": "token_endpoint",
    "revoke": "revocation_endpoint",
    "introspect": "introspection_endpoint",
}


def discovery_requests(run: ClientRun) -> list[ClientRequest]:
    return run.where("GET", DISCOVERY)


def endpoint_path(run: ClientRun, name: str) -> str:
    """The path of an authorization server endpoint (``authorize``, ``token``…), as a regular expression."""
    key = ENDPOINT_KEYS[name]
    for request in discovery_requests(run):
        announced = request.response_json.get(key) if isinstance(request.response_json, dict) else None
        if isinstance(announced, str):
            return _literal(urlsplit(announced).path)
    return rf".*/{name}"


def _literal(path: str) -> str:
    return "".join(f"\\{c}" if c in ".^$*+?{}[]\\|()" else c for c in path)


def authorize_requests(run: ClientRun) -> list[ClientRequest]:
    """The authorization requests the client made: not the platform's own redirects back to the
    authorization endpoint (after its login page) that the user agent follows."""
    asked = run.where(path=endpoint_path(run, "authorize"), keep=lambda r: r.param("response_type") is not None)
    return [r for r in asked if not _follows_a_redirect(run, r)]


def _follows_a_redirect(run: ClientRun, request: ClientRequest) -> bool:
    target = (request.path, sorted(request.query))
    return any(
        _target_of(r.response_headers["location"]) == target
        for r in run.requests
        if r.scenario == request.scenario and r.n < request.n and "location" in r.response_headers
    )


def _target_of(location: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(location)
    return parts.path, sorted(parse_qsl(parts.query, keep_blank_values=True))


def token_requests(run: ClientRun, grant_type: str | None = None) -> list[ClientRequest]:
    return run.where(
        "POST",
        endpoint_path(run, "token"),
        keep=lambda r: r.param("grant_type") is not None and grant_type in (None, r.param("grant_type")),
    )


def preceding(request: ClientRequest, among: list[ClientRequest]) -> ClientRequest | None:
    """The last of ``among`` that arrived before ``request`` in the same scenario."""
    earlier = [r for r in among if r.scenario == request.scenario and r.n < request.n]
    return earlier[-1] if earlier else None


def nothing_to_judge(what: str) -> None:
    """Skip: the run has none of what the check judges (its requirement stays unverified)."""
    pytest.skip(f"no {what} reached the platform in this run: nothing to judge")


def fhir_requests(run: ClientRun, base_path: str) -> list[ClientRequest]:
    """Requests to the FHIR API (not its discovery documents)."""
    return run.where(
        path=_literal(base_path.rstrip("/")) + r"(/.*)?",
        keep=lambda r: "/.well-known/" not in r.path,
    )
