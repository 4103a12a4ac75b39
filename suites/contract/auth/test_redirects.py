"""Redirect URIs are matched exactly: no open redirector, no code for an attacker's URI (auth@10).

Each variant is a redirect URI an attacker derives from the login client's registered one (the
kinds of lax matching RFC 9700 §4.1.1 lists). The browser signs in as far as the server lets it;
the server must never send it, with a code or an error, to the attacker's URI.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.auth.support import PATIENT_SCOPE, Tokens, location, pkce_pair, redirect_params, sign_in
from suites.contract.fhir_toolkit import shown

ATTACKER = "eqlab-attacker.example"


def _variant(registered: str, kind: str) -> str:
    parts = urlsplit(registered)
    if kind == "longer path":
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/evil"))
    if kind == "suffix":
        return urlunsplit(parts._replace(path=parts.path + "evil"))
    if kind == "dot segments":
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + f"/../../{ATTACKER}"))
    if kind == "extra query":
        query = f"{parts.query}&next=https://{ATTACKER}/" if parts.query else f"next=https://{ATTACKER}/"
        return urlunsplit(parts._replace(query=query))
    if kind == "another host":
        return urlunsplit(parts._replace(netloc=ATTACKER))
    raise ValueError(kind)


@pytest.mark.requirement("auth@10")
@pytest.mark.parametrize("kind", ["longer path", "suffix", "dot segments", "extra query", "another host"])
def test_an_unregistered_redirect_uri_gets_nothing(auth_client: EvidenceClient, tokens: Tokens, kind: str) -> None:
    """an authorization request with an unregistered redirect URI never redirects there"""
    registered = tokens.config.login_client_for("patient").redirect_uri
    attacker_uri = _variant(registered, kind)
    _, challenge = pkce_pair()
    back = sign_in(
        auth_client, tokens, {"redirect_uri": attacker_uri, "code_challenge": challenge, "scope": PATIENT_SCOPE}
    )
    sent_to = location(back)
    leaked = redirect_params(back) if sent_to.startswith(attacker_uri) else {}
    assert not sent_to.startswith(attacker_uri), (
        f"an authorization request with the unregistered redirect URI {attacker_uri} ({kind} of the registered "
        f"{registered}) ended in a redirect there carrying {sorted(leaked) or 'nothing'}; expected a refusal shown to "
        "the user (exact redirect URI matching, RFC 9700 §4.1.3)"
    )
    assert "code" not in redirect_params(back), f"the refused request still produced a code: {shown(back)}"
