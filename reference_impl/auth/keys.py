"""Token-signing keys (ES256) with rotation: a ``kid`` per key, old keys verify until their tokens expire.

The newest unretired key signs. Rotation retires it and makes a new one; a retired key stays in the
JWKS (so tokens it signed still verify) until every token it could have signed has expired.
Private keys are stored wrapped with the master key.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import Connection, insert, select, update

from reference_impl.auth.schema import signing_keys
from reference_impl.vault import MasterKey

ALGORITHM = "ES256"
CONTEXT = "token-signing key"
CACHE_SECONDS = 30


@dataclass
class SigningKeys:
    master: MasterKey
    token_lifetime_s: int
    rotate_after_s: int
    _cache: tuple[float, dict[str, ECKey]] = field(default=(0.0, {}), repr=False)

    def active(self, conn: Connection, now: int | None = None) -> ECKey:
        """The key that signs now, made (or rotated in) when there is none or it is too old."""
        now = now or int(time.time())
        row = self._newest(conn)
        if row is None or now - row.created_at >= self.rotate_after_s:
            return self.rotate(conn, now)
        return self._unwrap(row.kid, row.wrapped_jwk)

    def needs_rotation(self, conn: Connection, now: int | None = None) -> bool:
        """True when ``active`` would make a key: lets read-only callers (the JWKS) write only then."""
        now = now or int(time.time())
        row = self._newest(conn)
        return row is None or now - row.created_at >= self.rotate_after_s

    def _newest(self, conn: Connection) -> Any:
        return conn.execute(
            select(signing_keys.c.kid, signing_keys.c.wrapped_jwk, signing_keys.c.created_at)
            .where(signing_keys.c.retired_at.is_(None))
            .order_by(signing_keys.c.created_at.desc())
            .limit(1)
        ).first()

    def rotate(self, conn: Connection, now: int | None = None) -> ECKey:
        now = now or int(time.time())
        conn.execute(update(signing_keys).where(signing_keys.c.retired_at.is_(None)).values(retired_at=now))
        kid = f"{time.strftime('%Y%m%d', time.gmtime(now))}-{secrets.token_hex(4)}"
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
        wrapped = self.master.wrap(json.dumps(key.as_dict(private=True)).encode(), CONTEXT)
        conn.execute(insert(signing_keys).values(kid=kid, wrapped_jwk=wrapped, created_at=now, retired_at=None))
        self._cache = (0.0, {})
        return key

    def withdraw_retired(self, conn: Connection, now: int | None = None) -> list[str]:
        """Take every retired key out of the JWKS at once (a key suspected compromised): the tokens
        it signed stop validating here now, and elsewhere once verifiers refresh their JWKS copy."""
        now = now or int(time.time())
        withdrawn_at = now - self.token_lifetime_s  # as if retired a full token lifetime ago
        kids = list(
            conn.execute(
                select(signing_keys.c.kid).where(
                    signing_keys.c.retired_at.is_not(None), signing_keys.c.retired_at > withdrawn_at
                )
            ).scalars()
        )
        if kids:
            conn.execute(update(signing_keys).where(signing_keys.c.kid.in_(kids)).values(retired_at=withdrawn_at))
        self._cache = (0.0, {})
        return kids

    def verification_keys(self, conn: Connection, now: int | None = None) -> dict[str, ECKey]:
        """Keys whose tokens may still be valid: unretired, or retired less than a token lifetime ago."""
        explicit_time = now is not None  # a caller asking about another moment must not get the cached set
        now = now or int(time.time())
        loaded_at, cached = self._cache
        if cached and not explicit_time and time.monotonic() - loaded_at < CACHE_SECONDS:
            return cached
        rows = conn.execute(select(signing_keys.c.kid, signing_keys.c.wrapped_jwk, signing_keys.c.retired_at)).all()
        keys = {
            row.kid: self._unwrap(row.kid, row.wrapped_jwk)
            for row in rows
            if row.retired_at is None or now - row.retired_at < self.token_lifetime_s
        }
        if not explicit_time:
            self._cache = (time.monotonic(), keys)
        return keys

    def find(self, conn: Connection, kid: str) -> ECKey | None:
        key = self.verification_keys(conn).get(kid)
        if key is None:  # perhaps another process rotated: look again, once
            self._cache = (0.0, {})
            key = self.verification_keys(conn).get(kid)
        return key

    def jwks(self, conn: Connection) -> dict[str, Any]:
        return dict(KeySet(list(self.verification_keys(conn).values())).as_dict(private=False))

    def _unwrap(self, kid: str, wrapped: str) -> ECKey:
        data = json.loads(self.master.unwrap(wrapped, CONTEXT))
        return ECKey.import_key(data, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
