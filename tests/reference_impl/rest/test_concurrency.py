"""Concurrent writers over real HTTP: optimistic locking holds and no update is lost."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from reference_impl.app import create_app
from reference_impl.settings import Settings
from tests.reference_impl.rest.helpers import JSON_HEADERS, create, patient
from tests.support.servers import threaded_server
from tests.support.tokens import mint

WRITERS = 20
TOKENS: dict[str, str] = {}


def auth(base_url: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[base_url]}"}


@pytest.fixture
def base_url(db_url: str) -> Iterator[str]:
    app = create_app(Settings(db_url=db_url))
    with threaded_server(app) as base:
        TOKENS[base] = mint(app, base.removesuffix("/fhir"))
        yield base


def _put_all(base_url: str, bodies: list[dict[str, object]], if_match: str | None) -> list[httpx.Response]:
    headers = {**JSON_HEADERS, **auth(base_url), **({"If-Match": if_match} if if_match else {})}

    def put(body: dict[str, object]) -> httpx.Response:
        with httpx.Client(base_url=base_url + "/", timeout=60) as client:
            return client.put(f"Patient/{body['id']}", json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        return list(pool.map(put, bodies))


def test_same_if_match_exactly_one_wins(base_url: str) -> None:
    with httpx.Client(base_url=base_url + "/", headers=auth(base_url)) as client:
        created = create(client, patient("Race"))
        bodies = [{**created, "name": [{"family": f"Writer{i}"}]} for i in range(WRITERS)]
        responses = _put_all(base_url, bodies, 'W/"1"')
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 1, 412: WRITERS - 1}, statuses
        winner = next(r.json() for r in responses if r.status_code == 200)
        current = client.get(f"Patient/{created['id']}").json()
        assert current["meta"]["versionId"] == "2"
        assert current["name"] == winner["name"]
        assert client.get(f"Patient/{created['id']}/_history").json()["total"] == 2


def test_unconditional_concurrent_updates_all_land_as_distinct_versions(base_url: str) -> None:
    with httpx.Client(base_url=base_url + "/", headers=auth(base_url)) as client:
        created = create(client, patient("Busy"))
        bodies = [{**created, "name": [{"family": f"Writer{i}"}]} for i in range(WRITERS)]
        responses = _put_all(base_url, bodies, None)
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
        versions = sorted(int(r.json()["meta"]["versionId"]) for r in responses)
        assert versions == list(range(2, WRITERS + 2))
        history = client.get(f"Patient/{created['id']}/_history", params={"_count": 100}).json()
        assert history["total"] == WRITERS + 1
        families = {e["resource"]["name"][0]["family"] for e in history["entry"][:-1]}
        assert families == {f"Writer{i}" for i in range(WRITERS)}


def _bulk(entries: int) -> dict[str, object]:
    items = [
        {
            "resource": {"resourceType": "Patient", "name": [{"family": f"Bulk{n}"}]},
            "request": {"method": "POST", "url": "Patient"},
        }
        for n in range(entries)
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": items}


def test_a_long_transaction_leaves_the_server_answering(db_url: str) -> None:
    """While a transaction of the maximum size writes, requests that need no writer are answered, and
    an audited read is served (with its AuditEvent) as soon as the writer is free: nothing is frozen
    behind it. How long the read waits is measured by benchmarks/bulk_writer.py."""
    app = create_app(Settings(db_url=db_url))
    with threaded_server(app) as base:
        headers = {**JSON_HEADERS, "Authorization": f"Bearer {mint(app, base.removesuffix('/fhir'))}"}
        with httpx.Client(base_url=base + "/", headers=headers, timeout=300) as client:
            reader = create(client, patient("Reader"))
            finished: dict[str, float] = {}

            def bulk() -> None:
                with httpx.Client(timeout=300) as writer:
                    answer = writer.post(
                        base, json=_bulk(app.state.fhir.settings.max_transaction_entries), headers=headers
                    )
                finished["transaction"] = time.monotonic()
                finished["status"] = answer.status_code

            thread = threading.Thread(target=bulk)
            thread.start()
            time.sleep(0.3)  # the transaction is under way
            assert client.get("metadata").status_code == 200
            finished["metadata"] = time.monotonic()
            read = client.get(f"Patient/{reader['id']}", headers={"X-Request-Id": "read-during-bulk"})
            thread.join()
            log = client.get("AuditEvent", params={"patient": f"Patient/{reader['id']}", "action": "R"})
    assert "X-Request-Id read-during-bulk" in log.text, "the read during the transaction left no AuditEvent"
    assert finished["status"] == 200
    assert finished["metadata"] < finished["transaction"], "the server did not answer while the transaction ran"
    assert read.status_code == 200


def test_a_transaction_over_the_limit_is_413_and_stores_nothing(db_url: str) -> None:
    app = create_app(Settings(db_url=db_url, max_transaction_entries=3))
    with threaded_server(app) as base:
        headers = {**JSON_HEADERS, "Authorization": f"Bearer {mint(app, base.removesuffix('/fhir'))}"}
        with httpx.Client(base_url=base + "/", headers=headers, timeout=60) as client:
            refused = client.post("", json=_bulk(4))
            assert refused.status_code == 413, refused.text
            issue = refused.json()["issue"][0]
            assert issue["code"] == "too-costly" and "at most 3 entries" in issue["diagnostics"]
            assert client.get("Patient", params={"family": "Bulk"}).json()["total"] == 0
            assert client.post("", json=_bulk(3)).status_code == 200
