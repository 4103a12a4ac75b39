"""Content negotiation: which JSON media type to answer with (406), which bodies to accept (415)."""

from __future__ import annotations

import functools

from reference_impl.fhir.errors import error
from reference_impl.rest.routing import FhirRequest

FHIR_JSON = "application/fhir+json"
FHIR_JSON_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir"})
JSON_PATCH_TYPES = frozenset({"application/json-patch+json"})
FORM_TYPE = "application/x-www-form-urlencoded"
_FORMAT_ALIASES = {"json": FHIR_JSON, "text/json": "application/json"}
_WILDCARDS = frozenset({"*/*", "application/*"})
SUPPORTED_FHIR_VERSIONS = frozenset({"4.0", "4.0.1"})


def media_type(request: FhirRequest) -> str | None:
    value = request.header("content-type")
    return value.split(";", 1)[0].strip().lower() if value else None


def require_body_type(request: FhirRequest, allowed: frozenset[str], description: str) -> None:
    declared = request.header("content-type") or ""
    kind = media_type(request)
    charset = _params(declared).get("charset", "utf-8").lower()
    if kind not in allowed or charset not in ("utf-8", "utf8"):
        shown = declared or "no Content-Type"
        raise error(415, f"the body must be {description} in UTF-8; got {shown}", "not-supported")


def is_raw_binary_upload(request: FhirRequest) -> bool:
    kind = media_type(request)
    return kind is not None and kind not in FHIR_JSON_TYPES


def wants_raw_binary(request: FhirRequest) -> bool:
    """A Binary is returned as its raw content unless the client explicitly asks for FHIR JSON."""
    if any(k == "_format" for k, _ in request.query):
        return False
    return not any(kind in FHIR_JSON_TYPES for kind, _ in _accepted(request.header("accept") or ""))


def response_type(request: FhirRequest) -> str:
    """The media type to answer with, or a 406 when the client accepts none we produce."""
    formats = [v for k, v in request.query if k == "_format"]
    if formats:
        wanted = _FORMAT_ALIASES.get(formats[-1].strip(), formats[-1].strip().split(";")[0])
        if wanted not in FHIR_JSON_TYPES:
            raise error(406, f"_format={formats[-1]} is not produced here; use json", "not-supported")
        return wanted if wanted != "application/json+fhir" else FHIR_JSON
    accept = request.header("accept")
    if not accept:
        return FHIR_JSON
    accepted = _accepted(accept)
    for kind, params in accepted:
        version = params.get("fhirversion")
        if version is not None and version not in SUPPORTED_FHIR_VERSIONS:
            continue
        if kind == "application/json":
            return "application/json"
        if kind in FHIR_JSON_TYPES or kind in _WILDCARDS:
            return FHIR_JSON
    raise error(
        406,
        f"cannot answer in any of the accepted media types ({accept}); this server produces {FHIR_JSON}",
        "not-supported",
    )


@functools.lru_cache(maxsize=256)
def _accepted(accept: str) -> tuple[tuple[str, dict[str, str]], ...]:
    """Media ranges with q > 0, best first (remembered: a client sends the same Accept every time)."""
    ranges = []
    for position, item in enumerate(accept.split(",")):
        kind = item.split(";", 1)[0].strip().lower()
        params = _params(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if kind and quality > 0:
            ranges.append((-quality, position, kind, params))
    return tuple((kind, params) for _, _, kind, params in sorted(ranges))


def _params(header_value: str) -> dict[str, str]:
    out = {}
    for part in header_value.split(";")[1:]:
        key, _, value = part.partition("=")
        out[key.strip().lower()] = value.strip().strip('"')
    return out
