"""Seal the credentials a client sends, so checks can compare them and nobody can use them.

The evidence of a client run is redacted like any other (``eqlab.evidence.redaction``), but the
checks of a client label must still judge the credentials themselves: is the PKCE verifier 43–128
characters and does it match the challenge, is a refresh token reused once rotated, is the access
token ever in a query string. A sealed value keeps exactly that and nothing usable:
``[SEALED s256=<BASE64URL(SHA-256(value))> len=<n>]``. The digest of a code verifier *is* its S256
code challenge (RFC 7636 §4.2), and two seals are equal exactly when the values were.

Only high-entropy credentials are sealed (tokens, codes, verifiers, assertions' signatures); values
a digest would not protect (passwords, client secrets, CSRF values, private keys) are redacted.
A client assertion (RFC 7523) is kept decoded, header and claims, with its signature sealed: the
checks judge its ``alg``, ``aud``, ``exp`` and ``jti``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from eqlab.evidence import redaction

SEALED_FIELDS = frozenset(
    {"access_token", "refresh_token", "id_token", "code_verifier", "token", "assertion", "device_code"}
)
CLIENT_ASSERTION = "client_assertion"
OAUTH_CODE = "code"
_SEAL = re.compile(r"\[SEALED s256=([A-Za-z0-9_-]{43}) len=(\d+)\]")
_BEARER = re.compile(r"(?i)^(bearer)\s+(\S+)$")


def s256(value: str) -> str:
    """BASE64URL(SHA-256(value)) without padding: the S256 code challenge of a verifier."""
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=").decode()


def seal(value: str) -> str:
    return f"[SEALED s256={s256(value)} len={len(value)}]"


def seal_facts(text: str) -> tuple[str, int] | None:
    """(digest, length) of a sealed value, or None when ``text`` is not one."""
    match = _SEAL.fullmatch(text)
    return (match.group(1), int(match.group(2))) if match else None


def headers(values: dict[str, str]) -> dict[str, str]:
    """Request or response headers: a bearer token sealed, other secrets redacted, names lower-cased."""
    out = {}
    for name, value in values.items():
        lowered = name.lower()
        bearer = _BEARER.match(value.strip()) if lowered == "authorization" else None
        if bearer:
            out[lowered] = f"Bearer {seal(bearer.group(2))}"
        elif lowered in ("location", "content-location") and "?" in value:  # a redirect carries the code
            address, _, raw_query = value.partition("?")
            out[lowered] = f"{address}?{urlencode(query(raw_query), safe='[]')}"
        elif lowered in redaction.SECRET_HEADERS:
            out[lowered] = redaction.REDACTED
        else:
            out[lowered] = redaction.printable(value)
    return out


def pairs(items: list[tuple[str, str]], code_is_oauth: bool) -> list[tuple[str, str]]:
    """Query or form fields: credentials sealed, guessable secrets redacted, assertions decoded.

    ``code`` is also a FHIR search parameter: it is sealed only where it is an OAuth code
    (``code_is_oauth``: a token request, or an authorization response carrying ``state``).
    """
    out = []
    for key, value in items:
        lowered = key.lower()
        if lowered in SEALED_FIELDS or (code_is_oauth and key == OAUTH_CODE):
            out.append((key, seal(value)))
        elif lowered == CLIENT_ASSERTION:
            out.append((key, json.dumps(decoded_assertion(value), sort_keys=True)))
        elif lowered in redaction.FORM_SECRET_FIELDS:
            out.append((key, redaction.REDACTED))
        else:
            out.append((key, redaction.text(value)))
    return out


def query(raw: str) -> list[tuple[str, str]]:
    items = parse_qsl(raw, keep_blank_values=True)
    names = {k.lower() for k, _ in items}
    return pairs(items, code_is_oauth=bool(names & {"state", "iss", "grant_type"}))


def form(raw: bytes) -> list[tuple[str, str]]:
    items = parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return pairs(items, code_is_oauth="grant_type" in {k.lower() for k, _ in items})


def json_body(node: Any) -> Any:
    """A JSON document with its credentials sealed and its other secrets redacted."""
    if isinstance(node, dict):
        is_jwk = "kty" in node
        out: dict[str, Any] = {}
        for key, value in node.items():
            lowered = key.lower()
            if lowered in SEALED_FIELDS and isinstance(value, str):
                out[key] = seal(value)
            elif lowered in redaction.SECRET_FIELDS or (is_jwk and key in redaction.JWK_PRIVATE_FIELDS):
                out[key] = redaction.REDACTED
            else:
                out[key] = json_body(value)
        return out
    if isinstance(node, list):
        return [json_body(item) for item in node]
    if isinstance(node, str):
        return redaction.text(node)
    return node


def decoded_assertion(value: str) -> dict[str, Any]:
    """A JWT client assertion as ``{"header", "claims", "signature"}``, its signature sealed.

    Not verified: the platform verifies it; the checks judge what the client put in it.
    """
    try:
        extracted = extract_compact(value.encode())
        claims = json.loads(extracted.payload)
    except (JoseError, ValueError):
        return {"unreadable": seal(value)}
    signature = value.rsplit(".", 1)[-1]
    return {"header": dict(extracted.headers()), "claims": claims, "signature": seal(signature)}
