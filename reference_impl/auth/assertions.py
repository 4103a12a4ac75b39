"""``private_key_jwt`` client authentication (RFC 7523 §2.2, SMART Backend Services).

The client signs a short-lived JWT with a key of its registered JWKS: ES384 or RS384 only,
``iss`` = ``sub`` = its client id, ``aud`` = the token endpoint, ``exp`` at most five minutes
ahead and a ``jti`` it never used before. The signature is checked before anything in the claims
is believed, and the ``jti`` is remembered only after that, so nobody can burn another client's
``jti`` values with unsigned junk.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, RSAKey
from sqlalchemy import Connection, delete, insert, select

from reference_impl.auth.registry import Client
from reference_impl.auth.schema import assertion_jtis
from reference_impl.auth.web import Refused

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = {"ES384": ("EC", "P-384"), "RS384": ("RSA", None)}
MAX_AHEAD_S = 300  # SMART Backend Services: exp no more than five minutes in the future
LEEWAY_S = 5  # clock skew tolerated on exp/nbf/iat
MIN_RSA_BITS = 2048
MAX_JTI_CHARS = 256


@dataclass(frozen=True)
class VerifiedAssertion:
    client_id: str
    jti: str
    expires_at: int


def invalid_client(description: str, client_id: str | None = None) -> Refused:
    return Refused("invalid_client", description, 401, client_id=client_id)


def unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims read without checking the signature: only to find whose key to check it with."""
    try:
        compact = jws.extract_compact(assertion.encode("ascii"))
        payload = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeEncodeError):
        raise invalid_client("the client assertion is not a signed JWT") from None
    if not isinstance(payload, dict):
        raise invalid_client("the client assertion's payload is not a JSON object")
    return dict(compact.protected), payload


def verify(
    assertion: str, client: Client, audiences: tuple[str, ...], now: int | None = None, max_ahead_s: int = MAX_AHEAD_S
) -> VerifiedAssertion:
    """Check the assertion's signature against the client's JWKS, then its claims."""
    now = now or int(time.time())
    cid = client.client_id
    header, _ = unverified(assertion)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise invalid_client(f"client assertions are signed ES384 or RS384, not {alg!r}", cid)
    claims = None
    for key in _candidate_keys(client, str(alg), header.get("kid")):
        try:
            claims = jwt.decode(assertion, key, algorithms=[str(alg)]).claims
            break
        except (JoseError, ValueError):
            continue
    if claims is None:
        raise invalid_client("the client assertion's signature does not verify with the client's registered keys", cid)
    _check_claims(claims, cid, audiences, now, max_ahead_s)
    return VerifiedAssertion(cid, str(claims["jti"]), int(claims["exp"]))


def _candidate_keys(client: Client, alg: str, kid: object) -> Iterator[ECKey | RSAKey]:
    key_type, curve = ALGORITHMS[alg]
    for data in (client.jwks or {}).get("keys", []):
        if not isinstance(data, dict) or data.get("kty") != key_type:
            continue
        if kid is not None and data.get("kid") != kid:
            continue
        if data.get("alg") not in (None, alg) or data.get("use") not in (None, "sig"):
            continue
        if key_type == "RSA" and _modulus_bits(data.get("n")) < MIN_RSA_BITS:
            continue  # checked before importing: joserfc would warn, and a weak key is simply not one of ours
        try:
            key = JWKRegistry.import_key(data)
        except (JoseError, ValueError):
            continue
        if isinstance(key, ECKey) and key.curve_name == curve:
            yield key
        if isinstance(key, RSAKey):
            yield key


def _modulus_bits(n: object) -> int:
    if not isinstance(n, str):
        return 0
    try:
        modulus = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:
        return 0
    return int.from_bytes(modulus, "big").bit_length()


def _check_claims(
    claims: dict[str, Any], client_id: str, audiences: tuple[str, ...], now: int, max_ahead_s: int = MAX_AHEAD_S
) -> None:
    def refuse(why: str) -> Refused:
        return invalid_client(f"client assertion: {why}", client_id)

    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise refuse("iss and sub must both be the client id")
    aud = claims.get("aud")
    aud_values = aud if isinstance(aud, list) else [aud]
    if not any(value in audiences for value in aud_values):
        raise refuse(f"aud must be the token endpoint {audiences[0]}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise refuse("exp (an integer) is required")
    if exp <= now - LEEWAY_S:
        raise refuse("it has expired")
    if exp > now + max_ahead_s + LEEWAY_S:
        raise refuse(f"exp is more than {max_ahead_s} seconds ahead")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, int | float) or value > now + LEEWAY_S):
            raise refuse(f"{name} is in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
        raise refuse(f"jti (a string of at most {MAX_JTI_CHARS} characters) is required")


def remember(conn: Connection, verified: VerifiedAssertion, now: int | None = None) -> None:
    """Record the assertion's jti; a jti seen before for this client is a replay.

    Rows are kept until the assertion expires (after that the exp check refuses it anyway). Two
    concurrent uses of one jti collide on the primary key: PostgreSQL's unique violation makes
    ``Database.run`` retry the unit, which then finds the row and refuses.
    """
    now = now or int(time.time())
    table = assertion_jtis.c
    conn.execute(delete(assertion_jtis).where(table.client_id == verified.client_id, table.expires_at < now - LEEWAY_S))
    seen = conn.execute(
        select(table.jti).where(table.client_id == verified.client_id, table.jti == verified.jti)
    ).first()
    if seen is not None:
        raise invalid_client("client assertion: this jti was used before (replay)", verified.client_id)
    conn.execute(
        insert(assertion_jtis).values(client_id=verified.client_id, jti=verified.jti, expires_at=verified.expires_at)
    )
