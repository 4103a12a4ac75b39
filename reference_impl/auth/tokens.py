"""Access tokens: JWTs signed ES256 with the claims of SPEC section 2, and their validation.

Validation accepts ES256 only (so ``alg: none`` and an HS256 token "signed" with the public key
are rejected), a known ``kid``, the expected ``iss`` and ``aud``, ``exp``/``nbf``/``iat`` within a
small clock leeway, and a ``jti`` not revoked. Every failure is a ``TokenInvalid`` whose reason
goes to ``WWW-Authenticate: Bearer error="invalid_token"``.

Verifying the signature and claims is most of the cost of an authenticated request, and a client
sends the same token for minutes: ``VerifiedTokens`` remembers verified tokens (by their SHA-256,
never the token itself), bounded, each until the token expires. A remembered token is still refused
once revoked (the revocation is looked up on every request, so a revocation by any server process
counts at once) or once its signing key is no longer trusted.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import ECKey
from joserfc.jwt import JWTClaimsRegistry

from reference_impl.auth.keys import ALGORITHM
from reference_impl.auth.principal import Principal
from reference_impl.auth.scopes import Scopes
from reference_impl.lru import LruMemory

LEEWAY_S = 5
REQUIRED = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "subject_role")
VERIFIED_TOKENS_KEPT = 10_000


class TokenInvalid(Exception):
    """The bearer token is not acceptable; ``reason`` says why (safe to show the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def issue(key: ECKey, claims: dict[str, Any], lifetime_s: int, now: int | None = None) -> tuple[str, dict[str, Any]]:
    """A signed access token and its full claims (``iat``, ``exp``, ``jti`` added)."""
    now = now or int(time.time())
    full = {**claims, "iat": now, "nbf": now, "exp": now + lifetime_s, "jti": secrets.token_urlsafe(24)}
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "at+jwt"}
    return jwt.encode(header, full, key, algorithms=[ALGORITHM]), full


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    kid: str


class VerifiedTokens:
    """Tokens whose signature and claims verified, for one audience each: a bounded LRU by SHA-256."""

    def __init__(self, capacity: int = VERIFIED_TOKENS_KEPT) -> None:
        self._entries: LruMemory[tuple[bytes, str], _Verified] = LruMemory(capacity)

    @property
    def capacity(self) -> int:
        return self._entries.capacity

    @staticmethod
    def _key(token: str, audience: str) -> tuple[bytes, str]:
        return hashlib.sha256(token.encode()).digest(), audience

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, audience: str, now: int) -> _Verified | None:
        key = self._key(token, audience)
        found = self._entries.get(key)
        if found is not None and now >= found.principal.expires_at:  # from its expiry on, validation decides
            self._entries.forget(key)
            return None
        return found

    def put(self, token: str, audience: str, kid: str, principal: Principal) -> None:
        self._entries.put(self._key(token, audience), _Verified(principal, kid))


def validate(
    token: str,
    find_key: Callable[[str], ECKey | None],
    issuer: str,
    audience: str,
    is_revoked: Callable[[str], bool],
    now: int | None = None,
    accept_unsigned: bool = False,  # the fault alg-none-accepted only
    verified: VerifiedTokens | None = None,
) -> Principal:
    now = now or int(time.time())
    remembered = verified.get(token, audience, now) if verified is not None else None
    if remembered is not None and find_key(remembered.kid) is not None:
        return _unless_revoked(remembered.principal, is_revoked)
    try:
        header = jws.extract_compact(token.encode("ascii")).protected if token.count(".") == 2 else None
    except (JoseError, ValueError, UnicodeEncodeError):
        header = None
    if header is None:
        raise TokenInvalid("the token is not a signed JWT")
    if accept_unsigned and header.get("alg") == "none":
        claims = json.loads(jws.extract_compact(token.encode("ascii")).payload)
        return _principal(claims)
    if header.get("alg") != ALGORITHM:
        raise TokenInvalid(f"tokens are signed {ALGORITHM}; this one says alg {header.get('alg')!r}")
    key = find_key(str(header.get("kid", "")))
    if key is None:
        raise TokenInvalid("the token's signing key (kid) is unknown")
    try:
        decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
    except (JoseError, ValueError) as exc:
        raise TokenInvalid(f"the token's signature does not verify ({type(exc).__name__})") from None
    claims = decoded.claims
    missing = [c for c in REQUIRED if claims.get(c) in (None, "", [])]  # present but empty is missing too
    if missing:
        raise TokenInvalid(f"the token lacks the claim(s) {', '.join(missing)}")
    registry = JWTClaimsRegistry(
        now=now, leeway=LEEWAY_S, iss={"essential": True, "value": issuer}, aud={"essential": True, "value": audience}
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise TokenInvalid(_claim_problem(exc, claims)) from None
    if int(claims["iat"]) > now + LEEWAY_S:
        raise TokenInvalid("the token was issued in the future")
    principal = _unless_revoked(_principal(claims), is_revoked)
    if verified is not None:
        verified.put(token, audience, str(header.get("kid", "")), principal)
    return principal


def _unless_revoked(principal: Principal, is_revoked: Callable[[str], bool]) -> Principal:
    if is_revoked(principal.jti):
        raise TokenInvalid("the token was revoked")
    return principal


def _principal(claims: dict[str, Any]) -> Principal:
    return Principal(
        client_id=str(claims["client_id"]),
        subject=str(claims["sub"]),
        role=str(claims["subject_role"]),
        scopes=Scopes.parse(str(claims["scope"])),
        jti=str(claims["jti"]),
        expires_at=int(claims["exp"]),
        person_id=claims.get("person_id"),
        patient_id=claims.get("patient"),
        fhir_user=claims.get("fhirUser"),
        purpose_of_use=claims.get("purpose_of_use"),
    )


def _claim_problem(exc: JoseError, claims: dict[str, Any]) -> str:
    claim = getattr(exc, "claim", None)
    if isinstance(exc, ExpiredTokenError) or claim == "exp":
        return "the token has expired"
    reasons = {
        "nbf": "the token is not valid yet (nbf)",
        "iat": "the token was issued in the future",
        "aud": f"the token is for another audience ({claims.get('aud')!r})",
        "iss": f"the token comes from another issuer ({claims.get('iss')!r})",
    }
    return reasons.get(str(claim), f"the token's claims are not acceptable: {exc}")
