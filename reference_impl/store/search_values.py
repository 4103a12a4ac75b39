"""One search value as a condition on its index table (a shape, ``sql_shapes.py``), as FHIR R4 defines
each parameter type, modifier and prefix.

Dates are half-open ranges ``[low, high)``; prefixes compare the resource's range with the search value's
range (e.g. ``gt``: the resource's range ends after the search range).
"""

from __future__ import annotations

from reference_impl.fhir.indexing import normalize
from reference_impl.fhir.query import Criterion, Value
from reference_impl.store.schema import INDEX_TABLES
from reference_impl.store.sql_shapes import (
    TRUE,
    Column,
    Node,
    all_of,
    any_of,
    column,
    compare,
    is_null,
    like,
    negate,
)

APPROXIMATE = 0.1  # `ap`: within 10 %


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _starts_with(of: Column, prefix: str) -> Node:
    """``of`` starts with ``prefix``, as a range the btree index can answer.

    Both backends compare these columns by code point (SQLite BINARY, PostgreSQL "C"), so the
    strings starting with ``prefix`` are exactly those in ``[prefix, successor)``.
    """
    if not prefix:
        return TRUE
    successor = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return all_of(compare(of, "ge", prefix), compare(of, "lt", successor))


def date_condition(low: Column | Node, high: Column | Node, value: Value) -> Node:
    sl, sh = int(value.low), int(value.high)
    if value.prefix == "ap":
        margin = max(int((sh - sl) * APPROXIMATE), 86_400_000_000)
        return all_of(compare(low, "lt", sh + margin), compare(high, "gt", sl - margin))

    # ``low < sh`` follows from ``low < high <= sh``: said outright, it bounds the index range scanned
    # (low, high) from both ends, instead of every later date (half a national birth-date index).
    def eq() -> Node:
        return all_of(compare(low, "ge", sl), compare(low, "lt", sh), compare(high, "le", sh))

    prefix = value.prefix
    if prefix == "eq":
        return eq()
    if prefix == "ne":
        return negate(eq())
    if prefix == "gt":
        return compare(high, "gt", sh)
    if prefix == "lt":
        return compare(low, "lt", sl)
    if prefix == "ge":
        return any_of(compare(high, "gt", sh), eq())
    if prefix == "le":
        return any_of(compare(low, "lt", sl), eq())
    if prefix == "sa":
        return compare(low, "ge", sh)
    if prefix == "eb":
        return compare(high, "le", sl)
    raise ValueError(f"not a date prefix: {prefix}")


# A number's prefix as one comparison with the number itself ("eq", "ne" and "ap" compare its range).
_NUMBER_COMPARISONS = {"gt": "gt", "lt": "lt", "ge": "ge", "le": "le", "sa": "gt", "eb": "lt"}


def _number_condition(of: Column, value: Value) -> Node:
    if value.prefix == "ap":
        margin = abs(value.number) * APPROXIMATE
        return all_of(compare(of, "ge", value.number - margin), compare(of, "le", value.number + margin))
    if value.prefix in ("eq", "ne"):
        eq = all_of(compare(of, "ge", value.low), compare(of, "lt", value.high))
        return eq if value.prefix == "eq" else negate(eq)
    return compare(of, _NUMBER_COMPARISONS[value.prefix], value.number)


def _token_condition(system: Column, code: Column, value: Value) -> Node:
    parts = []
    if value.has_system:
        parts.append(compare(system, "eq", value.system) if value.system is not None else is_null(system))
    if value.code is not None:
        parts.append(compare(code, "eq", value.code))
    return all_of(*parts) if parts else TRUE


def value_condition(criterion: Criterion, value: Value, alias: str = "") -> Node:
    """``value`` of ``criterion`` as a condition on its index table's rows (the table under ``alias`` if given)."""
    param, modifier = criterion.param, criterion.modifier
    table = INDEX_TABLES[param.type]

    def c(name: str) -> Column:
        return column(table, name, alias)

    if param.type == "string":
        if modifier == "exact":
            return compare(c("value_exact"), "eq", value.raw)
        if modifier == "contains":
            return like(c("value_norm"), "%" + _like_escape(normalize(value.raw)) + "%")
        return _starts_with(c("value_norm"), normalize(value.raw))
    if param.type == "token":
        if modifier == "text":
            return _starts_with(c("text_norm"), normalize(value.raw))
        return _token_condition(c("system"), c("code"), value)
    if param.type == "date":
        return date_condition(c("low"), c("high"), value)
    if param.type == "number":
        return _number_condition(c("value"), value)
    if param.type == "quantity":
        parts = [_number_condition(c("value"), value)]
        if value.system is not None:
            parts.append(compare(c("system"), "eq", value.system))
        if value.code is not None:
            by_code = compare(c("code"), "eq", value.code)
            parts.append(any_of(by_code, compare(c("unit"), "eq", value.code)) if value.system is None else by_code)
        return all_of(*parts)
    if param.type == "reference":
        if modifier == "identifier":
            return _token_condition(c("ident_system"), c("ident_value"), value)
        if value.system is not None:  # an absolute URL not on this server
            return compare(c("url"), "eq", value.system)
        parts = [compare(c("target_id"), "eq", value.code)]
        if value.ref_type is not None:
            parts.append(compare(c("target_type"), "eq", value.ref_type))
        return all_of(*parts)
    if modifier == "below":
        return _starts_with(c("value"), value.raw)
    return compare(c("value"), "eq", value.raw)
