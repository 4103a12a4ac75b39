"""Writes that name who acted (SPEC section 4): only active practitioners may act on the platform.

The elements that say who acted are a resource type's top-level ``author``, ``requester``,
``performer``, ``recorder`` and ``asserter``: a Reference, or a backbone whose ``actor`` is one
(``Procedure.performer.actor``). They are read from the FHIR structure definitions, not listed by
hand, so every served type that has them is checked. A reference names a practitioner by
``Practitioner/<id>`` or ``PractitionerRole/<id>`` (relative, or absolute on this server), or by its
practitioner code (``identifier`` with system urn:oid:1.3.182.3.1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from reference_impl.faults import declare
from reference_impl.fhir.errors import FhirError, Issue
from reference_impl.fhir.structure import ElementContext, structure
from reference_impl.naming import PRACTITIONER_ID
from reference_impl.rest.handler import Context
from reference_impl.services.directory.activity import ACT_ONLY_ACTIVE, inactivity, local_practitioner
from reference_impl.store.search_run import run_search

INACTIVE_AUTHOR_ACCEPTED = declare(
    "inactive-author-accepted",
    "writes naming an inactive practitioner or role as author, requester, performer, recorder or asserter are stored",
    ("dir@10",),
)
ACTING = ("author", "requester", "performer", "recorder", "asserter")
MAX_SAME_CODE = 10  # Practitioners sharing one practitioner code looked at; a code names one person


@dataclass(frozen=True)
class ActingElement:
    name: str  # as in the resource: "performer"
    repeats: bool
    actor: bool  # a backbone: who acted is its ``actor``


def _elements(type_name: str) -> Iterator[ActingElement]:
    st = structure()
    for name in ACTING:
        for child in st.children(ElementContext(type_name), name):
            if child.type_name == "Reference":
                yield ActingElement(name, child.repeats, actor=False)
            elif child.context is not None and child.type_name == "BackboneElement":
                actors = st.children(child.context, "actor")
                if any(c.type_name == "Reference" for c in actors):
                    yield ActingElement(name, child.repeats, actor=True)


@cache
def acting_elements() -> dict[str, tuple[ActingElement, ...]]:
    """Per served resource type, its elements that name who acted (types without any left out)."""
    found = {t: tuple(_elements(t)) for t in structure().served_types}
    return {t: elements for t, elements in found.items() if elements}


def named(resource: dict[str, Any], element: ActingElement) -> Iterator[tuple[str, dict[str, Any]]]:
    """(FHIRPath of the Reference, the Reference) for each value of ``element`` in ``resource``."""
    value = resource.get(element.name)
    values = value if isinstance(value, list) else [value] if value is not None else []
    type_name = resource.get("resourceType")
    for i, item in enumerate(values):
        path = f"{type_name}.{element.name}" + (f"[{i}]" if element.repeats else "")
        reference = item.get("actor") if element.actor and isinstance(item, dict) else item
        if isinstance(reference, dict):
            yield path + (".actor" if element.actor else ""), reference


def check_actors(ctx: Context, resource: dict[str, Any]) -> None:
    """The write check: 422 naming each element that names an inactive practitioner or role."""
    if ctx.faults.on(INACTIVE_AUTHOR_ACCEPTED):
        return
    issues = []
    for element in acting_elements().get(str(resource.get("resourceType")), ()):
        for path, reference in named(resource, element):
            why = _inactivity(ctx, reference)
            if why is not None:
                issues.append(Issue(f"{path}: {why}; {ACT_ONLY_ACTIVE}", "business-rule", expression=(path,)))
    if issues:
        raise FhirError(422, issues)


def _inactivity(ctx: Context, reference: dict[str, Any]) -> str | None:
    literal = reference.get("reference")
    if isinstance(literal, str):
        base = ctx.request.base_url.rstrip("/") + "/"
        found = local_practitioner(literal.removeprefix(base))
        return inactivity(ctx.conn, *found) if found is not None else None
    identifier = reference.get("identifier")
    if isinstance(identifier, dict) and identifier.get("system") == PRACTITIONER_ID and identifier.get("value"):
        code = str(identifier["value"]).replace(",", "\\,")
        request = ctx.parser().parse("Practitioner", [("identifier", f"{PRACTITIONER_ID}|{code}")], strict=True)
        request.count = MAX_SAME_CODE
        for stored in run_search(ctx.conn, request, with_total=False).matches:
            why = inactivity(ctx.conn, stored.type_name, stored.id)
            if why is not None:
                return f"practitioner code {identifier['value']}: {why}"
    return None
