"""Turn the values a search parameter selects into rows of the search index tables.

Each search parameter type has one table (see ``store/schema.py``); a row holds the parameter
code and the typed, normalised value, so every search runs as SQL.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from reference_impl.fhir.dates import MAX_US, MIN_US, InvalidDate, parse_range
from reference_impl.fhir.fhirpath import Node
from reference_impl.fhir.structure import RESOURCE_ID, TYPE_NAME

MAX_INDEXED_CHARS = 512
QUANTITY_TYPES = frozenset(
    {"Quantity", "Age", "Count", "Distance", "Duration", "Money", "SimpleQuantity", "MoneyQuantity"}
)
NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")

Row = tuple[Any, ...]


def normalize(text: str) -> str:
    """Case- and accent-insensitive form used for default string matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())[:MAX_INDEXED_CHARS]


def _clip(text: str | None) -> str | None:
    return text[:MAX_INDEXED_CHARS] if isinstance(text, str) else None


def string_rows(nodes: Iterable[Node]) -> Iterator[Row]:
    for node in nodes:
        for text in _strings_of(node):
            yield (normalize(text), _clip(text))


def _strings_of(node: Node) -> Iterator[str]:
    value = node.value
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        parts = NAME_PARTS if node.type_name == "HumanName" else ADDRESS_PARTS if node.type_name == "Address" else ()
        for part in parts:
            item = value.get(part)
            for text in item if isinstance(item, list) else [item]:
                if isinstance(text, str):
                    yield text


def token_rows(nodes: Iterable[Node]) -> Iterator[Row]:
    """(system, code, normalised display text)."""
    for node in nodes:
        value, kind = node.value, node.type_name
        if isinstance(value, bool):
            yield (None, "true" if value else "false", None)
        elif isinstance(value, str):
            yield (None, _clip(value), None)
        elif not isinstance(value, dict):
            continue
        elif kind == "CodeableConcept":
            text = value.get("text")
            for coding in value.get("coding") or []:
                if isinstance(coding, dict):
                    yield _coding_row(coding, text)
            if isinstance(text, str) and not value.get("coding"):
                yield (None, None, normalize(text))
        elif kind == "Coding":
            yield _coding_row(value, None)
        elif kind == "Identifier":
            type_text = (value.get("type") or {}).get("text") if isinstance(value.get("type"), dict) else None
            yield (_clip(value.get("system")), _clip(value.get("value")), normalize(type_text) if type_text else None)
        elif kind == "ContactPoint" and isinstance(value.get("value"), str):
            yield (_clip(value.get("system")), _clip(value["value"]), None)


def _coding_row(coding: dict[str, Any], text: Any) -> Row:
    display = coding.get("display") if isinstance(coding.get("display"), str) else text
    return (
        _clip(coding.get("system")),
        _clip(coding.get("code")),
        normalize(display) if isinstance(display, str) else None,
    )


def date_rows(nodes: Iterable[Node]) -> Iterator[Row]:
    """(low, high) in epoch microseconds, half-open."""
    for node in nodes:
        value = node.value
        try:
            if isinstance(value, str):
                yield parse_range(value)
            elif node.type_name == "Period" and isinstance(value, dict):
                start, end = value.get("start"), value.get("end")
                if start is None and end is None:
                    continue
                low = parse_range(start)[0] if start else MIN_US
                high = parse_range(end)[1] if end else MAX_US
                yield (low, high)
            elif node.type_name == "Timing" and isinstance(value, dict):
                for event in value.get("event") or []:
                    yield parse_range(event)
        except InvalidDate:
            continue


def number_rows(nodes: Iterable[Node]) -> Iterator[Row]:
    for node in nodes:
        number = _number(node.value)
        if number is not None:
            yield (number,)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def quantity_rows(nodes: Iterable[Node]) -> Iterator[Row]:
    """(value, system, code, unit)."""
    for node in nodes:
        value = node.value
        if node.type_name in QUANTITY_TYPES and isinstance(value, dict):
            number = _number(value.get("value"))
            if number is not None:
                yield (
                    number,
                    _clip(value.get("system")),
                    _clip(value.get("code") or value.get("currency")),
                    _clip(value.get("unit")),
                )


def reference_rows(nodes: Iterable[Node]) -> Iterator[Row]:
    """(target_type, target_id, url, identifier_system, identifier_value)."""
    for node in nodes:
        value = node.value
        if isinstance(value, str):  # canonical / uri used as a reference
            yield (None, None, _clip(value), None, None)
            continue
        if not isinstance(value, dict):
            continue
        ref = value.get("reference")
        ident: dict[str, Any] = value["identifier"] if isinstance(value.get("identifier"), dict) else {}
        target_type = target_id = None
        if isinstance(ref, str) and not ref.startswith("#"):
            target_type, target_id = split_reference(ref)
        if ref is None and not ident:
            continue
        yield (target_type, target_id, _clip(ref), _clip(ident.get("system")), _clip(ident.get("value")))


def split_reference(ref: str) -> tuple[str | None, str | None]:
    """``Type/id``, ``Type/id/_history/v`` or an absolute URL ending so, as (type, id); (None, None)
    when it does not end with a type name and a FHIR id (1-64 characters)."""
    path = ref.split("/_history/", maxsplit=1)[0].rstrip("/")
    if path.startswith("urn:"):
        return None, None
    parts = path.split("/")
    if len(parts) >= 2 and TYPE_NAME.match(parts[-2]) and RESOURCE_ID.match(parts[-1]):
        return parts[-2], parts[-1]
    return None, None


def uri_rows(nodes: Iterable[Node]) -> Iterator[Row]:
    for node in nodes:
        if isinstance(node.value, str):
            yield (_clip(node.value),)


ROWS_BY_TYPE = {
    "string": string_rows,
    "token": token_rows,
    "date": date_rows,
    "number": number_rows,
    "quantity": quantity_rows,
    "reference": reference_rows,
    "uri": uri_rows,
}
