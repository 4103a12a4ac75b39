"""search (type and system level, GET and POST _search) and history, answered as Bundles."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from reference_impl.auth.policy import NOT_PERMITTED, forbidden
from reference_impl.faults import declare
from reference_impl.fhir.dates import InvalidDate, now_instant, parse_range
from reference_impl.fhir.errors import Issue, error, invalid, not_found
from reference_impl.fhir.query import (
    EVERYTHING,
    Criterion,
    HasCriterion,
    Reach,
    SearchRequest,
    SeesEverything,
    Visibility,
    non_negative_int,
)
from reference_impl.fhir.subsetting import subset
from reference_impl.rest import negotiation
from reference_impl.rest.handler import Context, FhirResponse
from reference_impl.rest.routing import Kind
from reference_impl.store import resources as store
from reference_impl.store.counting import Counting
from reference_impl.store.resources import StoredResource, instant_of
from reference_impl.store.search_run import SearchPage, included, run_search

HISTORY_OLDEST_FIRST = declare("history-oldest-first", "history Bundles list versions oldest first", ("fhir@9",))
POST_SEARCH_IGNORES_BODY = declare(
    "post-search-ignores-body", "POST _search ignores the form parameters in its body", ("fhir@10",)
)
COUNT_IGNORED = declare("count-ignored", "_count is ignored: every page holds the default 50 entries", ("fhir@30",))
SORT_IGNORED = declare("sort-ignored", "_sort is ignored: results come in storage order", ("fhir@31",))
INCLUDE_IGNORED = declare("include-ignored", "_include and _revinclude are ignored", ("fhir@32",))
SUMMARY_COUNT_IGNORED = declare(
    "summary-count-ignored", "_summary=count returns the matching entries too", ("fhir@33",)
)
NO_TOTAL = declare("no-total", "searchset Bundles carry no total", ("fhir@35",))
NO_NEXT_LINK = declare("no-next-link", "searchset Bundles carry no next link", ("fhir@36",))
RELATIVE_PAGING_LINKS = declare("relative-paging-links", "paging links are relative, not absolute URLs", ("fhir@36",))
STRICT_HANDLING_IGNORED = declare(
    "strict-handling-ignored", "Prefer: handling=strict is ignored: unknown parameters pass", ("fhir@37",)
)
UNKNOWN_PARAM_500 = declare(
    "unknown-param-500",
    "an unknown search parameter crashes the search (500) instead of being ignored",
    ("fhir@37", "fhir@49"),
)
DATE_PREFIXES_IGNORED = declare(
    "date-prefixes-ignored", "date search prefixes (gt, lt, ...) are ignored and read as eq", ("fhir@39",)
)
STRING_SEARCH_EXACT = declare(
    "string-search-exact", "string search matches exactly (case- and accent-sensitive, no prefix match)", ("fhir@40",)
)
EXACT_AS_PREFIX = declare(
    "pdqm-exact-as-prefix",
    "the :exact modifier on strings is read as the default match (prefix, case- and accent-insensitive)",
    ("mpi@14",),
)
REVINCLUDE_ROLE_IGNORED = declare(
    "revinclude-role-ignored",
    "_revinclude=PractitionerRole:... is ignored: a Practitioner search returns no roles",
    ("dir@7",),
)
REVINCLUDE_UNFILTERED = declare(
    "revinclude-unfiltered",
    "_include and _revinclude return every referenced or referencing resource, whatever the token may read",
    ("auth@36",),
)
CHAIN_IGNORES_COMPARTMENT = declare(
    "chain-ignores-compartment",
    "chained parameters and _has look into every patient's data, not only what the token may read",
    ("auth@37",),
)


def search(ctx: Context) -> FhirResponse:
    faults = ctx.faults
    params = list(ctx.request.query)
    if ctx.request.method == "POST" and not faults.on(POST_SEARCH_IGNORES_BODY):
        negotiation.require_body_type(
            ctx.request, frozenset({negotiation.FORM_TYPE}), "form parameters (application/x-www-form-urlencoded)"
        )
        try:
            params += parse_qsl(ctx.request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise invalid("the _search form body is not UTF-8") from None
    strict = ctx.request.prefer.get("handling") == "strict" and not faults.on(STRICT_HANDLING_IGNORED)
    request = parse_for_caller(ctx, ctx.interaction.type_name, params, strict)
    if faults.active:
        _apply_search_faults(ctx, params, request)
    counting = _counting(request)
    if ctx.policy.judges(ctx.access.principal, request.type_name):
        page = _judged_page(ctx, request, counting)
    else:
        page = run_search(ctx.conn, request, counting=counting)
        if ctx.policy.rules:  # the services' rules, as for a direct read of each match (the total shrinks with it)
            readable = [s for s in page.matches if ctx.policy.permits(ctx.access, "read", s.parsed())]
            total = page.total - (len(page.matches) - len(readable)) if page.total is not None else None
            page = replace(page, matches=readable, total=total)
    include_visibility = ctx.access.visibility if not faults.on(REVINCLUDE_UNFILTERED) else SeesEverything()
    found = included(ctx.conn, page.matches, request.includes, include_visibility)
    if ctx.policy.rules:  # the services' rules, as for a direct read of each included resource
        found = [s for s in found if ctx.policy.permits(ctx.access, "read", s.parsed())]
    entries = [_entry(ctx, stored, request, "match") for stored in page.matches]
    entries += [_entry(ctx, stored, request, "include") for stored in found]
    warnings = _unreadable_includes(request)
    if request.count_capped:
        maximum = ctx.settings.max_page_size
        warnings.append(Issue(f"_count was reduced to the server maximum {maximum}", "informational", "warning"))
    if warnings:
        outcome = {"resourceType": "OperationOutcome", "issue": [w.to_fhir() for w in warnings]}
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    path = ctx.interaction.type_name or ""
    links = _links(ctx, path, request.used, request.count, request.offset, page.more)
    total = page.total if not faults.on(NO_TOTAL) else None
    return FhirResponse(200, make_bundle("searchset", entries, links, total), touched=(*page.matches, *found))


MAX_JUDGED = 5000  # matches judged one by one in one search (such a search names one patient's record)


def _counting(request: SearchRequest) -> Counting:
    """How the total is counted, as ``_total`` asks (the last one given): FHIR R4 names ``none``,
    ``estimate`` and ``accurate``; any other value is a 400, like any invalid value of a known parameter.
    Without ``_total`` as ``estimate``: exact up to ``counting.EXACT_UP_TO`` matches, estimated beyond."""
    asked = [value for name, value in request.used if name == "_total"]
    if not asked:
        return Counting.ESTIMATE
    try:
        return Counting(asked[-1])
    except ValueError:
        modes = ", ".join(mode.value for mode in Counting)
        raise invalid(f"_total must be one of {modes}, not '{asked[-1]}'", ["_total"]) from None


def _judged_page(ctx: Context, request: SearchRequest, counting: Counting) -> SearchPage:
    """A search of a type the services' rules judge resource by resource: every match is judged before the
    page is cut, so the total, ``_summary=count`` and the pages count only what the caller may read (a
    masked document is not even counted). Judged in full, they are counted exactly at no extra cost."""
    everything = run_search(ctx.conn, replace(request, count=MAX_JUDGED + 1, offset=0, summary=None), with_total=False)
    if len(everything.matches) > MAX_JUDGED:
        raise error(422, f"more than {MAX_JUDGED} matches to judge one by one: narrow the search", "too-costly")
    readable = [s for s in everything.matches if ctx.policy.permits(ctx.access, "read", s.parsed())]
    shown = [] if request.summary == "count" else readable[request.offset : request.offset + request.count]
    total = len(readable) if counting is not Counting.NONE or request.summary == "count" else None
    return SearchPage(total, shown, more=request.offset + request.count < len(readable))


def parse_for_caller(
    ctx: Context, type_name: str | None, params: list[tuple[str, str]], strict: bool, kind: str = "search-type"
) -> SearchRequest:
    """Search parameters as criteria limited to what the caller may see, for a search or a
    conditional interaction alike: one place, so that no door sees more than a direct read."""
    request = ctx.parser().parse(type_name, params, strict)
    request.visibility, request.kind = ctx.access.visibility, kind
    patient = ctx.access.compartment_patient
    if patient is not None:
        _forbid_other_patients(request, patient)
    _forbid_unsearchable(request)
    ctx.policy.check_search(ctx.access, request)
    return request


def _forbid_other_patients(request: SearchRequest, patient_id: str) -> None:
    """A patient token's search naming another patient is refused, not silently emptied."""
    for criterion in request.criteria:
        if not isinstance(criterion, Criterion):
            continue
        param = criterion.param
        naming_patients = param.type == "reference" and "Patient" in param.targets
        if naming_patients or (param.code == "_id" and request.type_name == "Patient"):
            for value in criterion.values:
                if value.ref_type in (None, "Patient") and value.code not in (None, patient_id):
                    raise forbidden(NOT_PERMITTED, "access_denied")


def _forbid_unsearchable(request: SearchRequest) -> None:
    """A chain or ``_has`` into a type the caller may not search at all is a 403 that names the
    type (it depends on the token alone, not on the data); within reach, the sub-query sees only
    what the caller may see (``search_sql``)."""
    for criterion in request.criteria:
        if isinstance(criterion, HasCriterion):
            types = [criterion.source_type]
        elif criterion.chains:
            types = [target for target, _ in criterion.chains]
        else:
            continue
        reaches = [request.visibility.of(t, "search-type") for t in types]
        if not any(reach.allowed for reach in reaches):
            raise forbidden(f"this search reaches into {', '.join(types)}: {reaches[0].reason}")


def _unreadable_includes(request: SearchRequest) -> list[Issue]:
    """A warning for each _include/_revinclude of a type the caller may not read (nothing of it is
    included); the answer depends on the token alone, never on what exists."""
    warnings = []
    for include in request.includes:
        type_name = include.source_type if include.reverse else include.target_type
        if type_name is None:
            continue
        reach = request.visibility.of(type_name, "read")
        if not reach.allowed:
            name = "_revinclude" if include.reverse else "_include"
            warnings.append(Issue(f"{name}={include.text}: nothing included, {reach.reason}", "forbidden", "warning"))
    return warnings


def _apply_search_faults(ctx: Context, params: list[tuple[str, str]], request: SearchRequest) -> None:
    """The deliberate search defects (reference_impl/faults.py) that change a parsed request."""
    faults = ctx.faults
    if faults.on(UNKNOWN_PARAM_500) and {n for n, _ in params} - {n for n, _ in request.used}:
        raise LookupError("no handler for a search parameter")  # a crash, not a FhirError: answered 500
    if faults.on(COUNT_IGNORED):
        request.count, request.count_capped = ctx.settings.default_page_size, False
    if faults.on(SORT_IGNORED):
        request.sort = []
    if faults.on(INCLUDE_IGNORED):
        request.includes = []
    if faults.on(REVINCLUDE_ROLE_IGNORED):
        request.includes = [i for i in request.includes if not (i.reverse and i.source_type == "PractitionerRole")]
    if faults.on(SUMMARY_COUNT_IGNORED) and request.summary == "count":
        request.summary = None
    if faults.on(CHAIN_IGNORES_COMPARTMENT) and request.type_name is not None:
        request.visibility = _SubQueriesSeeEverything(request.visibility, request.type_name)
    ignored = faults.ignored_search_parameters()
    criteria: list[Criterion | HasCriterion] = []
    for given in request.criteria:
        changed = given
        if isinstance(given, Criterion) and (request.type_name, given.param.code) in ignored:
            continue
        if isinstance(given, Criterion) and given.modifier is None:
            if given.param.type == "date" and faults.on(DATE_PREFIXES_IGNORED):
                changed = replace(given, values=tuple(replace(v, prefix="eq") for v in given.values))
            if given.param.type == "string" and faults.on(STRING_SEARCH_EXACT):
                changed = replace(given, modifier="exact")
        if isinstance(given, Criterion) and given.modifier == "exact" and faults.on(EXACT_AS_PREFIX):
            changed = replace(given, modifier=None)
        criteria.append(changed)
    request.criteria = criteria


class _SubQueriesSeeEverything:
    """The fault "chain-ignores-compartment": the searched type is limited, its chains and _has are not."""

    def __init__(self, visibility: Visibility, searched: str) -> None:
        self.visibility, self.searched = visibility, searched

    def of(self, type_name: str, kind: str) -> Reach:
        return self.visibility.of(type_name, kind) if type_name == self.searched else EVERYTHING

    def limited(self, kind: str) -> dict[str, Reach]:
        return self.visibility.limited(kind)

    def judged_one_by_one(self, type_name: str) -> bool:
        return False


def _entry(ctx: Context, stored: StoredResource, request: SearchRequest, mode: str) -> dict[str, Any]:
    resource: Any = orjson.Fragment(stored.content or "{}")
    if (request.summary and request.summary != "false") or request.elements:
        resource = subset(stored.parsed(), request.summary, ",".join(request.elements) or None)
    return {"fullUrl": ctx.url(stored.type_name, stored.id), "resource": resource, "search": {"mode": mode}}


def _links(
    ctx: Context, path: str, used: list[tuple[str, str]], count: int, offset: int, more: bool
) -> list[dict[str, str]]:
    base = [(k, v) for k, v in used if k not in ("_count", "_offset")]

    def url(at: int) -> str:
        query = urlencode([*base, ("_count", str(count)), ("_offset", str(at))])
        if ctx.faults.on(RELATIVE_PAGING_LINKS):
            return f"{path}?{query}"
        return ctx.url(path) + "?" + query if path else ctx.request.base_url.rstrip("/") + "?" + query

    links = [{"relation": "self", "url": url(offset)}]
    if count > 0:
        links.append({"relation": "first", "url": url(0)})
        if offset > 0:
            links.append({"relation": "previous", "url": url(max(0, offset - count))})
        if more and not ctx.faults.on(NO_NEXT_LINK):
            links.append({"relation": "next", "url": url(offset + count)})
    return links


def make_bundle(
    kind: str, entries: list[dict[str, Any]], links: list[dict[str, str]], total: int | None
) -> dict[str, Any]:
    _, instant = now_instant()
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant},
        "type": kind,
    }
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def history(ctx: Context) -> FhirResponse:
    kind = ctx.interaction.kind
    type_name = ctx.interaction.type_name
    res_id = ctx.interaction.res_id
    if kind is Kind.HISTORY_INSTANCE:
        assert type_name is not None and res_id is not None
        current = store.current(ctx.conn, type_name, res_id)
        if ctx.access.compartment_patient is not None or ctx.policy.rules:
            ctx.policy.check_resource(ctx.access, str(kind), current.parsed() if current and current.content else None)
        if current is None:
            raise not_found(f"{type_name}/{res_id} is not known")
    params = dict(ctx.request.query)
    settings = ctx.settings
    count = (
        min(non_negative_int("_count", params["_count"]), settings.max_page_size)
        if "_count" in params
        else settings.default_page_size
    )
    offset = non_negative_int("_offset", params["_offset"]) if "_offset" in params else 0
    since, at = _instant_param(params, "_since", low=True), _instant_param(params, "_at", low=False)
    # Whole-server history shows no type the caller cannot read in full (AuditEvents, for most).
    hidden = ctx.access.visibility.limited("read") if type_name is None else {}
    page = store.history_page(ctx.conn, type_name, res_id, since, at, count, offset, hidden)
    if res_id is None and ctx.policy.rules:  # the services' rules, as for a direct read of each version
        readable = [(s, m) for s, m in page.versions if ctx.policy.permits(ctx.access, "read", _version_of(s))]
        total = page.total - (len(page.versions) - len(readable)) if page.total is not None else None
        page = replace(page, versions=readable, total=total)
    entries = [_history_entry(ctx, stored, method) for stored, method in page.versions]
    if ctx.faults.on(HISTORY_OLDEST_FIRST):
        entries.reverse()
    used = [(k, v) for k, v in ctx.request.query if k in ("_since", "_at")]
    path = "/".join(p for p in (type_name, res_id) if p) + ("/_history" if type_name else "_history")
    bundle = make_bundle("history", entries, _links(ctx, path, used, count, offset, page.more), page.total)
    return FhirResponse(200, bundle, touched=tuple(s for s, _ in page.versions))


def _version_of(stored: StoredResource) -> dict[str, Any]:
    """A version as the rules see it: a deletion is known by its type and id alone."""
    return stored.parsed() if stored.content else {"resourceType": stored.type_name, "id": stored.id}


def _instant_param(params: dict[str, str], name: str, low: bool) -> int | None:
    if name not in params:
        return None
    try:
        start, end = parse_range(params[name])
    except InvalidDate as exc:
        raise invalid(f"{name}: {exc}") from None
    return start if low else end - 1


def _history_entry(ctx: Context, stored: StoredResource, method: str) -> dict[str, Any]:
    full_url = ctx.url(stored.type_name, stored.id)
    entry: dict[str, Any] = {"fullUrl": full_url}
    if stored.content is not None:
        entry["resource"] = orjson.Fragment(stored.content)
    url = f"{stored.type_name}/{stored.id}" if method != "POST" else stored.type_name
    status = {"POST": "201 Created", "DELETE": "204 No Content"}.get(method, "200 OK")
    entry["request"] = {"method": method, "url": url}
    entry["response"] = {"status": status, "etag": stored.etag, "lastModified": instant_of(stored)}
    return entry
