"""Running a search: one page of its matches, their total, and the resources it includes.

A search's SQL is ``search_sql.py``'s (or ``update_order.py``'s, for a search read off the index in update
order), compiled once per shape (``compiled_shapes.CompiledShapes``) and run here; its total is counted as
``counting.py`` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Connection, literal, select

from reference_impl.fhir.query import Include, SearchRequest, Visibility
from reference_impl.store.bounded_searches import few_matches, planned_once
from reference_impl.store.compiled_shapes import CompiledShapes, as_condition, as_select
from reference_impl.store.counting import Countable, Counting, CountOfStatement, total_after_page, total_of
from reference_impl.store.resources import StoredResource, many, opened_rows
from reference_impl.store.schema import idx_reference, resources
from reference_impl.store.search_sql import PAGE_COLUMNS, SearchSql, visible
from reference_impl.store.sql_shapes import Node, count_of, count_rows, page
from reference_impl.store.update_order import UpdateOrderedLookup, in_update_order

MAX_INCLUDED = 1000
SHAPES = CompiledShapes()  # every search's statements (its page, its count), compiled once per shape


@dataclass(frozen=True, slots=True)
class SearchPage:
    total: int | None  # None: not counted (``_total=none``, or a caller that needs only the matches)
    matches: list[StoredResource]
    more: bool = False  # matches beyond this page exist (the next link), known without counting them


def run_search(
    conn: Connection, request: SearchRequest, with_total: bool = True, counting: Counting = Counting.ESTIMATE
) -> SearchPage:
    """One page of matches; their total counted as ``counting`` says (``counting.py``), or not at all
    without ``with_total`` (``counting.total_after_page``: the last page needs no count). ``_summary=count``
    is always an exact count."""
    once, few = planned_once(request), few_matches(request)
    order = SearchSql().order_by(request, few)
    found = FoundByCriteria(request, order, once, few)
    lookup = in_update_order(request)
    counted: Countable = CountOfLookup(lookup, once, found) if lookup else found
    if request.summary == "count":
        counting = Counting.ACCURATE
    if not with_total:
        counting = Counting.NONE
    if request.summary == "count" or request.count == 0:
        return SearchPage(total_of(conn, counted, counting), [])
    # One row more than the page: whether a next page exists, without a count.
    limit, offset = request.count + 1, request.offset
    tree = lookup.page(order, limit, offset) if lookup else found.page(limit, offset)
    rows = SHAPES.rows(conn, tree, once)
    shown, more = rows[: request.count], len(rows) > request.count
    total = total_after_page(conn, counted, counting, request.offset, len(shown), more)
    return SearchPage(total, opened_rows(conn, shown), more=more)


class FoundByCriteria:
    """A search's matches as its criteria find them (``SearchSql.where``), pages and counts
    (``counting.Countable``). Its SQL is built at first use: a search read off the index in update order
    (``update_order.py``) needs it only for an estimate beyond ``counting.EXACT_UP_TO`` matches."""

    def __init__(self, request: SearchRequest, order: list[Node], once: bool, few: bool) -> None:
        self._request, self._order, self._once, self._few = request, order, once, few

    @cached_property
    def _where(self) -> Node:
        return SearchSql().where(self._request.type_name, self._request, self._once)

    @cached_property
    def _counted(self) -> Node:
        # A bounded count keeps the pages' order, so that a broad search's count stops early on an index
        # (``counting.CountOfStatement``). Few matches are all gathered to be sorted anyway: counted in no
        # order, they are not sorted for the count as well.
        return page(PAGE_COLUMNS, self._where, () if self._few else self._order, 0, 0)

    def page(self, limit: int, offset: int) -> Node:
        return page(PAGE_COLUMNS, self._where, self._order, limit, offset)

    def count(self, conn: Connection, up_to: int | None) -> int:
        return int(SHAPES.rows(conn, count_of(self._counted, up_to), self._once)[0][0])

    def estimate(self, conn: Connection) -> int:  # beyond EXACT_UP_TO matches only: built each time
        return CountOfStatement(as_select(self._counted)).estimate(conn)


class CountOfLookup:
    """The matches of an ``UpdateOrderedLookup``, counted off its index rows (``counting.Countable``)."""

    def __init__(self, lookup: UpdateOrderedLookup, planned_once: bool, found: FoundByCriteria) -> None:
        self._lookup, self._planned_once, self._found = lookup, planned_once, found

    def count(self, conn: Connection, up_to: int | None) -> int:
        rows = self._lookup.ids(up_to, 0, in_order=False)
        return int(SHAPES.rows(conn, count_rows(rows), self._planned_once)[0][0])

    def estimate(self, conn: Connection) -> int:  # the search's own estimate: planned, not run
        return self._found.estimate(conn)


def included(
    conn: Connection, matches: list[StoredResource], includes: list[Include], visibility: Visibility
) -> list[StoredResource]:
    """The resources ``includes`` name, each one only if the caller could read it directly."""
    if not matches or not includes:
        return []
    seen = {(m.type_name, m.id) for m in matches}
    keys: list[tuple[str, str]] = []
    for include in includes:
        ids = [m.id for m in matches if m.type_name == (include.source_type if not include.reverse else m.type_name)]
        ref = idx_reference.c
        if include.reverse:
            query = select(ref.res_type, ref.res_id).where(
                ref.res_type == include.source_type,
                ref.param == include.param.code,
                ref.target_type == literal(matches[0].type_name),
                ref.target_id.in_(ids),
            )
        else:
            query = select(ref.target_type, ref.target_id).where(
                ref.res_type == include.source_type,
                ref.param == include.param.code,
                ref.res_id.in_(ids),
                ref.target_id.is_not(None),
            )
            if include.target_type is not None:
                query = query.where(ref.target_type == include.target_type)
        for row in conn.execute(query.limit(MAX_INCLUDED)):
            key = (row[0], row[1])
            if key not in seen:
                seen.add(key)
                keys.append(key)
    return many(conn, visible_keys(conn, keys[:MAX_INCLUDED], visibility, "read"))


def visible_keys(
    conn: Connection, keys: list[tuple[str, str]], visibility: Visibility, kind: str
) -> list[tuple[str, str]]:
    """The (type, id) keys the caller may see, in the order given."""
    by_type: dict[str, list[str]] = {}
    for type_name, res_id in keys:
        by_type.setdefault(type_name, []).append(res_id)
    kept: set[tuple[str, str]] = set()
    for type_name, ids in by_type.items():
        reach = visibility.of(type_name, kind)
        if reach.unlimited:
            kept.update((type_name, i) for i in ids)
        elif reach.allowed:
            query = select(resources.c.res_id).where(
                resources.c.res_type == type_name, resources.c.res_id.in_(ids), as_condition(visible(type_name, reach))
            )
            kept.update((type_name, row[0]) for row in conn.execute(query))
    return [key for key in keys if key in kept]
