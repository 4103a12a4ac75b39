"""Server-rendered pages of the login flow: autoescaped Jinja2, no script, nothing from elsewhere.

Every page is sent with a Content-Security-Policy that allows only its own inline style (by
nonce) and form posts to this server, refuses framing (clickjacking of the consent button) and
sends no Referer (the URLs carry the authorization request).
"""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse, RedirectResponse

from reference_impl.auth.scopes import Scopes

TEMPLATES = Path(__file__).parent / "templates"
LETTERS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
CONTEXTS = {"patient": "your own health record", "user": "the records you may see", "system": "all records"}
SPECIAL_SCOPES = {
    "openid": "your identity (sign-in)",
    "fhirUser": "which person you are in the health record (your FHIR user)",
    "profile": "your name and national identification number",
    "offline_access": "continued access when you are not using it (until you revoke it)",
    "launch/patient": "which patient record is yours",
}
BASE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


@cache
def environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)


def describe_scope(scope: str) -> str:
    if scope in SPECIAL_SCOPES:
        return SPECIAL_SCOPES[scope]
    parsed = Scopes.parse(scope).resource
    if not parsed:
        return scope
    resource = parsed[0]
    actions = ", ".join(LETTERS[letter] for letter in "cruds" if letter in resource.letters)
    what = "all data" if resource.type_name == "*" else f"{resource.type_name} resources"
    return f"{actions} {what} in {CONTEXTS[resource.context]}"


def origin_of(url: str) -> str:
    """A CSP source for ``url``: its origin, or its scheme for a native app's custom scheme."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def security_headers(nonce: str | None = None, redirects_to: str | None = None) -> dict[str, str]:
    # form-action also governs where a form's answer may redirect: the consent form ends at the client.
    form_action = "'self'" + (f" {origin_of(redirects_to)}" if redirects_to else "")
    style = f"'nonce-{nonce}'" if nonce else "'none'"
    csp = f"default-src 'none'; style-src {style}; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    return {**BASE_HEADERS, "Content-Security-Policy": csp}


def render(template: str, status: int = 200, redirects_to: str | None = None, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = environment().get_template(template).render(csp_nonce=nonce, **context)
    return HTMLResponse(html, status, security_headers(nonce, redirects_to))


def error_page(error: str, message: str, status: int = 400) -> HTMLResponse:
    return render("error.html", status, error=error, message=message)


def redirect(url: str, status: int = 302) -> RedirectResponse:
    return RedirectResponse(url, status, headers=security_headers())
