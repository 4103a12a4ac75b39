"""A search's shape (``sql_shapes.py``) translated into SQLAlchemy and compiled once per dialect; each later
search of the shape runs that SQL text with its own values, read off the same places in its own tree."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    true,
    union_all,
)

from reference_impl.lru import LruMemory
from reference_impl.store.driver import run_prepared
from reference_impl.store.schema import metadata
from reference_impl.store.sql_shapes import Bound, Column, Node, bounds

MAX_SHAPES = 2000  # compiled statements kept (of every dialect): far more than the shapes clients repeat


@cache
def _table(name: str, alias: str) -> Any:
    """A table of the store, or the same under ``alias`` (one object per name: a shape's columns of one alias
    are of one FROM item)."""
    table = metadata.tables[name]
    return table.alias(alias) if alias else table


class _Translation:
    """One shape's tree as SQLAlchemy, each Bound a parameter named after its position in ``bounds`` (and
    holding its value, for a statement run as it is)."""

    def __init__(self, tree: Node) -> None:
        found = list(bounds(tree))
        self.names = {id(b): f"b{i}" for i, b in enumerate(found)}
        if len(self.names) != len(found):
            raise ValueError("a Bound appears twice in one shape")  # positions would be ambiguous

    def bound(self, value: Bound) -> BindParameter[Any]:
        return bindparam(self.names[id(value)], value.value)

    def operand(self, item: Any) -> Any:
        if isinstance(item, Bound):
            return self.bound(item)
        if isinstance(item, Column):
            return _table(item.table, item.alias).c[item.name]
        return self.condition(item)

    def condition(self, node: Node) -> Any:
        kind = node[0]
        if kind == "true":
            return true()
        if kind == "false":
            return false()
        if kind == "fixed":
            return node[1].sql
        if kind == "and":
            return and_(*(self.condition(part) for part in node[1:]))
        if kind == "or":
            return or_(*(self.condition(part) for part in node[1:]))
        if kind == "not":
            return not_(self.condition(node[1]))
        if kind == "cmp":
            left, right = self.operand(node[2]), self.operand(node[3])
            return _COMPARISONS[node[1]](left, right)
        if kind == "plus":
            return self.operand(node[1]) + literal_column(str(int(node[2])))  # part of the SQL, as of the shape
        if kind == "unindexed":
            return self.operand(node[1]).op("||")(literal_column("''"))
        if kind == "null":
            return self.operand(node[1]).is_(None)
        if kind == "like":
            return self.operand(node[1]).like(self.bound(node[2]), escape="\\")
        if kind == "in":
            return self.operand(node[1]).in_([self.bound(b) for b in node[2]])
        if kind == "in_query":
            return self.operand(node[1]).in_(self.query(node[2]))
        if kind == "exists":
            return self.query(node[1]).exists()
        if kind == "exists_for_each_row":
            return self.query(node[1]).limit(_NO_LIMIT).offset(literal_column("0")).exists()
        if kind == "aggregate":
            of = getattr(func, node[1])(self.operand(node[2]))
            return select(of).where(self.condition(node[3])).scalar_subquery()
        if kind == "order":
            key = self.operand(node[1])
            key = key.desc() if node[2] else key.asc()
            return key.nulls_last() if node[3] else key
        raise ValueError(f"not a shape node: {kind}")

    def query(self, node: Node) -> Any:
        if node[0] == "union":
            return union_all(*(self.query(part) for part in node[1:]))
        if node[0] == "ordered_ids":
            _, of, key, where, descending, limit, offset = node
            columns = (self.operand(key), self.operand(of))
            rows = select(*columns).distinct().where(self.condition(where))
            if descending is not None:
                rows = rows.order_by(*(c.desc() if descending else c.asc() for c in columns))
            rows = rows.limit(_NO_LIMIT if limit is None else self.bound(limit)).offset(self.bound(offset))
            return select(rows.subquery().c[of.name])
        return select(self.operand(node[1])).where(self.condition(node[2]))

    def statement(self, node: Node) -> Select[Any]:
        """A page's or a count's tree as its statement."""
        if node[0] == "count_rows":
            return select(func.count()).select_from(self.query(node[1]).subquery())
        return self.page(node) if node[0] == "page" else self.count(node)

    def count(self, node: Node) -> Select[Any]:
        _, where, order, up_to = node
        rows: Select[Any] = (
            select(literal_column("1")).select_from(metadata.tables["resources"]).where(self.condition(where))
        )
        if up_to is not None:
            # OFFSET 0 said, or SQLite's compiler adds one of its own as an (unnamed) parameter.
            rows = rows.order_by(*(self.condition(key) for key in order)).limit(self.bound(up_to))
            rows = rows.offset(literal_column("0"))
        return select(func.count()).select_from(rows.subquery())

    def page(self, node: Node) -> Select[Any]:
        _, columns, where, order, limit, offset = node
        return (
            select(*columns.sql)
            .where(self.condition(where))
            .order_by(*(self.condition(key) for key in order))
            .limit(self.bound(limit))
            .offset(self.bound(offset))
        )


# A LIMIT that limits nothing, written out: SQLite takes no OFFSET without a LIMIT, and SQLAlchemy would
# add one of its own as an unnamed parameter (PostgreSQL's LIMIT ALL is not SQLite's).
_NO_LIMIT: ColumnElement[int] = literal_column(str(2**63 - 1))

_COMPARISONS: dict[str, Any] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def as_select(tree: Node) -> Select[Any]:
    """A page's tree as a SQLAlchemy statement with its values bound (to count its matches, ``counting.py``)."""
    return _Translation(tree).page(tree)


def as_condition(tree: Node) -> ColumnElement[bool]:
    """A condition's tree as a SQLAlchemy condition with its values bound (for statements built around it)."""
    condition: ColumnElement[bool] = _Translation(tree).condition(tree)
    return condition


def _bound_paths(node: object, path: tuple[int, ...] = ()) -> Iterator[tuple[int, ...]]:
    """Where the Bounds of a tree are (the indexes leading to each), in the order of ``bounds``."""
    if isinstance(node, Bound):
        yield path
    elif isinstance(node, tuple):
        for i, item in enumerate(node):
            yield from _bound_paths(item, (*path, i))


class _Compiled:
    """A shape's SQL for one dialect and where each of its parameters comes from.

    Every tree of the shape has its Bounds at the same places: their values are read off those places
    (2-5 µs a tree for the national flows' searches), not found by walking the whole tree at every
    search (13-31 µs; twice for a search that counts beyond its page).
    """

    __slots__ = ("order", "paths", "sql")

    def __init__(self, conn: Connection, tree: Node) -> None:
        translation = _Translation(tree)
        compiled = translation.statement(tree).compile(dialect=conn.dialect)
        self.sql = compiled.string
        position = {name: i for i, name in enumerate(translation.names.values())}
        # Positional dialects (SQLite's ?) take the values in the order the SQL names them; named ones
        # (psycopg's %(b0)s) by name: either way, a tuple of the tree's values in that order.
        names = compiled.positiontup if compiled.positional else None
        self.order: tuple[int, ...] | None = tuple(position[n] for n in names) if names is not None else None
        self.paths = tuple(_bound_paths(tree))

    def parameters(self, tree: Node) -> tuple[object, ...] | dict[str, object]:
        values = []
        for path in self.paths:
            node: Any = tree
            for i in path:
                node = node[i]
            values.append(node.value)
        if self.order is not None:
            return tuple(values[i] for i in self.order)
        return {f"b{i}": value for i, value in enumerate(values)}


class CompiledShapes:
    """The compiled SQL of the shapes seen (pages and counts), per dialect, the least recently used dropped
    first. Shared by the threads of a server (a long unit of work runs in a worker thread)."""

    def __init__(self, size: int = MAX_SHAPES) -> None:
        self._compiled: LruMemory[tuple[str, Node], _Compiled] = LruMemory(size)

    def rows(self, conn: Connection, tree: Node, planned_once: bool = False) -> list[Any]:
        """The rows of a page's tree, or the count of a count's tree (``count_of``). ``planned_once``: one
        plan serves the shape whatever its values (``bounded_searches.planned_once``), so on PostgreSQL its
        statement is prepared (``driver.run_prepared``); otherwise it is planned for its values each time."""
        key = (conn.dialect.name, tree)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = _Compiled(conn, tree)
            self._compiled.put(key, compiled)
        if planned_once and conn.dialect.name == "postgresql":
            return run_prepared(conn, compiled.sql, compiled.parameters(tree))
        return list(conn.exec_driver_sql(compiled.sql, compiled.parameters(tree)).all())

    def shapes(self) -> list[tuple[str, Node]]:
        """The (dialect, tree) of each statement kept, least recently used first."""
        return self._compiled.remembered()

    def __len__(self) -> int:
        return len(self._compiled)
