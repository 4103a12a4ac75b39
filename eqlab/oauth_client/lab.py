"""The ``tokens`` object checks get: a TokenProvider whose every exchange is the running check's evidence.

The object lives for the whole pytest session (so tokens are cached across checks), but each
exchange is recorded by the recorder of the check running at that moment; clients handed out by
``client_for`` are closed when that check ends.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from urllib.parse import urlsplit

import httpx

from eqlab.evidence.recorder import EvidenceClient, EvidenceRecorder
from eqlab.oauth_client.client_key import ASSERTION_LIFETIME_S, client_assertion
from eqlab.oauth_client.config import SYSTEM, AuthConfig
from eqlab.oauth_client.provider import TokenProvider

JSON = "application/json"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class LabTokens(TokenProvider):
    """``tokens.smart``, ``tokens.system()``, ``tokens.user()``, ``tokens.client_for()``, ``tokens.roles``."""

    def __init__(
        self,
        config: AuthConfig,
        fhir_base: str,
        recorder: Callable[[], EvidenceRecorder],
        transport: httpx.BaseTransport,
        timeout: float = 30.0,
    ) -> None:
        self._recorder = recorder
        self._transport = transport
        self._timeout = timeout
        self._open: list[EvidenceClient] = []
        super().__init__(config, fhir_base, self._evidence_http)

    def _evidence_http(self) -> AbstractContextManager[httpx.Client]:
        return self.evidence_client(origin_of(self.fhir_base), {"Accept": JSON})

    def evidence_client(self, base_url: str, headers: dict[str, str] | None = None) -> EvidenceClient:
        """A client recording into the running check's evidence, on the session's connection pool."""
        return EvidenceClient(
            base_url,
            self._recorder(),
            timeout=self._timeout,
            transport=self._transport,
            shared_transport=True,
            headers=headers,
        )

    def client_for(self, principal: str, scope: str | None = None) -> EvidenceClient:
        """A client on the FHIR base carrying the token of ``principal``: ``"system"`` or a role of the
        plan (``scope``: a token for that scope instead of the plan's)."""
        token = self.system(scope) if principal == SYSTEM else self.user(principal, scope).access_token
        client = self.evidence_client(self.fhir_base, {"Authorization": f"Bearer {token}"})
        self._open.append(client)
        return client

    def client_assertion(
        self, audience: str | None = None, lifetime_s: int = ASSERTION_LIFETIME_S, **claims: object
    ) -> str:
        """A client assertion of the plan's system client (aud: the token endpoint), ``claims`` overriding
        the defaults: for checks of the token endpoint's assertion handling (replay, lifetime...)."""
        auth = self.config.system_auth()
        if auth.signing_key is None:
            raise ValueError("the plan's system client has no key_file: it does not use private_key_jwt")
        signed = client_assertion(auth.signing_key, auth.client_id, audience or self.token_url, lifetime_s, claims)
        self._keep(signed)
        return signed

    def close_clients(self) -> None:
        """Close what ``client_for`` opened for the check that just ended."""
        while self._open:
            self._open.pop().close()
