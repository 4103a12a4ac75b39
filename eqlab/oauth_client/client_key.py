"""The client's private key and the assertions it signs (``private_key_jwt``, RFC 7523 §2.2).

SMART Backend Services allows ES384 and RS384: an EC key must be on P-384, an RSA key at least
2048 bits. The key file is a private JWK (JSON) or a PEM private key; the key itself never
appears in an error message.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, RSAKey

from eqlab.oauth_client.model import AuthConfigError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 240  # under SMART's five-minute ceiling, with room for clock skew
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    key: ECKey | RSAKey
    alg: str  # ES384 or RS384
    kid: str | None


def load_signing_key(path: Path) -> SigningKey:
    """The private key in ``path`` (JWK or PEM), checked to be usable for ES384 or RS384."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuthConfigError(f"cannot read the key file {path}: {exc.strerror}") from None
    text = data.decode("utf-8", errors="replace").lstrip()
    try:
        key = _from_jwk(text) if text.startswith("{") else _from_pem(data)
    except (JoseError, ValueError, TypeError) as exc:
        # The exception text of a parser may quote the input: name only its kind.
        raise AuthConfigError(
            f"the key file {path} is not a private key in JWK or PEM form ({type(exc).__name__})"
        ) from None
    if not key.is_private:
        raise AuthConfigError(f"the key file {path} holds a public key; private_key_jwt needs the private key")
    alg = _algorithm(key, path)
    kid = key.kid if isinstance(key.kid, str) and key.kid else None
    return SigningKey(key, alg, kid)


def _from_jwk(text: str) -> ECKey | RSAKey:
    data = json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("keys"), list) and len(data["keys"]) == 1:
        data = data["keys"][0]  # a JWKS holding one key is a common way to ship a single key
    if not isinstance(data, dict):
        raise ValueError("not a JWK object")
    kty = data.get("kty")
    if kty == "EC":
        return ECKey.import_key(data)
    if kty == "RSA":
        return RSAKey.import_key(data)
    raise ValueError("only EC and RSA keys are used for client assertions")


def _from_pem(data: bytes) -> ECKey | RSAKey:
    raw = load_pem_private_key(data, password=None)
    if isinstance(raw, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(raw)
    if isinstance(raw, rsa.RSAPrivateKey):
        return RSAKey.import_key(raw)
    raise ValueError("only EC and RSA private keys are used for client assertions")


def _algorithm(key: ECKey | RSAKey, path: Path) -> str:
    declared = key.get("alg")
    if isinstance(key, ECKey):
        if key.curve_name != "P-384":
            raise AuthConfigError(f"the key in {path} is on {key.curve_name}; ES384 client assertions need P-384")
        alg = "ES384"
    else:
        bits = key.raw_value.key_size
        if bits < MIN_RSA_BITS:
            raise AuthConfigError(f"the RSA key in {path} has {bits} bits; at least {MIN_RSA_BITS} are required")
        alg = "RS384"
    if declared not in (None, alg):
        raise AuthConfigError(f"the key in {path} declares alg {declared}; client assertions here are signed {alg}")
    return alg


def client_assertion(
    signing: SigningKey,
    client_id: str,
    audience: str,
    lifetime_s: int = ASSERTION_LIFETIME_S,
    claims: Mapping[str, object] | None = None,
) -> str:
    """A signed client assertion: iss = sub = client_id, aud = the token endpoint, a fresh random jti
    (``claims`` replace or add claims: checks of a token endpoint send bent assertions on purpose)."""
    now = int(time.time())
    body: dict[str, object] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime_s,
        "jti": secrets.token_urlsafe(24),
        **(claims or {}),
    }
    header: dict[str, object] = {"alg": signing.alg, "typ": "JWT"}
    if signing.kid:
        header["kid"] = signing.kid
    return jwt.encode(header, body, signing.key, algorithms=[signing.alg])


def public_jwks(path: Path) -> tuple[dict[str, object], bool]:
    """The public JWKS to register for the key(s) in ``path`` (JWK, JWKS or PEM, public or private),
    and whether the file held private material (only the public half is ever registered)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuthConfigError(f"cannot read {path}: {exc.strerror}") from None
    text = data.decode("utf-8", errors="replace").lstrip()
    try:
        if text.startswith("{"):
            loaded = json.loads(text)
            entries = loaded["keys"] if isinstance(loaded, dict) and "keys" in loaded else [loaded]
            keys = [JWKRegistry.import_key(entry) for entry in entries]
        else:
            keys = [_pem_key(data)]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise AuthConfigError(f"{path} is not a JWK, a JWKS or a PEM key ({type(exc).__name__})") from None
    if not keys or not all(isinstance(k, ECKey | RSAKey) for k in keys):
        raise AuthConfigError(f"{path}: client assertions are verified with EC or RSA keys only")
    public = [k.as_dict(private=False) for k in keys]
    return {"keys": public}, any(k.is_private for k in keys)


def _pem_key(data: bytes) -> ECKey | RSAKey:
    try:
        return _from_pem(data)
    except ValueError:
        raw = load_pem_public_key(data)
        if isinstance(raw, ec.EllipticCurvePublicKey):
            return ECKey.import_key(raw)
        if isinstance(raw, rsa.RSAPublicKey):
            return RSAKey.import_key(raw)
        raise
