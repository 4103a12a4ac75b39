"""FHIR REST as a client: the media types, the bearer token, Retry-After and a fresh token after 401."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from reference_client.smart import ScenarioFailed
from reference_client.wire import Wire

FHIR_JSON = "application/fhir+json"
MAX_RETRIES = 3  # after 503/429: then give up
STORM_RETRIES = 10  # the retry-storm-after-401 fault's loop
MAX_RETRY_AFTER_S = 120  # a longer wait is not worth it: give up instead
RETRYABLE = (429, 503)


def retry_after_seconds(answer: httpx.Response) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = answer.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def invalid_token(answer: httpx.Response) -> bool:
    return answer.status_code == 401 and 'error="invalid_token"' in answer.headers.get("www-authenticate", "")


@dataclass
class Fhir:
    """Requests to the FHIR base with a bearer token from ``new_token`` (asked again after a 401)."""

    base: str
    wire: Wire
    faults: frozenset[str]
    new_token: Callable[[], str]
    token: str | None = None

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base}/{path.lstrip('/')}" if path else self.base

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        if self.token is None:
            self.token = self.new_token()
        answer = self._with_retry_after(method, path, body, headers or {})
        if not invalid_token(answer):
            return answer
        if "retry-storm-after-401" in self.faults:
            for _ in range(STORM_RETRIES):
                answer = self._with_retry_after(method, path, body, headers or {})
                if not invalid_token(answer):
                    return answer
            return answer
        self.token = self.new_token()  # the token was refused: a new one, and one retry only
        return self._with_retry_after(method, path, body, headers or {})

    def _with_retry_after(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> httpx.Response:
        for attempt in range(MAX_RETRIES + 1):
            answer = self._send(method, path, body, headers)
            if answer.status_code not in RETRYABLE or attempt == MAX_RETRIES:
                return answer
            if "retry-after-ignored" not in self.faults:
                wait = retry_after_seconds(answer)
                if wait is not None and wait > MAX_RETRY_AFTER_S:
                    return answer
                time.sleep(wait if wait is not None else 1.0)
        return answer

    def _send(self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> httpx.Response:
        assert self.token is not None
        all_headers = {"Accept": FHIR_JSON, **headers}
        params: dict[str, str] = {}
        if "token-in-query" in self.faults:
            params["access_token"] = self.token
        else:
            all_headers["Authorization"] = f"Bearer {self.token}"
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json" if "json-content-type" in self.faults else FHIR_JSON
        return self.wire.http.request(
            method, self.url(path), content=content, headers=all_headers, params=params or None
        )


def expect(answer: httpx.Response, *statuses: int, what: str) -> dict[str, Any]:
    """The JSON body of an answer with one of ``statuses``; otherwise the scenario fails naming it."""
    if answer.status_code not in statuses:
        raise ScenarioFailed(f"{what}: HTTP {answer.status_code} {_diagnostics(answer)}".rstrip())
    body: dict[str, Any] = answer.json() if answer.content else {}
    return body


def _diagnostics(answer: httpx.Response) -> str:
    try:
        issues = answer.json().get("issue", [])
    except ValueError:
        return ""
    return "; ".join(str(issue.get("diagnostics", issue.get("code", ""))) for issue in issues)
