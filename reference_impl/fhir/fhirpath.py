"""The FHIRPath subset that R4 search parameter expressions use, compiled per resource type.

Supported: element paths (``Patient.name``), choice elements (``Observation.value``), unions
(``|``), ``(X as T)``, ``.as(T)``, ``.ofType(T)``, ``.where(resolve() is T)``,
``.where(element='literal')`` and a trailing ``.exists()``. Anything else raises
:class:`UnsupportedExpression`; the search parameter is then not offered at all (and not listed in
the CapabilityStatement), rather than answered wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reference_impl.fhir.structure import ElementContext, Structure

ABSTRACT_ROOTS = frozenset({"Resource", "DomainResource"})
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[().|=]))")


class UnsupportedExpression(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Node:
    value: Any
    type_name: str
    context: ElementContext | None


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # child | as | resolve-is | where-eq | exists
    name: str = ""
    literal: str = ""


Path = tuple[Step, ...]


def _tokens(expr: str) -> list[str]:
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise UnsupportedExpression(f"cannot read {expr[pos:]!r}")
        out.append(m.group(m.lastgroup or "op"))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise UnsupportedExpression(f"expected {expected!r}, found {tok!r}")
        self.i += 1
        return tok

    def union(self) -> list[tuple[str, Path]]:
        terms = [self.term()]
        while self.peek() == "|":
            self.take("|")
            terms.append(self.term())
        if self.peek() is not None:
            raise UnsupportedExpression(f"unexpected {self.peek()!r}")
        return terms

    def term(self) -> tuple[str, Path]:
        if self.peek() == "(":
            self.take("(")
            root, steps = self.take(), self.steps()
            self.take("as")
            steps = (*steps, Step("as", self.take()))
            self.take(")")
        else:
            root, steps = self.take(), ()
        return root, (*steps, *self.steps())

    def steps(self) -> Path:
        steps: list[Step] = []
        while self.peek() == ".":
            self.take(".")
            name = self.take()
            if self.peek() != "(":
                steps.append(Step("child", name))
                continue
            self.take("(")
            steps.append(self.function(name))
            self.take(")")
        return tuple(steps)

    def function(self, name: str) -> Step:
        if name in ("as", "ofType"):
            return Step("as", self.take())
        if name == "exists":
            return Step("exists")
        if name == "where":
            first = self.take()
            if first == "resolve":
                self.take("(")
                self.take(")")
                self.take("is")
                return Step("resolve-is", self.take())
            self.take("=")
            literal = self.take()
            if not literal.startswith("'"):
                raise UnsupportedExpression(f"where() compares with {literal!r}")
            return Step("where-eq", first, literal[1:-1])
        raise UnsupportedExpression(f"function {name}() is not supported")


def compile_for_type(expression: str, type_name: str) -> list[Path]:
    """The paths of ``expression`` that apply to resources of ``type_name``."""
    paths = []
    for root, steps in _Parser(_tokens(expression)).union():
        if root == type_name or root in ABSTRACT_ROOTS:
            paths.append(steps)
    if not paths:
        raise UnsupportedExpression(f"no part of {expression!r} applies to {type_name}")
    return paths


@dataclass(frozen=True, slots=True)
class PlainPath:
    """A path of plain child steps, each with one JSON key, resolved once against the structure: the
    keys to follow and what the values at the end are. Following it gives the nodes ``evaluate``
    gives without resolving elements per resource: indexing every write spends most of its time
    here, so this hand-written shortcut is worth its few lines (about 3x faster, measured). A path may
    end with ``resolve() is Type`` (``resolves_to``), as every ``patient`` parameter does."""

    keys: tuple[str, ...]
    type_name: str
    context: ElementContext | None
    resolves_to: str | None = None


def plain_path(steps: Path, root_type: str, structure: Structure) -> PlainPath | None:
    """``steps`` as a PlainPath from a ``root_type`` resource; None when a step is not a plain child
    (a choice element, a filter, a cast...) or a final ``resolve() is``: ``evaluate`` handles those."""
    context: ElementContext | None = ElementContext(root_type)
    type_name, keys = root_type, []
    resolves_to = steps[-1].name if steps and steps[-1].kind == "resolve-is" else None
    for step in steps[:-1] if resolves_to else steps:
        if step.kind != "child" or context is None:
            return None
        children = structure.children(context, step.name)
        if len(children) != 1:
            return None
        child = children[0]
        keys.append(child.json_key)
        type_name, context = child.type_name, child.context
    return PlainPath(tuple(keys), type_name, context, resolves_to)


def follow(path: PlainPath, resource: dict[str, Any]) -> list[Node]:
    return [Node(value, path.type_name, path.context) for value in values_at(path, resource)]


def values_at(path: PlainPath, resource: dict[str, Any]) -> list[Any]:
    """The JSON values ``path`` selects in ``resource`` (``follow``'s nodes without their types)."""
    values: list[Any] = [resource]
    for key in path.keys:
        found: list[Any] = []
        for value in values:
            if isinstance(value, dict):
                item = value.get(key)
                if isinstance(item, list):
                    found.extend(item if None not in item else (i for i in item if i is not None))
                elif item is not None:
                    found.append(item)
        if not found:
            return []
        values = found
    if path.resolves_to is not None:
        return [value for value in values if reference_type(value) == path.resolves_to]
    return values


def evaluate(paths: list[Path], resource: dict[str, Any], structure: Structure) -> list[Node]:
    root = Node(resource, resource.get("resourceType", ""), ElementContext(resource.get("resourceType", "")))
    out: list[Node] = []
    for steps in paths:
        nodes = [root]
        for step in steps:
            nodes = list(_apply(step, nodes, structure))
        out.extend(nodes)
    return out


def _apply(step: Step, nodes: list[Node], structure: Structure) -> Iterator[Node]:
    if step.kind == "child":
        for node in nodes:
            if node.context is None or not isinstance(node.value, dict):
                continue
            for child in structure.children(node.context, step.name):
                value = node.value.get(child.json_key)
                for item in value if isinstance(value, list) else [value]:
                    if item is not None:
                        yield Node(item, child.type_name, child.context)
    elif step.kind == "as":
        yield from (n for n in nodes if n.type_name.lower() == step.name.lower())
    elif step.kind == "resolve-is":
        yield from (n for n in nodes if reference_type(n.value) == step.name)
    elif step.kind == "where-eq":
        yield from (n for n in nodes if isinstance(n.value, dict) and n.value.get(step.name) == step.literal)
    elif step.kind == "exists":
        yield Node(bool(nodes), "boolean", None)


def reference_type(value: Any) -> str | None:
    """The resource type a Reference points to, from its literal reference."""
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    if isinstance(ref, str) and "/" in ref and not ref.startswith(("urn:", "#")):
        parts = ref.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2:
            return parts[-2]
    declared = value.get("type")
    return declared if isinstance(declared, str) else None
