"""A search's statement as a shape: the tree ``compiled_shapes.py`` compiles once per shape, not built with
SQLAlchemy for every search.

Building a search's statement with SQLAlchemy costs more than running it: 207-407 µs for the national
flows' searches, most of a search's time on a small store (``benchmarks/search_shapes.py``). Yet a
search's SQL depends only on its shape (which parameters, modifiers, prefixes, which values are absent),
never on the values themselves, which are bound parameters. So ``search_sql`` describes a search as a
*shape*: a tree of plain tuples, cheap to make, in which every value is a ``Bound``. Every Bound equals
every other, so two searches of the same shape have equal trees whatever their values. The first search
of a shape translates its tree into SQLAlchemy and compiles it for the store's dialect
(``compiled_shapes.py``); the later ones run that SQL text with their own values, found at the same places
in their own tree.

A tree node is a tuple whose first item names it (the constructors below); a column is a ``Column`` (table
and column names), a constant SQL fragment a ``Fixed``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

Node = tuple[Any, ...]


class Bound:
    """A value of one search: a bound parameter in the SQL of its shape. Equal to every other Bound."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bound)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"Bound({self.value!r})"


class Fixed:
    """A constant SQL fragment of a shape (``deleted IS false``, a page's columns): equal to another Fixed of the
    same object, so it must be a module's constant, not built anew per search."""

    __slots__ = ("sql",)

    def __init__(self, sql: Any) -> None:
        self.sql = sql

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fixed) and other.sql is self.sql

    def __hash__(self) -> int:
        return id(self.sql)


class Column(NamedTuple):
    """A table's column as a shape names it; with an ``alias``, the column of the table under that name (a
    sub-query reading the table its enclosing query reads, each its own rows)."""

    table: str
    name: str
    alias: str = ""


TRUE: Node = ("true",)
FALSE: Node = ("false",)


def column(table: Any, name: str, alias: str = "") -> Column:
    """``table``'s column ``name`` (a SQLAlchemy Table), of the table under ``alias`` if given."""
    return Column(table.name, name, alias)


def compare(left: Column | Node, op: str, value: object) -> Node:
    """``left op value``, ``op`` one of ``eq ne lt le gt ge``, the value bound."""
    return ("cmp", op, left, Bound(value))


def same(left: Column, right: Column) -> Node:
    """Two columns equal: a sub-query's row belongs to the outer query's row."""
    return ("cmp", "eq", left, right)


def plus(left: Column, amount: int) -> Node:
    """A column plus a fixed amount (part of the shape, not bound)."""
    return ("plus", left, amount)


def unindexed(left: Column) -> Node:
    """A text column as no index can read it (``left || ''``): a condition on it is a test of the rows
    found by other means, never a way to find them."""
    return ("unindexed", left)


def is_null(left: Column) -> Node:
    return ("null", left)


def like(left: Column, pattern: str) -> Node:
    """``left LIKE pattern`` with ``\\`` escaping."""
    return ("like", left, Bound(pattern))


def one_of(left: Column, values: Sequence[object]) -> Node:
    """``left IN (values)``: one bound parameter per value (their number is part of the shape)."""
    return ("in", left, tuple(Bound(v) for v in values))


def in_query(left: Column, query: Node) -> Node:
    return ("in_query", left, query)


def all_of(*parts: Node) -> Node:
    return ("and", *parts)


def any_of(*parts: Node) -> Node:
    return ("or", *parts)


def negate(part: Node) -> Node:
    return ("not", part)


def subquery(of: Column, where: Node) -> Node:
    """``SELECT of WHERE where``: a sub-query's ids."""
    return ("select", of, where)


def union(*queries: Node) -> Node:
    return queries[0] if len(queries) == 1 else ("union", *queries)


def exists(query: Node) -> Node:
    return ("exists", query)


def exists_for_each_row(query: Node) -> Node:
    """``EXISTS (query OFFSET 0)``: the outer query's rows each checked, however many rows ``query`` would
    find alone. PostgreSQL does not turn such a sub-query into a join (``OFFSET 0`` is its planner's fence),
    so no plan can start from every resource the check would match (``bounded_searches.planned_once``)."""
    return ("exists_for_each_row", query)


def ordered_ids(of: Column, key: Column, where: Node, descending: bool | None, limit: int | None, offset: int) -> Node:
    """``of`` of the distinct (``key``, ``of``) rows ``where`` holds, in that order (``descending`` or not; None: in
    no order, to be counted), ``limit`` (None: all) from ``offset``: the ids of a page read off an index in the
    page's order (a resource with several such rows once)."""
    return ("ordered_ids", of, key, where, descending, None if limit is None else Bound(limit), Bound(offset))


def count_rows(query: Node) -> Node:
    """How many rows a sub-query (``ordered_ids``) returns."""
    return ("count_rows", query)


def aggregate(name: str, of: Column, where: Node) -> Node:
    """``(SELECT name(of) WHERE where)``: one value per outer row (a sort key)."""
    return ("aggregate", name, of, where)


def ordered(key: Column | Node, descending: bool, nulls_last: bool = False) -> Node:
    return ("order", key, descending, nulls_last)


def page(columns: Fixed, where: Node, order: Sequence[Node], limit: int, offset: int) -> Node:
    """The page of a search: ``columns`` (a Fixed sequence of columns) of the rows ``where`` holds, in ``order``."""
    return ("page", columns, where, tuple(order), Bound(limit), Bound(offset))


def count_of(tree: Node, up_to: int | None) -> Node:
    """How many rows a page's tree matches, counting no further than ``up_to`` (None: all of them; then in
    no order). Counted up to a bound, the rows keep the pages' order (``counting.CountOfStatement``)."""
    where, order = tree[2], tree[3]
    return ("count", where, order, Bound(up_to)) if up_to is not None else ("count", where, (), None)


def fixed(sql: Fixed) -> Node:
    return ("fixed", sql)


def bounds(node: object) -> Iterator[Bound]:
    """The Bounds of a tree, in the order of its tuples (the same for every tree of one shape)."""
    if isinstance(node, Bound):
        yield node
    elif isinstance(node, tuple):
        for item in node:
            yield from bounds(item)
