"""``_summary`` and ``_elements``: return part of a resource, tagged SUBSETTED."""

from __future__ import annotations

from typing import Any

from reference_impl.fhir.structure import ElementContext, structure

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
ALWAYS = frozenset({"resourceType", "id", "meta"})


def subset(resource: dict[str, Any], summary: str | None, elements: str | None) -> dict[str, Any]:
    if summary in (None, "false") and not elements:
        return resource
    struct = structure()
    type_name = resource["resourceType"]
    keep: set[str]
    if elements:
        keep = {e.strip() for e in elements.split(",")} | struct.mandatory_elements(type_name)
    elif summary == "true":
        keep = set(struct.summary_elements(type_name))
    elif summary == "text":
        keep = {"text"} | struct.mandatory_elements(type_name)
    elif summary == "data":
        keep = set(struct.element_names(type_name) - {"text"})
    else:  # count: entries are not returned at all; a single resource is returned whole
        return resource
    out = {k: v for k, v in resource.items() if k in ALWAYS or _stem(k, keep)}
    if summary == "true" and not elements:
        out = {k: _summary_of(v, ElementContext(type_name), k) for k, v in out.items()}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out


def _summary_of(value: Any, ctx: ElementContext, key: str) -> Any:
    """A backbone element (e.g. CapabilityStatement.rest) keeps only its summary elements, recursively."""
    struct = structure()
    found = struct.json_keys(ctx).get(key)
    if found is None:
        return value
    child = found[1]
    inner = child.context
    if inner is None or inner.type_name != ctx.type_name or not inner.path:
        return value
    if isinstance(value, list):
        return [_summary_of_backbone(item, inner) for item in value]
    return _summary_of_backbone(value, inner)


def _summary_of_backbone(value: Any, ctx: ElementContext) -> Any:
    if not isinstance(value, dict):
        return value
    struct = structure()
    kept = {}
    for key, item in value.items():
        found = struct.json_keys(ctx).get(key)
        element = struct.element(ctx, found[0]) if found else None
        if element is not None and (element.get("summary") or element.get("min")):
            kept[key] = _summary_of(item, ctx, key)
    return kept


def _stem(key: str, keep: set[str]) -> bool:
    """``valueQuantity`` is kept when ``value`` is; primitive extensions (``_birthDate``) follow their element."""
    key = key.lstrip("_")
    if key in keep:
        return True
    return any(key.startswith(name) and key[len(name) :][:1].isupper() for name in keep)
