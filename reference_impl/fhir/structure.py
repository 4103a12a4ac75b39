"""What the server knows about FHIR R4 structures, read from the vendored definitions.

The definitions come from the official ``hl7.fhir.r4.examples`` 4.0.1 package
(``scripts/vendor_fhir_definitions.py``). An element context is a pair ``(type, path)``:
``("Observation", "")`` is an Observation, ``("Observation", "referenceRange")`` its backbone
element, ``("HumanName", "")`` a data type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEFINITIONS = Path(__file__).parent / "definitions"
RESOURCE_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}\Z")  # FHIR's id type; \Z: "$" would let a trailing line break in
TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}\Z")
BACKBONE_TYPES = frozenset({"BackboneElement", "Element"})
FHIR_VERSION = "4.0.1"


@dataclass(frozen=True, slots=True)
class ElementContext:
    type_name: str
    path: str = ""

    def child_path(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name


@dataclass(frozen=True, slots=True)
class Child:
    """One way an element can appear in JSON: its key, FHIR type and element context."""

    json_key: str
    type_name: str
    context: ElementContext | None  # None for primitives
    repeats: bool


def _load(name: str) -> Any:
    return json.loads((DEFINITIONS / name).read_text(encoding="utf-8"))


class Structure:
    def __init__(self, data: dict[str, Any], required_codes: dict[str, list[str]]) -> None:
        self._types: dict[str, Any] = data["types"]
        self.served_types: tuple[str, ...] = tuple(data["served"])
        self._served = frozenset(self.served_types)
        self.required_codes = {path: frozenset(codes) for path, codes in required_codes.items()}
        self._children: dict[tuple[ElementContext, str], tuple[Child, ...]] = {}
        self._json_keys: dict[ElementContext, dict[str, tuple[str, Child]]] = {}

    def is_served(self, type_name: str) -> bool:
        return type_name in self._served

    def is_primitive(self, type_name: str) -> bool:
        t = self._types.get(type_name)
        return t is None or t["kind"] == "primitive-type"

    def element(self, ctx: ElementContext, name: str) -> dict[str, Any] | None:
        t = self._types.get(ctx.type_name)
        if t is None:
            return None
        els = t["elements"]
        key = ctx.child_path(name)
        found: dict[str, Any] | None = els.get(key) or els.get(key + "[x]")
        return found

    def children(self, ctx: ElementContext, name: str) -> tuple[Child, ...]:
        """The JSON keys under which element ``name`` of ``ctx`` may appear, one per type."""
        found = self._children.get((ctx, name))
        if found is None:
            found = self._children[(ctx, name)] = self._resolve_children(ctx, name)
        return found

    def _resolve_children(self, ctx: ElementContext, name: str) -> tuple[Child, ...]:
        t = self._types.get(ctx.type_name)
        if t is None:
            return ()
        els = t["elements"]
        key = ctx.child_path(name)
        if key in els:
            info, choice = els[key], False
        elif key + "[x]" in els:
            info, choice = els[key + "[x]"], True
        else:
            return ()
        repeats = info.get("max", "1") != "1"
        if "ref" in info:
            return (Child(name, "BackboneElement", ElementContext(ctx.type_name, info["ref"]), repeats),)
        out = []
        for type_name in info.get("types", []):
            json_key = name + type_name[0].upper() + type_name[1:] if choice else name
            if type_name in BACKBONE_TYPES:
                sub: ElementContext | None = ElementContext(ctx.type_name, key)
            elif self.is_primitive(type_name) or type_name == "Resource":
                sub = None
            else:
                sub = ElementContext(type_name)
            out.append(Child(json_key, type_name, sub, repeats))
        return tuple(out)

    def json_keys(self, ctx: ElementContext) -> dict[str, tuple[str, Child]]:
        """Every JSON key an object of ``ctx`` may carry, with its element name and child."""
        found = self._json_keys.get(ctx)
        if found is None:
            found = {}
            t = self._types.get(ctx.type_name, {"elements": {}})
            prefix = ctx.child_path("")
            for rel in t["elements"]:
                if rel.startswith(prefix) and "." not in rel[len(prefix) :]:
                    name = rel[len(prefix) :].removesuffix("[x]")
                    for child in self.children(ctx, name):
                        found[child.json_key] = (name, child)
            self._json_keys[ctx] = found
        return found

    def summary_elements(self, type_name: str) -> frozenset[str]:
        """Top-level element names flagged isSummary (choice elements by their stem)."""
        els = self._types[type_name]["elements"]
        return frozenset(p.removesuffix("[x]") for p, e in els.items() if "." not in p and e.get("summary"))

    def mandatory_elements(self, type_name: str) -> frozenset[str]:
        els = self._types[type_name]["elements"]
        return frozenset(p.removesuffix("[x]") for p, e in els.items() if "." not in p and e.get("min"))

    def element_names(self, type_name: str) -> frozenset[str]:
        els = self._types[type_name]["elements"]
        return frozenset(p.removesuffix("[x]") for p in els if "." not in p)


@cache
def structure() -> Structure:
    return Structure(_load("structure.json"), _load("required-bindings.json"))


@cache
def search_parameter_definitions() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _load("search-parameters.json")
    return result


@cache
def patient_compartment() -> dict[str, tuple[str, ...]]:
    """Per resource type, the search parameters that put a resource in a patient's compartment."""
    data = json.loads((DEFINITIONS / "compartments.json").read_text(encoding="utf-8"))["Patient"]
    return {type_name: tuple(params) for type_name, params in data.items()}
