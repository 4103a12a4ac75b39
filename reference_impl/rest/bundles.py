"""Batch and transaction Bundles (FHIR R4 http "batch/transaction").

A transaction runs every entry on one database connection in one transaction: any failing entry
rolls back all of them and the client gets that entry's error. Entries run in the order FHIR
prescribes (DELETE, POST, PUT/PATCH, GET/HEAD); ``urn:uuid:`` full URLs of created resources are
replaced by their new ``Type/id`` everywhere in the Bundle. A batch runs each entry in its own
transaction and reports each entry's own outcome.
"""

from __future__ import annotations

import http
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlsplit

import orjson
from sqlalchemy import Connection

from reference_impl.audit.balp import AuditRecord
from reference_impl.faults import FaultSwitches, declare
from reference_impl.fhir.errors import FhirError, error, invalid
from reference_impl.fhir.validation import check_resource, parse_json
from reference_impl.rest import negotiation
from reference_impl.rest.crud import find_matches
from reference_impl.rest.handler import Context, FhirResponse
from reference_impl.rest.routing import FhirRequest, Interaction, Kind, route
from reference_impl.rest.searching import make_bundle
from reference_impl.settings import Settings
from reference_impl.store import resources as store
from reference_impl.store.resources import instant_of

TRANSACTION_NOT_ATOMIC = declare(
    "transaction-not-atomic",
    "a transaction runs entry by entry: a failing entry leaves the earlier ones stored",
    ("fhir@12",),
)
REFERENCES_NOT_REWRITTEN = declare(
    "references-not-rewritten",
    "urn:uuid references in a transaction are stored as sent, not rewritten to the new ids",
    ("fhir@13",),
)
BATCH_STOPS_AT_FAILURE = declare(
    "batch-stops-at-failure", "a batch stops at its first failing entry and drops the rest", ("fhir@11",)
)

# Beyond this many entries a transaction runs off the event loop (it holds the writer for a while).
LONG_TRANSACTION = 50
# Elements whose value may be an entry's full URL: references, and urls such as Attachment.url (an MHD
# DocumentReference points to its Binary by the Binary's urn:uuid:), which FHIR also has rewritten.
REWRITTEN_KEYS = frozenset({"reference", "url"})
PROCESSING_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
HEADER_FIELDS = {
    "ifMatch": "if-match",
    "ifNoneMatch": "if-none-match",
    "ifNoneExist": "if-none-exist",
    "ifModifiedSince": "if-modified-since",
}


T = TypeVar("T")


class Pipeline(Protocol):
    """What a Bundle needs of the server: each entry goes through the same pipeline as a request."""

    settings: Settings
    faults: FaultSwitches

    async def handle(self, request: FhirRequest) -> FhirResponse: ...

    def run_audited(
        self,
        request: FhirRequest,
        interaction: Interaction,
        work: Callable[[Connection, FhirRequest, list[AuditRecord]], T],
        write: bool,
        long: bool = False,
    ) -> Awaitable[T]: ...

    def execute(
        self, conn: Connection, request: FhirRequest, interaction: Interaction, trail: list[AuditRecord] | None = None
    ) -> FhirResponse: ...

    def context(self, conn: Connection, request: FhirRequest, interaction: Interaction) -> Context: ...


@dataclass
class Entry:
    index: int
    request: FhirRequest
    full_url: str | None
    resource: dict[str, Any] | None


async def process(server: Pipeline, request: FhirRequest) -> FhirResponse:
    negotiation.require_body_type(request, negotiation.FHIR_JSON_TYPES, "a FHIR JSON Bundle")
    bundle = parse_json(request.body, server.settings.max_json_depth)
    bundle_type = bundle.get("type") if isinstance(bundle, dict) else None
    if bundle_type not in ("batch", "transaction"):
        raise invalid("POST to the base URL takes a Bundle of type batch or transaction", ["Bundle.type"])
    envelope = {
        **bundle,
        "entry": [
            {k: v for k, v in e.items() if k != "resource"} for e in bundle.get("entry") or [] if isinstance(e, dict)
        ],
    }
    check_resource(envelope, "Bundle")
    entries = [_entry(request, i, e) for i, e in enumerate(bundle.get("entry") or [])]
    if bundle_type == "transaction" and server.faults.on(TRANSACTION_NOT_ATOMIC):
        responses = [await _batch_entry(server, entry) for entry in entries]  # each entry commits on its own
        failed = [r["response"]["status"] for r in responses if not r["response"]["status"].startswith("2")]
        if failed:
            raise error(int(failed[0][:3]), f"a transaction entry failed ({failed[0]})")
    elif bundle_type == "transaction":
        limit = server.settings.max_transaction_entries
        if len(entries) > limit:
            raise error(
                413,
                f"a transaction holds at most {limit} entries, this one {len(entries)}: split it, or send a batch",
                "too-costly",
            )
        whole = route(request.method, request.path)
        responses = await server.run_audited(
            request,
            whole,
            lambda conn, _caller, trail: _transaction(server, conn, entries, trail),
            write=True,
            long=len(entries) > LONG_TRANSACTION,
        )
    else:
        responses = []
        for entry in entries:
            responses.append(await _batch_entry(server, entry))
            if server.faults.on(BATCH_STOPS_AT_FAILURE) and not responses[-1]["response"]["status"].startswith("2"):
                break
    return FhirResponse(200, make_bundle(f"{bundle_type}-response", responses, [], None))


def _entry(parent: FhirRequest, index: int, raw: Any) -> Entry:
    where = [f"Bundle.entry[{index}]"]
    req = raw.get("request") if isinstance(raw, dict) else None
    if not isinstance(req, dict) or req.get("method") not in PROCESSING_ORDER or not isinstance(req.get("url"), str):
        raise invalid(
            f"entry {index} needs request.method (GET, HEAD, POST, PUT, PATCH or DELETE) and request.url", where
        )
    method, url = req["method"], req["url"]
    resource = raw.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise invalid(f"entry {index}: resource must be a JSON object", where)
    headers = {"content-type": negotiation.FHIR_JSON, "accept": negotiation.FHIR_JSON}
    headers.update({h: req[f] for f, h in HEADER_FIELDS.items() if isinstance(req.get(f), str)})
    if "prefer" in parent.headers:
        headers["prefer"] = parent.headers["prefer"]
    path, query = _split_url(parent.base_url, url)
    body = orjson.dumps(resource) if resource is not None else b""
    sub = FhirRequest(
        method, path, query, headers, body, parent.base_url, parent.request_id,
        principal=parent.principal, client_address=parent.client_address,
    )  # fmt: skip
    return Entry(index, sub, raw.get("fullUrl"), resource)


def _split_url(base_url: str, url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    if url.startswith(base_url.rstrip("/") + "/"):
        url = url[len(base_url.rstrip("/")) + 1 :]
    parts = urlsplit(url)
    return parts.path.lstrip("/"), tuple(parse_qsl(parts.query, keep_blank_values=True))


async def _batch_entry(server: Pipeline, entry: Entry) -> dict[str, Any]:
    try:
        if route(entry.request.method, entry.request.path).kind is Kind.BATCH:
            raise invalid(f"entry {entry.index}: a batch cannot contain another batch or transaction")
        return _response_entry(entry, await server.handle(entry.request))
    except FhirError as exc:
        return {"response": {"status": _status(exc.status), "outcome": exc.outcome}}


def _transaction(
    server: Pipeline, conn: Connection, entries: list[Entry], trail: list[AuditRecord]
) -> list[dict[str, Any]]:
    references = _assign_ids(server, conn, entries)
    results: dict[int, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: PROCESSING_ORDER[e.request.method]):
        sub = _rewrite(entry, references if not server.faults.on(REFERENCES_NOT_REWRITTEN) else {})
        try:
            interaction = route(sub.method, sub.path)
            if interaction.kind is Kind.BATCH:
                raise invalid("a transaction cannot contain another batch or transaction")
            response = server.execute(conn, sub, interaction, trail)
        except FhirError as exc:
            issues = [
                replace(i, diagnostics=f"entry {entry.index} ({sub.method} {sub.path}): {i.diagnostics}")
                for i in exc.issues
            ]
            raise FhirError(exc.status, issues, exc.headers) from None
        results[entry.index] = _response_entry(entry, response)
    return [results[e.index] for e in entries]


def _assign_ids(server: Pipeline, conn: Connection, entries: list[Entry]) -> dict[str, str]:
    """Decide up front which resource each full URL will name, so every reference can be rewritten.

    A POST gets a new id; a conditional create or update that matches an existing resource names
    that resource instead (more than one match fails when the entry runs).
    """
    references: dict[str, str] = {}
    for entry in entries:
        sub = entry.request
        type_name = (entry.resource or {}).get("resourceType")
        if not entry.full_url or not isinstance(type_name, str) or sub.method not in ("POST", "PUT"):
            continue
        if sub.method == "PUT" and not sub.query:
            references[entry.full_url] = sub.path  # a plain update names its resource in its URL
            continue
        condition = sub.header("if-none-exist") if sub.method == "POST" else _query_of(sub)
        if condition:
            interaction = route(sub.method, sub.path)
            try:  # the caller's own view of the matches, as when the entry runs
                matches = find_matches(server.context(conn, sub, interaction), type_name, condition)
            except FhirError:
                matches = []  # the entry meets the same refusal when it runs, with its index
            if len(matches) == 1:
                references[entry.full_url] = f"{type_name}/{matches[0].id}"
                continue
        body_id = (entry.resource or {}).get("id") if sub.method == "PUT" else None
        res_id = body_id if isinstance(body_id, str) else store.new_id()
        references[entry.full_url] = f"{type_name}/{res_id}"
        entry.request = replace(sub, assigned_id=res_id)
    return references


def _query_of(request: FhirRequest) -> str | None:
    return "&".join(f"{k}={v}" for k, v in request.query) if request.query else None


def _rewrite(entry: Entry, references: dict[str, str]) -> FhirRequest:
    sub = entry.request
    if not references:
        return sub
    body = sub.body
    if entry.resource is not None:
        body = orjson.dumps(_replace_references(entry.resource, references))
    query = tuple((k, references.get(v, v)) for k, v in sub.query)
    headers = dict(sub.headers)
    if "if-none-exist" in headers:
        headers["if-none-exist"] = "&".join(
            f"{k}={references.get(v, v)}" for k, v in parse_qsl(headers["if-none-exist"], keep_blank_values=True)
        )
    return replace(sub, body=body, query=query, headers=headers)


def _replace_references(node: Any, references: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in REWRITTEN_KEYS and isinstance(value, str) and value in references:
                out[key] = references[value]
            else:
                out[key] = _replace_references(value, references)
        return out
    if isinstance(node, list):
        return [_replace_references(item, references) for item in node]
    return node


def _response_entry(entry: Entry, response: FhirResponse) -> dict[str, Any]:
    result: dict[str, Any] = {"status": _status(response.status)}
    out: dict[str, Any] = {}
    stored = response.stored
    if stored is not None:
        out["fullUrl"] = f"{entry.request.base_url.rstrip('/')}/{stored.type_name}/{stored.id}"
        if "Location" in response.headers:
            result["location"] = response.headers["Location"]
        result["etag"] = stored.etag
        result["lastModified"] = instant_of(stored)
    elif entry.full_url:
        out["fullUrl"] = entry.full_url
    if response.body and response.raw_media_type is None:
        body = orjson.loads(response.json_bytes())
        if body.get("resourceType") == "OperationOutcome":
            result["outcome"] = body
        else:
            out["resource"] = body
    out["response"] = result
    return out


def _status(code: int) -> str:
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)
