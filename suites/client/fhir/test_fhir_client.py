"""FHIR REST client rules (SPEC §1, client side), judged on the requests of a client run."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from eqlab.checks import ClientRequest, ClientRun, Target
from suites.client.support import fhir_requests, nothing_to_judge

FHIR_JSON = "application/fhir+json"
MAX_RETRIES = 3
# Arrival times are taken by the recorder; a client that waited exactly Retry-After may be seen a
# few milliseconds short of it.
RETRY_AFTER_TOLERANCE_S = 0.05
IDEMPOTENT_SCENARIO = "conditional-create"
PAGE_WORDS = re.compile(r"(?i)page|offset|cursor|skip")


def _fhir(client_run: ClientRun, target: Target) -> list[ClientRequest]:
    return fhir_requests(client_run, urlsplit(target.base_url).path)


@pytest.mark.requirement("fhirclient@1")
def test_the_client_speaks_fhir_json(client_run: ClientRun, target: Target) -> None:
    """Accept: application/fhir+json on every FHIR request; Content-Type too on every FHIR JSON body"""
    requests = _fhir(client_run, target)
    if not requests:
        nothing_to_judge("FHIR request")
    no_accept = [r for r in requests if FHIR_JSON not in r.headers.get("accept", "")]
    # A JSON Patch (application/json-patch+json) and a form-encoded _search have media types of their own.
    wrong_body = [
        r
        for r in requests
        if r.json_body is not None
        and r.method != "PATCH"
        and not r.headers.get("content-type", "").startswith(FHIR_JSON)
    ]
    problems = []
    if no_accept:
        problems.append(f"no Accept: {FHIR_JSON}: {client_run.cite(*no_accept[:5])}")
    if wrong_body:
        types = sorted({r.headers.get("content-type", "(none)") for r in wrong_body})
        problems.append(f"bodies sent as {types}, not {FHIR_JSON}: {client_run.cite(*wrong_body[:5])}")
    assert not problems, "; ".join(problems)


def _resource_path(request: ClientRequest) -> bool:
    return request.path.count("/") >= 3 and "_history" not in request.path and not request.query


@pytest.mark.requirement("fhirclient@2")
def test_updates_carry_the_version_read(client_run: ClientRun, target: Target) -> None:
    """a PUT of a resource the client read carries If-Match with the ETag of its last read"""
    requests = _fhir(client_run, target)
    judged = []
    for update in (r for r in requests if r.method == "PUT" and _resource_path(r)):
        reads = [
            r
            for r in requests
            if r.method == "GET" and r.path == update.path and r.status == 200 and r.n < update.n
            and r.scenario == update.scenario
        ]  # fmt: skip
        if reads:
            judged.append((update, reads[-1].response_headers.get("etag")))
    if not judged:
        nothing_to_judge("update of a resource the client had read")
    bad = [(u, etag) for u, etag in judged if etag is None or u.headers.get("if-match") != etag]
    assert not bad, "; ".join(
        f"If-Match {u.headers.get('if-match', '(none)')}, read {etag}: {client_run.cite(u)}" for u, etag in bad
    )


@pytest.mark.requirement("fhirclient@3")
def test_after_a_412_the_client_reads_again_before_retrying(client_run: ClientRun, target: Target) -> None:
    """after an update gets 412, a read of the resource comes before the next update of it"""
    requests = _fhir(client_run, target)
    conflicts = [r for r in requests if r.method == "PUT" and r.status == 412]
    if not conflicts:
        nothing_to_judge("412 answer to an update")
    blind = []
    for conflict in conflicts:
        same = [r for r in requests if r.path == conflict.path and r.scenario == conflict.scenario and r.n > conflict.n]
        retry = next((r for r in same if r.method == "PUT"), None)
        if retry is not None and not any(r.method == "GET" and r.n < retry.n for r in same):
            blind.append(retry)
    assert not blind, f"updates retried after a 412 without reading the resource again: {client_run.cite(*blind)}"


def _next_links(request: ClientRequest) -> list[str]:
    body: Any = request.response_json
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return []
    return [str(link.get("url")) for link in body.get("link", []) if link.get("relation") == "next"]


@pytest.mark.requirement("fhirclient@4")
def test_the_client_follows_next_links_as_given(client_run: ClientRun, target: Target) -> None:
    """each page after the first is fetched with a next link exactly as the server gave it"""
    requests = _fhir(client_run, target)
    given: list[tuple[int, str]] = [(r.n, url) for r in requests for url in _next_links(r)]
    if not given:
        nothing_to_judge("search answer with a next link")
    # Page parameters: those of a next link that the search it answered did not have, and any
    # parameter a client could page with by itself (page, offset, cursor...).
    originals = {r.n: {k for k, _ in r.query} for r in requests}
    paging = {
        name
        for n, url in given
        for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)
        if name not in originals.get(n, set())
    }
    offered = [
        (n, urlsplit(url).path, sorted(parse_qsl(urlsplit(url).query, keep_blank_values=True))) for n, url in given
    ]
    paged_paths = {urlsplit(url).path for _, url in given}
    built = [
        r
        for r in requests
        if r.method == "GET"
        and r.path in paged_paths
        and any(k in paging or PAGE_WORDS.search(k) for k, _ in r.query)
        and not any(n < r.n and path == r.path and query == sorted(r.query) for n, path, query in offered)
    ]
    shown = sorted(paging | {k for r in built for k, _ in r.query if PAGE_WORDS.search(k)})
    assert not built, (
        f"pages fetched with URLs the server never gave (page parameters {shown}): {client_run.cite(*built)}"
    )


@pytest.mark.requirement("fhirclient@5")
def test_the_client_waits_as_long_as_retry_after_says(client_run: ClientRun) -> None:
    """after 503/429 with Retry-After, the same request comes again no sooner, and 3 times at most"""
    pushed_back = [r for r in client_run.requests if r.status in (503, 429) and "retry-after" in r.response_headers]
    if not pushed_back:
        nothing_to_judge("503 or 429 answer with Retry-After")
    problems: list[tuple[ClientRequest, str]] = []
    chains_seen: set[tuple[str, str, str]] = set()
    for answer in pushed_back:
        wait_s = _seconds(answer.response_headers["retry-after"])
        again = [
            r
            for r in client_run.requests
            if r.scenario == answer.scenario and r.method == answer.method and r.path == answer.path and r.n > answer.n
        ]
        if again and wait_s is not None and again[0].arrived - answer.arrived < wait_s - RETRY_AFTER_TOLERANCE_S:
            waited = again[0].arrived - answer.arrived
            problems.append((again[0], f"sent again {waited:.2f} s after Retry-After: {wait_s:g}"))
        chain = (answer.scenario, answer.method, answer.path)
        retries = _retries(again)
        if chain not in chains_seen and len(retries) > MAX_RETRIES:
            problems.append((retries[MAX_RETRIES], f"retried {len(retries)} times (at most {MAX_RETRIES})"))
        chains_seen.add(chain)
    assert not problems, "; ".join(f"{why}: {client_run.cite(r)}" for r, why in problems)


def _retries(again: list[ClientRequest]) -> list[ClientRequest]:
    """The retries of a pushed-back request: the same request again, up to the first one let through."""
    retries = []
    for request in again:
        retries.append(request)
        if request.status not in (503, 429):
            break
    return retries


def _seconds(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date: not what the simulated platform sends


@pytest.mark.requirement("fhirclient@6")
def test_each_request_has_its_own_request_id(client_run: ClientRun) -> None:
    """no two requests carry the same X-Request-Id"""
    tagged = [r for r in client_run.requests if r.headers.get("x-request-id")]
    if not tagged:
        nothing_to_judge("request with an X-Request-Id")
    counts = Counter(r.headers["x-request-id"] for r in tagged)
    repeated = [r for r in tagged if counts[r.headers["x-request-id"]] > 1]
    assert not repeated, f"the same X-Request-Id on several requests: {client_run.cite(*repeated[:5])}"


@pytest.mark.requirement("fhirclient@7")
def test_idempotent_creation_is_conditional(client_run: ClientRun, target: Target) -> None:
    """in the conditional-create scenario every create carries If-None-Exist"""
    base = urlsplit(target.base_url).path.rstrip("/")
    creates = [
        r
        for r in _fhir(client_run, target)
        if r.scenario == IDEMPOTENT_SCENARIO and r.method == "POST" and r.path.count("/") == base.count("/") + 1
    ]
    if not creates:
        nothing_to_judge(f"create in the {IDEMPOTENT_SCENARIO} scenario")
    bare = [r for r in creates if not r.headers.get("if-none-exist")]
    assert not bare, f"creates without If-None-Exist: {client_run.cite(*bare)}"


@pytest.mark.requirement("fhirclient@8")
def test_resources_created_together_reference_each_other_by_urn_uuid(client_run: ClientRun, target: Target) -> None:
    """a transaction's new resources have urn:uuid fullUrls, and their references use them"""
    base = urlsplit(target.base_url).path.rstrip("/")
    transactions = [
        r
        for r in client_run.requests
        if r.method == "POST" and r.path.rstrip("/") == base and isinstance(r.json_body, dict)
        and r.json_body.get("type") == "transaction"
    ]  # fmt: skip
    if not transactions:
        nothing_to_judge("transaction Bundle")
    problems: list[tuple[ClientRequest, str]] = []
    for bundle in transactions:
        created = [e for e in bundle.json_body.get("entry", []) if e.get("request", {}).get("method") == "POST"]
        full_urls = [str(e.get("fullUrl", "")) for e in created]
        if any(not url.startswith("urn:uuid:") for url in full_urls):
            problems.append(
                (bundle, f"new resources with fullUrl {[u for u in full_urls if not u.startswith('urn:uuid:')]}")
            )
        references = set(_references(bundle.json_body))
        if len(created) > 1 and not references & set(full_urls):
            problems.append((bundle, "resources created together do not reference each other by their urn:uuid"))
    assert not problems, "; ".join(f"{why}: {client_run.cite(r)}" for r, why in problems)


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["reference"])] if isinstance(node.get("reference"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    return []
