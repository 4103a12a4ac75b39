"""What the lab's OAuth client hands out (token sets) and how it reports a failed flow.

Error messages never quote a secret (password, client secret, code, verifier, token): they end
up in check results, logs and reports. Secret fields of ``TokenSet`` are left out of its repr for
the same reason, in case a check prints one in an assertion message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Tokens are renewed this long before they expire, so a check never starts with a token that dies
# in the middle of it (the plan's check timeout is typically under a minute).
RENEW_MARGIN_S = 60.0
DEFAULT_LIFETIME_S = 300  # when a token response omits expires_in (RFC 6749 §5.1 makes it optional)


class AuthError(Exception):
    """The lab could not obtain a token; the message says why and never quotes a secret."""


class AuthConfigError(AuthError):
    """The plan's auth settings cannot be used (an unset environment variable, an unreadable key)."""


class TokenRefused(AuthError):
    """The token endpoint answered with an error (RFC 6749 §5.2) or something that is not a token."""

    def __init__(self, message: str, status: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class AuthorizeRefused(AuthError):
    """The authorization server sent the browser back to the client with ``error`` (RFC 6749 §4.1.2.1)."""

    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.error = error


class LoginFailed(AuthError):
    """The login or consent pages did not lead to an authorization code (wrong password, odd page)."""


@dataclass(frozen=True)
class TokenSet:
    """A token response: the access token and what came with it (``raw`` is the whole JSON answer)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    scope: str | None = None
    patient: str | None = None
    expires_in: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    received: float = field(default_factory=time.monotonic, repr=False, compare=False)

    @classmethod
    def from_response(cls, body: dict[str, Any], requested_scope: str | None = None) -> TokenSet:
        given = body.get("expires_in")
        expires_in = int(given) if isinstance(given, int | float) and not isinstance(given, bool) else None
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=_text(body.get("refresh_token")),
            id_token=_text(body.get("id_token")),
            # RFC 6749 §5.1: a response without scope means the scope requested was granted.
            scope=_text(body.get("scope")) or requested_scope,
            patient=_text(body.get("patient")),
            expires_in=expires_in,
            raw=dict(body),
        )

    def remaining_s(self) -> float:
        lifetime = self.expires_in if self.expires_in is not None else DEFAULT_LIFETIME_S
        return self.received + lifetime - time.monotonic()

    def is_fresh(self, margin_s: float = RENEW_MARGIN_S) -> bool:
        """Still usable for a while: the lifetime left exceeds the margin (or half the lifetime, if shorter)."""
        lifetime = self.expires_in if self.expires_in is not None else DEFAULT_LIFETIME_S
        return self.remaining_s() > min(margin_s, lifetime / 2)


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value else None
