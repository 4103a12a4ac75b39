"""Concurrent writers over real HTTP: optimistic locking holds and no update is lost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from reference_impl.app import create_app
from reference_impl.settings import Settings
from tests.reference.helpers import JSON_HEADERS, create, patient
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
