"""Checks every resource body goes through before it is stored.

Order: JSON syntax and nesting depth, then ``resourceType``, then the R4B model (structure,
cardinality, primitive formats), then required code bindings. Each failure is a 400 whose
OperationOutcome names the element (``issue.expression``). Business rules (422) belong to the
national services, which run after these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from reference_impl.fhir.errors import FhirError, Issue, invalid
from reference_impl.fhir.models import structural_issues
from reference_impl.fhir.structure import RESOURCE_ID, ElementContext, Structure, structure

MAX_DEPTH = 64
MAX_REPORTED_ISSUES = 50


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc):
            raise _too_deep(max_depth) from None
        raise invalid(f"the body is not valid JSON: {exc}", code="structure") from None
    if json_depth(data) > max_depth:
        raise _too_deep(max_depth)
    return data


def _too_deep(max_depth: int) -> FhirError:
    return invalid(f"the body is nested deeper than {max_depth} levels", code="too-costly")


def json_depth(data: Any) -> int:
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return deepest


def check_resource(data: Any, expected_type: str | None = None) -> dict[str, Any]:
    """The resource if it is valid R4 of a served type (and of ``expected_type``), else 400."""
    if not isinstance(data, dict):
        raise invalid("the body must be a JSON object holding a FHIR resource", code="structure")
    type_name = data.get("resourceType")
    if not isinstance(type_name, str):
        raise invalid("the resource has no resourceType", ["resourceType"], code="required")
    if expected_type is not None and type_name != expected_type:
        raise invalid(
            f"resourceType '{type_name}' does not match the type in the URL, '{expected_type}'", ["resourceType"]
        )
    struct = structure()
    issues = [
        Issue(f"unknown resource type '{t}' at {path}", "not-supported", expression=(path,))
        for path, t in _nested_types(data, type_name)
        if not struct.is_served(t)
    ]
    if not issues:
        issues = structural_issues(data) or []
    if not issues:
        issues = list(_element_issues(data, struct))
    if issues:
        raise FhirError(400, issues[:MAX_REPORTED_ISSUES])
    return data


def _nested_types(data: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, resourceType) of the resource and of every resource nested in it."""
    if isinstance(data, dict):
        if isinstance(data.get("resourceType"), str):
            yield path, data["resourceType"]
        for key, value in data.items():
            if isinstance(value, (dict, list)):
                yield from _nested_types(value, f"{path}.{key}")
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _nested_types(item, f"{path}[{i}]")


def _element_issues(data: dict[str, Any], struct: Structure) -> Iterator[Issue]:
    """Primitive JSON types, forbidden characters and required code bindings, element by element."""
    type_name = data["resourceType"]
    yield from _walk(data, ElementContext(type_name), type_name, struct)


# FHIR JSON gives each primitive one JSON type; pydantic's lax parsing would accept "yes" for a
# boolean or "2" for an integer, so the types are checked here against the element definitions.
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "positiveInt": (int,),
    "unsignedInt": (int,),
    "integer64": (int,),
    "decimal": (int, float),
}
# FHIR strings may hold no control characters but tab, carriage return and line feed.
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _walk(obj: dict[str, Any], ctx: ElementContext, path: str, struct: Structure) -> Iterator[Issue]:
    keys = struct.json_keys(ctx)
    for key, value in obj.items():
        entry = keys.get(key)
        if entry is None:
            continue
        name, child = entry
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            item_path = f"{path}.{key}" + (f"[{i}]" if isinstance(value, list) else "")
            if child.context is None and child.type_name != "Resource":
                yield from _primitive_issues(item, child.type_name, item_path, ctx, name, struct)
            elif child.type_name == "Resource" and isinstance(item, dict) and "resourceType" in item:
                yield from _walk(item, ElementContext(item["resourceType"]), item_path, struct)
            elif child.context is not None and isinstance(item, dict):
                yield from _walk(item, child.context, item_path, struct)


def _primitive_issues(
    item: Any, type_name: str, path: str, ctx: ElementContext, name: str, struct: Structure
) -> Iterator[Issue]:
    if item is None:
        return
    expected = JSON_TYPES.get(type_name, (str,))
    if (isinstance(item, bool) and bool not in expected) or not isinstance(item, expected):
        kind = "a JSON boolean" if expected == (bool,) else "a JSON number" if str not in expected else "a JSON string"
        yield Issue(f"{path}: must be {kind} ({type_name}), not {json_kind(item)}", "value", expression=(path,))
    elif isinstance(item, str) and _FORBIDDEN_CHARACTERS.search(item):
        yield Issue(f"{path}: contains a control character FHIR strings may not hold", "value", expression=(path,))
    elif ctx.type_name == "Reference" and name == "reference" and isinstance(item, str):
        yield from _reference_issues(item, path, struct)
    elif type_name == "code" and isinstance(item, str):
        allowed = struct.required_codes.get(f"{ctx.type_name}.{ctx.child_path(name)}")
        if allowed is not None and item not in allowed:
            codes = ", ".join(sorted(allowed)[:12])
            yield Issue(
                f"{path}: '{item}' is not one of the allowed codes ({codes})", "code-invalid", expression=(path,)
            )


def _reference_issues(value: str, path: str, struct: Structure) -> Iterator[Issue]:
    """A literal reference to a resource type names it by a FHIR id (relative or absolute URL alike)."""
    if value.startswith(("#", "urn:")):
        return
    parts = value.split("/_history/", maxsplit=1)[0].rstrip("/").split("/")
    if len(parts) >= 2 and struct.is_served(parts[-2]) and not RESOURCE_ID.match(parts[-1]):
        yield Issue(
            f"{path}: '{value[:100]}' names a {parts[-2]} by an id that is not a FHIR id "
            "(1 to 64 letters, digits, '-' or '.')",
            "value",
            expression=(path,),
        )


def json_kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), "null")
