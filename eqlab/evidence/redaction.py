"""Remove secrets (tokens, client secrets, passwords, private keys, cookies) from evidence, and
write out the control characters of any text kept (``printable``).

Applied to every header, URL and body before it is kept; what is redacted is replaced by a
marker that says what was there, so a reader still sees the shape of the exchange.

The login flow adds secrets of its own: the CSRF value of a login or consent form (in the page's
HTML and in the posted form) and the authorization code (in the redirect's ``Location`` and in
the token request). ``code`` is also a FHIR search parameter, so it is redacted only where it is
an OAuth code: in a query that also carries ``state`` or ``iss`` (an authorization response), or
in a form that carries ``grant_type`` (a token request).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token", "x-client-secret"}
)
SECRET_FIELDS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "client_assertion",
        "code_verifier",
        "password",
        "passwd",
        "secret",
        "private_key",
        "assertion",
        "token",
        "api_key",
        "apikey",
    }
)
# Secrets of HTML forms (anti-forgery tokens) and of the login form: redacted in queries, posted
# forms and the value of <input> elements, never looked for in JSON (where "state" and "code" are data).
FORM_SECRET_FIELDS = SECRET_FIELDS | frozenset(
    {"csrf", "csrf_token", "csrftoken", "_csrf", "csrfmiddlewaretoken", "xsrf", "xsrf_token", "authenticity_token"}
)
OAUTH_CODE = "code"
OAUTH_RESPONSE_MARKERS = frozenset({"state", "iss"})
JWK_PRIVATE_FIELDS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})
# The signature is optional: a token cut short (a truncated message) is still a token.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}(\.[A-Za-z0-9_-]*)?")
_PEM_PRIVATE = re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|$)", re.DOTALL)
# Credentials are long; short words after "Bearer" (as in `Bearer error="invalid_token"`) stay.
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/-]{12,}=*")
_INPUT = re.compile(r"(?i)<input\b[^>]*>")
_INPUT_NAME = re.compile(r"""(?i)\bname\s*=\s*["']?([^"'\s>]+)""")
_INPUT_VALUE = re.compile(r"""(?i)(\bvalue\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)""")
_QUERY = re.compile(r"\?[^\s\"'<>#]+")
_FIELD_IN_TEXT = re.compile(
    r"(?i)([\"']?(?:" + "|".join(sorted(SECRET_FIELDS)) + r")[\"']?\s*[:=]\s*[\"']?)([^\"'&\s,}]+)"
)


def headers(values: dict[str, str] | Any) -> dict[str, str]:
    out = {}
    for name, value in dict(values).items():
        lowered = name.lower()
        if lowered in SECRET_HEADERS:
            out[name] = REDACTED
        elif lowered in ("location", "content-location", "refresh"):  # a redirect carries the code
            out[name] = url(str(value))
        else:
            out[name] = text(str(value))
    return out


def _pairs(pairs: list[tuple[str, str]], code_marker: frozenset[str]) -> list[tuple[str, str]]:
    names = {k.lower() for k, _ in pairs}
    code_is_secret = bool(names & code_marker)
    return [
        (k, REDACTED if k.lower() in FORM_SECRET_FIELDS or (code_is_secret and k == OAUTH_CODE) else text(v))
        for k, v in pairs
    ]


def url(value: str) -> str:
    parts = urlsplit(value)
    if not parts.query:
        return value
    query = _pairs(parse_qsl(parts.query, keep_blank_values=True), OAUTH_RESPONSE_MARKERS)
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]")))


def body(raw: bytes, content_type: str | None) -> bytes:
    """The body with secrets replaced; JSON and form bodies by field, anything textual by pattern."""
    kind = (content_type or "").split(";")[0].strip().lower()
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw  # binary content (PDF, images): no textual secrets to find
    if kind.endswith("json"):
        try:
            return json.dumps(_json(json.loads(decoded)), ensure_ascii=False, separators=(",", ":")).encode()
        except ValueError:
            pass
    if kind == "application/x-www-form-urlencoded":
        pairs = parse_qsl(decoded, keep_blank_values=True)
        return urlencode(_pairs(pairs, OAUTH_RESPONSE_MARKERS | {"grant_type"})).encode()
    return text(decoded).encode()


def text(value: str) -> str:
    # Each pattern runs only where a plain substring test says it could match: bodies of many
    # megabytes pass through in milliseconds instead of seconds.
    lowered = value.lower()
    if "private key" in lowered:
        value = _PEM_PRIVATE.sub("[REDACTED PRIVATE KEY]", value)
    if "eyj" in lowered:
        value = _JWT.sub("[REDACTED JWT]", value)
    if "bearer" in lowered or "basic" in lowered:
        value = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    if any(name in lowered for name in SECRET_FIELDS):
        value = _FIELD_IN_TEXT.sub(_field_value, value)
    if "<input" in lowered:
        value = _INPUT.sub(_input, value)
    if "code=" in lowered and ("state=" in lowered or "iss=" in lowered):
        value = _QUERY.sub(_query_in_text, value)
    return printable(value)


# C0 controls but tab and line feed, DEL and the C1 controls: what a terminal acts upon (ANSI
# escapes, carriage returns that rewrite a line) and a reader never needs to see raw.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(value: str) -> str:
    """``value`` with its control characters written out (``\\x1b``): text the system under test
    sent cannot drive the terminal that shows it, or hide in a report what it says."""
    if not _CONTROL.search(value):
        return value
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


MIN_KNOWN_SECRET_CHARS = 8  # shorter values would blank out ordinary words


def known(value: str, secrets: Iterable[str]) -> str:
    """``value`` without any of ``secrets``: values the lab itself handled (passwords, opaque refresh
    tokens, codes) that no pattern can recognise, removed wherever a check or a log quotes them."""
    for secret in sorted(secrets, key=len, reverse=True):  # a longer secret may contain a shorter one
        if len(secret) >= MIN_KNOWN_SECRET_CHARS and secret in value:
            value = value.replace(secret, REDACTED)
    return value


# Source code quoted in a traceback: a dotted attribute or a call (`token = tokens.system()`), or the
# right half of a comparison (`refresh_token == rotated`). Never a credential: opaque tokens are
# base64url (no dots, no parentheses) and JWTs are redacted before this runs. A bare word stays
# redacted: it could be a secret made of letters only.
_CODE = re.compile(r"[A-Za-z_]\w*(\.\w+)+(\(.*)?|[A-Za-z_]\w*\(.*|=.*")


def _field_value(match: re.Match[str]) -> str:
    """``token=…`` in text: the value goes, unless it is unquoted code (a traceback's source line)."""
    lead, found = match.group(1), match.group(2)
    quoted = lead.rstrip().endswith(("'", '"'))
    return lead + (found if not quoted and _CODE.fullmatch(found) else REDACTED)


def _input(match: re.Match[str]) -> str:
    """An HTML <input> whose value is a secret (password, CSRF token, code) keeps its name, not its value."""
    tag = match.group(0)
    name = _INPUT_NAME.search(tag)
    if name is None or name.group(1).lower() not in FORM_SECRET_FIELDS | {OAUTH_CODE}:
        return tag
    return _INPUT_VALUE.sub(lambda m: f'{m.group(1)}"{REDACTED}"', tag)


def _query_in_text(match: re.Match[str]) -> str:
    """A URL's query quoted in text (a log line, an assertion message): its OAuth code and secrets go."""
    query = match.group(0)[1:]
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return match.group(0)
    return "?" + urlencode(_pairs(pairs, OAUTH_RESPONSE_MARKERS), safe="[]")


def _json(node: Any) -> Any:
    if isinstance(node, dict):
        is_jwk = "kty" in node
        return {
            key: REDACTED if key.lower() in SECRET_FIELDS or (is_jwk and key in JWK_PRIVATE_FIELDS) else _json(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_json(item) for item in node]
    if isinstance(node, str):
        return text(node)
    return node
