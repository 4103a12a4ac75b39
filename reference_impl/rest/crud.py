"""read, vread, create, update, patch and delete, with their conditional forms (FHIR R4 http)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl

import jsonpatch

from reference_impl.faults import declare
from reference_impl.fhir.dates import http_date, parse_http_date
from reference_impl.fhir.errors import FhirError, error, information, invalid, not_found
from reference_impl.fhir.query import SeesEverything
from reference_impl.fhir.subsetting import subset
from reference_impl.fhir.validation import check_resource, parse_json
from reference_impl.rest import negotiation
from reference_impl.rest.handler import Context, FhirResponse
from reference_impl.rest.searching import parse_for_caller
from reference_impl.store import resources as store
from reference_impl.store.resources import StoredResource
from reference_impl.store.search_run import run_search

NO_META_VERSION = declare("no-meta-version", "read and vread return resources without meta.versionId", ("fhir@14",))
NO_LOCATION = declare("no-location", "create and update answer without a Location header", ("fhir@16",))
VERSION_NOT_INCREMENTED = declare(
    "version-not-incremented",
    "update overwrites the current version in place: meta.versionId stays the same",
    ("fhir@6",),
)
VREAD_RETURNS_CURRENT = declare(
    "vread-returns-current", "vread ignores the version and returns the current one", ("fhir@4",)
)
DELETION_LOGGED_FOR_NOBODY = declare(
    "deletion-logged-for-nobody",
    "a delete of patient data is audited naming the resource but not the patient whose data it was",
    ("audit@3",),
)
IF_MATCH_IGNORED = declare("if-match-ignored", "If-Match is ignored: stale updates and deletes overwrite", ("fhir@17",))
CONDITIONAL_CREATE_IGNORED = declare(
    "conditional-create-ignored",
    "If-None-Exist is ignored: conditional create always creates a duplicate",
    ("fhir@18",),
)
CONDITIONAL_UPDATE_IGNORED = declare(
    "conditional-update-ignored",
    "conditional update ignores its matches and always creates a new resource",
    ("fhir@19",),
)
GONE_AS_404 = declare("gone-as-404", "reading a deleted resource answers 404 instead of 410", ("fhir@20",))
UPDATE_ID_MISMATCH_ACCEPTED = declare(
    "update-id-mismatch-accepted",
    "update stores the body under the URL id even when the body names another id or none",
    ("fhir@22",),
)
LENIENT_VALIDATION = declare(
    "lenient-validation",
    "resources are stored after only a resourceType check (unknown elements, bad types and codes pass)",
    ("fhir@23",),
)
MEDIA_TYPE_UNCHECKED = declare(
    "media-type-unchecked", "resource bodies are parsed whatever their Content-Type: never 415", ("fhir@28",)
)
DEPTH_LIMIT_IGNORED = declare(
    "depth-limit-ignored", "resources nested deeper than 64 levels are accepted", ("fhir@46",)
)
RETRIEVE_WRONG_MEDIA_TYPE = declare(
    "retrieve-wrong-media-type",
    "a Binary read as raw content is answered as application/octet-stream, not in its own contentType",
    ("dsp@15",),
)
CONDITIONAL_EXISTENCE_ORACLE = declare(
    "conditional-existence-oracle",
    "conditional interactions match other patients' data: 403 when it exists, 404/201 when it does not",
    ("auth@38",),
)
OCTET_STREAM = "application/octet-stream"


# --- reading -----------------------------------------------------------------------------------


def read(ctx: Context) -> FhirResponse:
    stored = _existing(ctx, ctx.type_name, ctx.res_id)
    _reach(ctx, stored.parsed())
    if _not_modified(ctx, stored):
        return FhirResponse(304, headers=_version_headers(stored))
    if ctx.type_name == "Binary" and negotiation.wants_raw_binary(ctx.request):
        binary = stored.parsed()
        content = base64.b64decode(binary.get("data", ""))
        media = (
            binary.get("contentType", OCTET_STREAM) if not ctx.faults.on(RETRIEVE_WRONG_MEDIA_TYPE) else OCTET_STREAM
        )
        return FhirResponse(200, content, _version_headers(stored), stored, media)
    return _with_subsetting(ctx, stored)


def vread(ctx: Context) -> FhirResponse:
    version = ctx.interaction.version_id or ""
    known_form = version.isascii() and version.isdigit() and len(version) <= 9  # beyond: no such version
    stored = store.version(ctx.conn, ctx.type_name, ctx.res_id, int(version)) if known_form else None
    _reach(ctx, stored.parsed() if stored and stored.content else None)
    if stored is None:
        raise not_found(f"{ctx.type_name}/{ctx.res_id} has no version '{version}'")
    if stored.deleted:
        raise error(410, f"version {version} of {ctx.type_name}/{ctx.res_id} is a deletion", "deleted")
    if ctx.faults.on(VREAD_RETURNS_CURRENT):
        stored = store.current(ctx.conn, ctx.type_name, ctx.res_id) or stored
    return _with_subsetting(ctx, stored)


def _with_subsetting(ctx: Context, stored: StoredResource) -> FhirResponse:
    params = dict(ctx.request.query)
    body: dict[str, Any] | bytes = stored.content.encode() if stored.content else b""
    if "_summary" in params or "_elements" in params:
        body = subset(stored.parsed(), params.get("_summary"), params.get("_elements"))
    if ctx.faults.on(NO_META_VERSION) and stored.content:
        body = stored.parsed()
        body.get("meta", {}).pop("versionId", None)
    return FhirResponse(200, body, _version_headers(stored), stored)


def _reach(ctx: Context, resource: dict[str, Any] | None) -> None:
    """The access policy's word on one resource: a patient token reaches only the patient's own.

    For a patient token, "no such resource" and "someone else's" are the same 403, so a patient
    cannot learn whether another patient's data exists.
    """
    if ctx.access.principal is not None:
        ctx.policy.check_resource(ctx.access, str(ctx.interaction.kind), resource)


def _existing(ctx: Context, type_name: str, res_id: str, for_update: bool = False) -> StoredResource:
    stored = store.current(ctx.conn, type_name, res_id, for_update)
    if ctx.access.compartment_patient is not None and (stored is None or stored.deleted):
        _reach(ctx, None)  # refuses: nothing to show is indistinguishable from not yours
    if stored is None:
        raise not_found(f"{type_name}/{res_id} is not known")
    if stored.deleted and ctx.faults.on(GONE_AS_404):
        raise not_found(f"{type_name}/{res_id} is not known")
    if stored.deleted:
        gone = error(410, f"{type_name}/{res_id} was deleted", "deleted")
        gone.headers.update(_version_headers(stored))
        raise gone
    return stored


def _not_modified(ctx: Context, stored: StoredResource) -> bool:
    if_none_match = ctx.request.header("if-none-match")
    if if_none_match is not None:
        return _etag_version(if_none_match) == str(stored.version_id)
    since = ctx.request.header("if-modified-since")
    since_us = parse_http_date(since) if since else None
    return since_us is not None and stored.last_updated // 1_000_000 <= since_us // 1_000_000


# --- writing -----------------------------------------------------------------------------------


def create(ctx: Context) -> FhirResponse:
    resource = _body_resource(ctx, ctx.type_name)
    _reach(ctx, resource)
    condition = ctx.request.header("if-none-exist")
    if condition and not ctx.faults.on(CONDITIONAL_CREATE_IGNORED):
        matches = find_matches(ctx, ctx.type_name, condition)
        if len(matches) == 1:
            _reach(ctx, matches[0].parsed())
            return _written(ctx, matches[0], 200)
    stored = _save(ctx, resource, ctx.request.assigned_id or store.new_id(), None, "POST")
    return _written(ctx, stored, 201)


def update(ctx: Context) -> FhirResponse:
    resource = _body_resource(ctx, ctx.type_name)
    if ctx.interaction.res_id is None:
        return _conditional_update(ctx, resource)
    if ctx.faults.on(UPDATE_ID_MISMATCH_ACCEPTED):
        return _put(ctx, resource, ctx.res_id)
    body_id = resource.get("id")
    if body_id is None:
        raise invalid("the resource in an update must carry its id", ["id"], code="required")
    if body_id != ctx.res_id:
        raise invalid(f"the resource id '{body_id}' does not match the id in the URL '{ctx.res_id}'", ["id"])
    return _put(ctx, resource, ctx.res_id)


def _conditional_update(ctx: Context, resource: dict[str, Any]) -> FhirResponse:
    matches = find_matches(ctx, ctx.type_name, _query_string(ctx))
    if ctx.faults.on(CONDITIONAL_UPDATE_IGNORED):
        matches = []
    body_id = resource.get("id")
    if matches:
        target = matches[0].id
        if body_id is not None and body_id != target:
            raise invalid(
                f"the resource id '{body_id}' differs from the id of the matching resource '{target}'", ["id"]
            )
        return _put(ctx, resource, target)
    if body_id is not None:
        return _put(ctx, resource, body_id)
    return _put(ctx, resource, ctx.request.assigned_id or store.new_id(), server_chose_id=True)


def _put(ctx: Context, resource: dict[str, Any], res_id: str, server_chose_id: bool = False) -> FhirResponse:
    _reach(ctx, {**resource, "id": res_id})
    current = store.current(ctx.conn, ctx.type_name, res_id, for_update=True)
    if current is not None and current.content:
        _reach(ctx, current.parsed())
    elif ctx.access.compartment_patient is not None and not server_chose_id:
        # Creating under an id the client chose would tell a taken id (someone else's resource)
        # from a free one: a compartment-limited caller creates with POST instead.
        _reach(ctx, None)
    _check_if_match(ctx, current)
    in_place = ctx.faults.on(VERSION_NOT_INCREMENTED)
    stored = _save(ctx, resource, res_id, current, "PUT", reuse_version=in_place)
    created = current is None or current.deleted
    return _written(ctx, stored, 201 if created else 200, replaced=current)


def patch(ctx: Context) -> FhirResponse:
    negotiation.require_body_type(
        ctx.request, negotiation.JSON_PATCH_TYPES, "a JSON Patch (application/json-patch+json)"
    )
    operations = parse_json(ctx.request.body, ctx.settings.max_json_depth)
    if not isinstance(operations, list):
        raise invalid("a JSON Patch document is a JSON array of operations", code="structure")
    current = _existing(ctx, ctx.type_name, ctx.res_id, for_update=True)
    _reach(ctx, current.parsed())
    _check_if_match(ctx, current)
    try:
        patched = jsonpatch.JsonPatch(operations).apply(current.parsed())
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise error(422, f"the patch cannot be applied: {exc}", "processing") from None
    except (TypeError, KeyError, ValueError) as exc:
        raise invalid(f"the patch document is malformed: {exc}", code="structure") from None
    if not isinstance(patched, dict) or patched.get("resourceType") != ctx.type_name or patched.get("id") != ctx.res_id:
        raise error(422, "a patch may not change the resourceType or id", "processing")
    try:
        resource = check_resource(patched, ctx.type_name)
    except FhirError as exc:
        raise FhirError(422, exc.issues) from None
    _reach(ctx, resource)
    stored = _save(ctx, resource, ctx.res_id, current, "PATCH")
    return _written(ctx, stored, 200, replaced=current)


def delete(ctx: Context) -> FhirResponse:
    if ctx.interaction.res_id is None:
        matches = find_matches(ctx, ctx.type_name, _query_string(ctx))
        if not matches:
            raise not_found(f"no {ctx.type_name} matches the delete criteria")
        current: StoredResource | None = store.current(ctx.conn, ctx.type_name, matches[0].id, for_update=True)
    else:
        current = store.current(ctx.conn, ctx.type_name, ctx.res_id, for_update=True)
    _reach(ctx, current.parsed() if current is not None and current.content else None)
    if current is None:
        raise not_found(f"{ctx.type_name}/{ctx.res_id} is not known")
    if current.deleted:
        return FhirResponse(200, information(f"{current.type_name}/{current.id} was already deleted"), stored=current)
    _check_if_match(ctx, current)
    deleted = store.mark_deleted(ctx.conn, current)
    ctx.writes.after_write(ctx, deleted)
    outcome = information(f"{deleted.type_name}/{deleted.id} deleted (version {deleted.version_id})")
    # Audited as an access to the version it deleted: in the log of the patients whose data that was.
    touched = () if ctx.faults.on(DELETION_LOGGED_FOR_NOBODY) else (current,)
    return FhirResponse(200, outcome, {"ETag": deleted.etag}, deleted, touched=touched)


# --- helpers -----------------------------------------------------------------------------------


def _save(
    ctx: Context,
    resource: dict[str, Any],
    res_id: str,
    current: StoredResource | None,
    method: str,
    reuse_version: bool = False,
) -> StoredResource:
    """Store a new version, between the services' checks and their follow-ups (same transaction)."""
    ctx.writes.before_write(ctx, resource)
    stored = store.save(ctx.conn, ctx.registry, resource, res_id, current, method, reuse_version=reuse_version)
    ctx.writes.after_write(ctx, stored)
    return stored


def _body_resource(ctx: Context, type_name: str) -> dict[str, Any]:
    request = ctx.request
    if type_name == "Binary" and negotiation.is_raw_binary_upload(request):
        data = base64.b64encode(request.body).decode()
        return {"resourceType": "Binary", "contentType": negotiation.media_type(request), "data": data}
    faults = ctx.faults
    if not faults.on(MEDIA_TYPE_UNCHECKED):
        negotiation.require_body_type(request, negotiation.FHIR_JSON_TYPES, "FHIR JSON (application/fhir+json)")
    depth = ctx.settings.max_json_depth if not faults.on(DEPTH_LIMIT_IGNORED) else 1_000_000
    data = parse_json(request.body, depth)
    if faults.on(LENIENT_VALIDATION) and isinstance(data, dict) and data.get("resourceType") == type_name:
        return data
    return check_resource(data, type_name)


def _query_string(ctx: Context) -> str:
    if not ctx.request.query:
        raise invalid(f"a conditional {ctx.interaction.kind} needs search criteria")
    return "&".join(f"{k}={v}" for k, v in ctx.request.query)


def find_matches(ctx: Context, type_name: str, query: str) -> list[StoredResource]:
    """The resources matching conditional criteria, among those the caller may see (a resource out
    of reach answers as one that does not exist); more than one is a 412."""
    params = [(k, v) for k, v in parse_qsl(query.split("?", 1)[-1], keep_blank_values=True) if k != "_format"]
    if not params:
        raise invalid("the conditional criteria are empty")
    request = parse_for_caller(ctx, type_name, params, strict=True, kind=str(ctx.interaction.kind))
    if ctx.faults.on(CONDITIONAL_EXISTENCE_ORACLE):
        request.visibility = SeesEverything()
    request.count, request.offset = 2, 0
    store.lock_type(ctx.conn, type_name)
    page = run_search(ctx.conn, request, with_total=False)
    if len(page.matches) > 1:
        raise error(412, f"the criteria '{query}' match more than one {type_name}", "multiple-matches")
    return page.matches


def _etag_version(value: str) -> str:
    return value.strip().removeprefix("W/").strip('"')


def _check_if_match(ctx: Context, current: StoredResource | None) -> None:
    if_match = ctx.request.header("if-match")
    if if_match is None or ctx.faults.on(IF_MATCH_IGNORED):
        return
    if current is None or current.deleted or _etag_version(if_match) != str(current.version_id):
        have = (
            "no current version"
            if current is None or current.deleted
            else f'the current version is W/"{current.version_id}"'
        )
        raise error(412, f"If-Match {if_match} does not match: {have}", "conflict")


def _version_headers(stored: StoredResource) -> dict[str, str]:
    return {"ETag": stored.etag, "Last-Modified": http_date(stored.last_updated)}


def _written(ctx: Context, stored: StoredResource, status: int, replaced: StoredResource | None = None) -> FhirResponse:
    """The answer to a create, update or patch; audited for the patients of the version it ``replaced``
    too, so that data moved off a record shows in that record's access log."""
    headers = _version_headers(stored)
    if not ctx.faults.on(NO_LOCATION):
        headers["Location"] = ctx.url(stored.type_name, stored.id, "_history", str(stored.version_id))
    preference = ctx.request.prefer.get("return", "representation")
    body: dict[str, Any] | bytes | None = stored.content.encode() if stored.content else None
    if preference == "minimal":
        body = None
    elif preference == "OperationOutcome":
        body = information(f"{stored.type_name}/{stored.id} stored as version {stored.version_id}")
    touched = (replaced, stored) if replaced is not None and replaced.content else ()
    return FhirResponse(status, body, headers, stored, touched=touched)
