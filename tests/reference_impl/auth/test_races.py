"""Single use under concurrency: a code, a refresh token or an assertion jti sent several times at once
is honoured at most once, on both backends (the UPDATE ... WHERE used_at IS NULL and the jti's
primary key decide, not a read before the write)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from reference_impl.seed import accounts
from tests.reference_impl.auth.conftest import AuthLab
from tests.reference_impl.auth.flows import assertion, assertion_form, code_for, demo_system_key, introspect, redeem

PARALLEL = 6


def at_once(send: Callable[[], httpx.Response], count: int = PARALLEL) -> list[httpx.Response]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: send(), range(count)))


def test_a_code_redeemed_concurrently_gives_tokens_once_and_they_are_then_revoked(
    lab: AuthLab, http: httpx.Client
) -> None:
    code, verifier, _ = code_for(lab, http)
    with httpx.Client(timeout=30) as client:
        answers = at_once(lambda: redeem(lab, client, code, verifier))
    granted = [a for a in answers if a.status_code == 200]
    assert len(granted) == 1, [a.status_code for a in answers]
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
    # The other attempts were replays of a used code: what it gave is revoked (RFC 6749 §4.1.2).
    assert introspect(lab, http, granted[0].json()["access_token"]) == {"active": False}


def test_a_refresh_token_used_concurrently_rotates_once(lab: AuthLab, http: httpx.Client) -> None:
    code, verifier, _ = code_for(lab, http)
    refresh_token = redeem(lab, http, code, verifier).json()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": accounts.PORTAL_CLIENT}
    with httpx.Client(timeout=30) as client:
        answers = at_once(lambda: client.post(lab.token_url, data=data))
    assert sorted(a.status_code for a in answers) == [200] + [400] * (PARALLEL - 1)


def test_an_assertion_sent_concurrently_is_accepted_once(lab: AuthLab) -> None:
    form = assertion_form(assertion(demo_system_key(), accounts.SYSTEM_CLIENT, lab.token_url))
    with httpx.Client(timeout=30) as client:
        answers = at_once(lambda: client.post(lab.token_url, data=form))
    assert sorted(a.status_code for a in answers) == [200] + [401] * (PARALLEL - 1)
