"""On PostgreSQL each server process answers a remembered token's revocation from memory, and hears of
every revocation on its store: from another server process, from a command that watches nothing, for a
whole grant at once. While its listener is away, every token is looked up again."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, text
from starlette.testclient import TestClient

from reference_impl.app import create_app
from reference_impl.auth import service as auth_service
from reference_impl.auth.revocations import NOTIFY_PAYLOAD_BYTES, RevocationWatch, notify_payloads
from reference_impl.auth.service import AuthService
from reference_impl.settings import Settings
from reference_impl.store.database import Database
from tests.support.postgres import query
from tests.support.tokens import SYSTEM, mint

pytestmark = pytest.mark.postgres

ORIGIN = "http://testserver"
HEARD_WITHIN_S = 3.0


@pytest.fixture
def servers(postgres_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    """Two server processes' apps on one store, as ``eqlab serve --workers 2`` runs them."""
    with (
        TestClient(create_app(Settings(db_url=postgres_url)), base_url=f"{ORIGIN}/fhir/") as first,
        TestClient(create_app(Settings(db_url=postgres_url)), base_url=f"{ORIGIN}/fhir/") as second,
    ):
        for client in (first, second):
            _until(lambda client=client: watch_of(client).live, "the listener connects")  # type: ignore[misc]
        yield first, second


def watch_of(client: TestClient) -> RevocationWatch:
    watch = client.app.state.fhir.auth.revocations  # type: ignore[attr-defined]
    assert watch is not None
    return watch


def _until(condition: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < HEARD_WITHIN_S, f"{what}: not within {HEARD_WITHIN_S} s"
        time.sleep(0.01)
    return time.monotonic() - started


def jti_of(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])


def status(client: TestClient, token: str) -> int:
    return client.get("Organization", params={"_count": "1"}, headers={"Authorization": f"Bearer {token}"}).status_code


def revoke_through(client: TestClient, **which: str) -> int:
    server = client.app.state.fhir  # type: ignore[attr-defined]
    return int(server.db.run(lambda conn: server.auth.revoke(conn, **which), write=True))


def test_a_remembered_token_is_not_looked_up_again(
    servers: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = servers
    lookups: list[object] = []
    statement = auth_service._REVOCATION_OF

    class Counted:
        def first(self, conn: Connection, params: tuple[object, ...]) -> object:
            lookups.append(params)
            return statement.first(conn, params)

    monkeypatch.setattr(auth_service, "_REVOCATION_OF", Counted())
    token = mint(first.app, ORIGIN)  # type: ignore[arg-type]
    assert [status(first, token) for _ in range(3)] == [200, 200, 200]
    assert len(lookups) == 1


def test_a_token_revoked_through_one_process_is_refused_by_every_process(
    servers: tuple[TestClient, TestClient],
) -> None:
    first, second = servers
    token = mint(first.app, ORIGIN)  # type: ignore[arg-type]
    assert (status(first, token), status(second, token)) == (200, 200)
    assert watch_of(second).knows_unrevoked(jti_of(token))
    assert revoke_through(first, jti=jti_of(token)) == 1
    assert status(first, token) == 401, "the revoking process knows at once"
    _until(lambda: status(second, token) == 401, "the other process hears of it")


def test_a_revocation_by_a_process_that_watches_nothing_is_heard(
    servers: tuple[TestClient, TestClient], postgres_url: str
) -> None:
    first, second = servers
    token = mint(first.app, ORIGIN)  # type: ignore[arg-type]
    assert status(second, token) == 200
    command = AuthService.from_settings(Settings(db_url=postgres_url))  # as a command-line tool has it
    db = Database(postgres_url)
    try:
        assert db.run(lambda conn: command.revoke(conn, jti=jti_of(token)), write=True) == 1
    finally:
        db.dispose()
    _until(lambda: status(second, token) == 401, "the server hears of it")


def test_a_whole_grant_revoked_at_once_is_heard_in_several_notifications(
    servers: tuple[TestClient, TestClient],
) -> None:
    first, second = servers
    server = first.app.state.fhir  # type: ignore[attr-defined]
    family = "grant-1"

    def issue(conn: Connection) -> list[str]:
        return [server.auth.issue_access_token(conn, ORIGIN, dict(SYSTEM), family)[0] for _ in range(300)]

    tokens = server.db.run(issue, write=True)
    assert len(notify_payloads(jti_of(t) for t in tokens)) > 1
    assert {status(second, token) for token in tokens[::50]} == {200}
    assert revoke_through(first, family=family) == 300
    _until(lambda: {status(second, token) for token in tokens[::50]} == {401}, "the other process hears of all")


def test_while_the_listener_is_away_every_token_is_looked_up(servers: tuple[TestClient, TestClient]) -> None:
    first, second = servers
    token = mint(first.app, ORIGIN)  # type: ignore[arg-type]
    assert status(second, token) == 200
    watch = watch_of(second)
    listeners = query(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = %s", f'LISTEN "{watch.channel}"'
    )
    assert listeners == 2
    _until(lambda: not watch.live, "the lost listener is noticed")
    # Revoked behind the platform's back, with nobody told: only a lookup can know.
    revoked = second.app.state.fhir.db.run(  # type: ignore[attr-defined]
        lambda conn: (
            conn.execute(
                text("UPDATE auth_issued_tokens SET revoked_at = 1 WHERE jti = :jti"), {"jti": jti_of(token)}
            ).rowcount
        ),
        write=True,
    )
    assert revoked == 1
    assert status(second, token) == 401
    _until(lambda: watch.live, "the listener connects again")
    assert status(second, token) == 401, "what was remembered before the loss is forgotten"


def test_a_lookup_that_raced_a_revocation_is_not_remembered(servers: tuple[TestClient, TestClient]) -> None:
    watch = watch_of(servers[0])
    before_lookup = watch.generation
    watch.revoked(["jti-1"])  # heard while the lookup ran: the row it read may be stale
    watch.remember_unrevoked("jti-1", int(time.time()) + 300, before_lookup)
    assert not watch.knows_unrevoked("jti-1")
    watch.remember_unrevoked("jti-1", int(time.time()) + 300, watch.generation)
    assert watch.knows_unrevoked("jti-1")


def test_payloads_hold_every_jti_once_and_stay_under_postgresqls_limit() -> None:
    jtis = [f"jti-{n:05d}-{'x' * 27}" for n in range(1000)]
    payloads = notify_payloads(jtis)
    assert all(len(payload.encode()) <= NOTIFY_PAYLOAD_BYTES for payload in payloads)
    assert [jti for payload in payloads for jti in payload.split()] == jtis
    assert notify_payloads([]) == []


def test_memory_is_bounded_and_the_oldest_remembered_goes_first(servers: tuple[TestClient, TestClient]) -> None:
    watch = watch_of(servers[0])
    watch.capacity = 2
    for jti in ("jti-1", "jti-2", "jti-3"):
        watch.remember_unrevoked(jti, int(time.time()) + 300, watch.generation)
    assert [watch.knows_unrevoked(jti) for jti in ("jti-1", "jti-2", "jti-3")] == [False, True, True]
