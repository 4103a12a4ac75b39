"""Helpers the contract checks share: data tagged with the check's unique value, and assertions
whose messages tell a vendor what was expected and what their server did.

Every resource a check creates carries the identifier ``urn:eqlab:contract|<unique>`` so that a
search scoped by it sees only that check's data, whatever else the server holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from eqlab.checks import EvidenceClient

FHIR_JSON = "application/fhir+json"
JSON_MEDIA_TYPES = ("application/fhir+json", "application/json")
JSON_PATCH = "application/json-patch+json"
SYSTEM = "urn:eqlab:contract"
SUBSETTED = "SUBSETTED"
SEVERITIES = frozenset({"fatal", "error", "warning", "information"})
MAX_PAGES = 25  # a paging walk stops here, so a server whose next links loop cannot hang a check

Resource = dict[str, Any]


# --- test data ---------------------------------------------------------------------------------


def tag(unique: str) -> dict[str, str]:
    """The identifier that marks a resource as this check's data."""
    return {"system": SYSTEM, "value": unique}


def scope(unique: str) -> str:
    """The token search value selecting this check's data: ``identifier=<scope>``."""
    return f"{SYSTEM}|{unique}"


def patient(unique: str, family: str = "Muller", **fields: Any) -> Resource:
    return {
        "resourceType": "Patient",
        "identifier": [tag(unique)],
        "name": [{"family": family, "given": ["Anne"]}],
        **fields,
    }


def observation(unique: str, subject: str, code: str = "8867-4", **fields: Any) -> Resource:
    return {
        "resourceType": "Observation",
        "identifier": [tag(unique)],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "Heart rate"},
        "subject": {"reference": subject},
        **fields,
    }


def quantity(value: float, code: str = "/min") -> dict[str, Any]:
    return {"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code}


# --- reading responses -------------------------------------------------------------------------


def shown(response: httpx.Response) -> str:
    """Status, content type and the start of the body, for assertion messages."""
    content_type = response.headers.get("content-type", "no Content-Type")
    text = response.text[:300].replace("\n", " ") if response.content else "(empty body)"
    return f"{response.status_code} ({content_type}) {text}"


def media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def body_of(response: httpx.Response, what: str) -> Resource:
    """The JSON object in ``response``; a clear failure when there is none."""
    try:
        data = response.json()
    except ValueError:
        raise AssertionError(f"{what}: the answer is not JSON: {shown(response)}") from None
    assert isinstance(data, dict), f"{what}: the answer is JSON but not an object: {shown(response)}"
    return data


def version_of(resource: Resource) -> str | None:
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return str(version) if version is not None else None


def last_updated_of(resource: Resource) -> str | None:
    meta = resource.get("meta")
    value = meta.get("lastUpdated") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def family_of(resource: Resource) -> str | None:
    names = resource.get("name")
    if isinstance(names, list) and names and isinstance(names[0], dict):
        family = names[0].get("family")
        return family if isinstance(family, str) else None
    return None


def http_date_ok(value: str | None) -> bool:
    if not value:
        return False
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


# --- interactions ------------------------------------------------------------------------------


def create(client: EvidenceClient, resource: Resource) -> Resource:
    """POST ``resource``; the stored resource (read back through Location when the body is empty)."""
    type_name = resource["resourceType"]
    response = client.post(type_name, json=resource)
    assert response.status_code == 201, (
        f"creating a {type_name} (data this check needs) answered {shown(response)}; expected 201 Created"
    )
    if response.content:
        created = body_of(response, f"POST {type_name}")
        if created.get("resourceType") == type_name and created.get("id"):
            return created
    location = response.headers.get("location", "")
    assert f"{type_name}/" in location, (
        f"POST {type_name} answered 201 without the resource and without a Location header naming it"
    )
    res_id = location.split(f"{type_name}/", 1)[1].split("/", 1)[0]
    return read(client, type_name, res_id)


def read(client: EvidenceClient, type_name: str, res_id: str) -> Resource:
    response = client.get(f"{type_name}/{res_id}")
    assert response.status_code == 200, f"reading {type_name}/{res_id} answered {shown(response)}; expected 200"
    return body_of(response, f"GET {type_name}/{res_id}")


def update(client: EvidenceClient, resource: Resource, **headers: str) -> httpx.Response:
    return client.put(f"{resource['resourceType']}/{resource['id']}", json=resource, headers=headers)


def updated(client: EvidenceClient, resource: Resource) -> Resource:
    """PUT ``resource`` (which exists); the new version."""
    response = update(client, resource)
    where = f"{resource['resourceType']}/{resource['id']}"
    assert response.status_code == 200, f"updating {where} answered {shown(response)}; expected 200"
    return body_of(response, f"PUT {where}")


def search(
    client: EvidenceClient, path: str, params: list[tuple[str, str]] | dict[str, str], **headers: str
) -> Resource:
    """GET ``path?params``: the searchset Bundle (200 asserted)."""
    pairs = tuple(params.items()) if isinstance(params, dict) else tuple(params)
    response = client.get(path, params=pairs, headers=headers)
    query = str(response.request.url.query, "ascii", "replace") if response.request.url.query else ""
    assert response.status_code == 200, f"searching {path}?{query} answered {shown(response)}; expected 200"
    bundle = body_of(response, f"GET {path}?{query}")
    assert bundle.get("resourceType") == "Bundle" and bundle.get("type") == "searchset", (
        f"searching {path}?{query} answered a {bundle.get('resourceType')} of type {bundle.get('type')!r}, "
        "expected a Bundle of type searchset"
    )
    return bundle


def entries(bundle: Resource, mode: str = "match") -> list[Resource]:
    """Resources of the entries in ``mode`` (entries without search.mode count as matches)."""
    out = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") == "OperationOutcome":
            continue
        search_info = entry.get("search")
        entry_mode = search_info.get("mode", "match") if isinstance(search_info, dict) else "match"
        if entry_mode == mode:
            out.append(resource)
    return out


def ids(bundle: Resource, mode: str = "match") -> list[str]:
    return [str(r.get("id")) for r in entries(bundle, mode)]


def keys(bundle: Resource, mode: str = "match") -> set[str]:
    """``Type/id`` of the entries in ``mode``."""
    return {f"{r.get('resourceType')}/{r.get('id')}" for r in entries(bundle, mode)}


def link(bundle: Resource, relation: str) -> str | None:
    for item in bundle.get("link") or []:
        if isinstance(item, dict) and item.get("relation") == relation and isinstance(item.get("url"), str):
            url: str = item["url"]
            return url
    return None


def pages(client: EvidenceClient, first: Resource, what: str) -> Iterator[Resource]:
    """``first``, then each page its ``next`` links lead to (at most ``MAX_PAGES`` more).

    The lab talks to the system under test only: a next link to another origin (a server that
    names its configured host, not the one called) fails the check and is not followed.
    """
    bundle = first
    yield bundle
    target = urlsplit(str(client.base_url))
    for _ in range(MAX_PAGES):
        url = link(bundle, "next")
        if url is None:
            return
        given = urlsplit(url)
        assert not given.netloc or (given.scheme, given.netloc) == (target.scheme, target.netloc), (
            f"the next link of {what} leads to another server than the one called ({url}; called "
            f"{target.scheme}://{target.netloc}): the lab does not follow it"
        )
        response = client.get(url)
        assert response.status_code == 200, f"following the next link of {what} ({url}) answered {shown(response)}"
        bundle = body_of(response, f"a page of {what}")
        yield bundle


def outcome_problems(response: httpx.Response) -> list[str]:
    """What is wrong with ``response`` as an OperationOutcome error answer (empty: nothing)."""
    if media_type(response) not in JSON_MEDIA_TYPES:
        return [f"the Content-Type is {response.headers.get('content-type')!r}, not FHIR JSON"]
    try:
        outcome = response.json()
    except ValueError:
        return ["the body is not JSON"]
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        kind = outcome.get("resourceType") if isinstance(outcome, dict) else type(outcome).__name__
        return [f"the body is a {kind}, not an OperationOutcome"]
    issues = outcome.get("issue")
    if not isinstance(issues, list) or not issues:
        return ["the OperationOutcome has no issue"]
    problems = []
    for i, issue in enumerate(issues):
        if not isinstance(issue, dict):
            problems.append(f"issue[{i}] is not an object")
            continue
        if issue.get("severity") not in SEVERITIES:
            problems.append(f"issue[{i}].severity is {issue.get('severity')!r}")
        if not isinstance(issue.get("code"), str) or not issue["code"].strip():
            problems.append(f"issue[{i}].code is missing")
        if not isinstance(issue.get("diagnostics"), str) or not issue["diagnostics"].strip():
            problems.append(f"issue[{i}].diagnostics is missing or empty")
    return problems


def expressions(response: httpx.Response) -> list[str]:
    """Every issue.expression (and the deprecated issue.location) of an OperationOutcome answer."""
    try:
        outcome = response.json()
    except ValueError:
        return []
    issues = outcome.get("issue") if isinstance(outcome, dict) else None
    found: list[str] = []
    for issue in issues if isinstance(issues, list) else []:
        if isinstance(issue, dict):
            for name in ("expression", "location"):
                found += [str(e) for e in issue.get(name) or [] if isinstance(e, str)]
    return found


def bundle_request(method: str, url: str, resource: Resource | None = None, **fields: Any) -> Resource:
    """A batch/transaction entry."""
    entry: Resource = {"request": {"method": method, "url": url}}
    if resource is not None:
        entry["resource"] = resource
    entry.update(fields)
    return entry


def post_bundle(client: EvidenceClient, kind: str, items: list[Resource]) -> httpx.Response:
    return client.post("", json={"resourceType": "Bundle", "type": kind, "entry": items})
