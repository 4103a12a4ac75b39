"""Search criteria as SQL over the index tables; the same statements run on SQLite and PostgreSQL.

Each value's condition is ``search_values.py``'s. All values are bound parameters: nothing a client sends
is spliced into SQL text. The SQL is made as a shape (``sql_shapes.py``): a search of a shape seen before
runs the SQL compiled for it then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, literal, select

from reference_impl.fhir.query import Criterion, HasCriterion, Include, Reach, SearchRequest, Visibility
from reference_impl.fhir.searchparams import SearchParam
from reference_impl.store.bounded_searches import few_matches, names_one_patient, picks_few, planned_once
from reference_impl.store.counting import Counting, CountOfStatement, total_after_page, total_of
from reference_impl.store.resources import CURRENT_COLUMNS, StoredResource, many, opened_rows
from reference_impl.store.schema import INDEX_TABLES, STAMPED, idx_reference, resources
from reference_impl.store.search_values import date_condition, value_condition
from reference_impl.store.sql_shapes import (
    FALSE,
    TRUE,
    Column,
    CompiledShapes,
    Fixed,
    Node,
    aggregate,
    all_of,
    any_of,
    as_condition,
    as_select,
    column,
    compare,
    count_of,
    count_rows,
    exists,
    exists_for_each_row,
    fixed,
    in_query,
    negate,
    one_of,
    ordered,
    ordered_ids,
    page,
    plus,
    same,
    subquery,
    unindexed,
    union,
)

MAX_INCLUDED = 1000
Owner = tuple[Column, Column]  # the (type, id) columns naming the resource a criterion is tested on

RES_TYPE, RES_ID = column(resources, "res_type"), column(resources, "res_id")
LAST_UPDATED = column(resources, "last_updated")
NOT_DELETED = fixed(Fixed(resources.c.deleted.is_(False)))
PAGE_COLUMNS = Fixed(CURRENT_COLUMNS)
RESOURCE: Owner = (RES_TYPE, RES_ID)
CHECKED = "checked"  # a criterion's index table as its tests on each candidate read it (``_matching``)
SHAPES = CompiledShapes()  # every search's statements (its page, its count), compiled once per shape


class SearchSql:
    """Builds the WHERE clause for a type (or for the whole server when ``type_name`` is None), as a shape
    (``sql_shapes.py``).

    Every sub-query (a chain's targets, a ``_has`` source) is built by ``where`` again, for its own
    type: the caller's visibility limits it exactly as it limits a direct search of that type.
    """

    def where(self, type_name: str | None, request: SearchRequest, once: bool = False) -> Node:
        """``once``: the search is planned once (``planned_once``), its criteria that do not pick few checked
        on each match of those that do: inside the first lookup that picks few (``_matching``), so that
        only the candidates that pass every check are read from ``resources``; on each resource found
        when no such lookup leads (ids, or the caller's reach of one patient's record).

        PDQm at 1,000,000 patients: the ~30 people born that day were each read from ``resources`` (18 GB,
        more than memory holds) before their names were checked, 100 blocks read from disk at the median
        of a search made cold; checked first, 39 (``EXPLAIN (ANALYZE, BUFFERS)``, 200 searches each)."""
        parts: list[Node] = [NOT_DELETED]
        if type_name is not None:
            parts.append(compare(RES_TYPE, "eq", type_name))
            parts.append(visible(type_name, request.visibility.of(type_name, request.kind)))
        else:
            if request.types:
                parts.append(one_of(RES_TYPE, request.types))
            parts.append(visible_any_type(request.visibility.limited(request.kind)))
        criteria = request.criteria
        leads = [isinstance(c, Criterion) and type_name is not None and picks_few(type_name, c) for c in criteria]
        tested = [once and not lead and isinstance(c, Criterion) for c, lead in zip(criteria, leads, strict=True)]
        checks = [c for c, each in zip(criteria, tested, strict=True) if each and isinstance(c, Criterion)]
        lookups = [c for c, lead in zip(criteria, leads, strict=True) if lead and isinstance(c, Criterion)]
        carrier = next((c for c in lookups if _is_lookup(c)), None)
        for c, each in zip(criteria, tested, strict=True):
            if not each:
                parts.append(self._criterion(type_name, c, request.visibility, checked=checks if c is carrier else ()))
            elif carrier is None:
                parts.append(self._criterion(type_name, c, request.visibility, for_each_match=RESOURCE))
        return all_of(*parts)

    def _sub_query(self, type_name: str, criterion: Criterion, visibility: Visibility) -> Node:
        """The ids of ``type_name`` matching ``criterion``, among those the caller may see."""
        if visibility.judged_one_by_one(type_name):  # a side door into resources judged one by one: closed
            return subquery(RES_ID, FALSE)
        inner = SearchRequest(type_name, [criterion], visibility=visibility)
        return subquery(RES_ID, self.where(type_name, inner))

    def _matching(
        self,
        type_name: str | None,
        param: SearchParam,
        *conditions: Node,
        for_each_match: Owner | None = None,
        tests: Sequence[Node] = (),
    ) -> Node:
        """Resources with an index row of ``param`` meeting any of ``conditions``.

        Several conditions (a chain's target types) are a UNION of one sub-query each, not an OR inside
        one: PostgreSQL turns ``IN (... UNION ALL ...)`` into a semi-join driven by the index, whereas an OR
        of ``IN`` sub-queries is tested row by row against every candidate of the outer search.
        ``for_each_match``: tested on each of the rows it names (a resource found, or a candidate of a
        lookup that picks few: ``planned_once``), reading its table as ``CHECKED``. ``tests``: what each row
        this lookup finds must also meet (such criteria, tested on its owner).
        """
        table = INDEX_TABLES[param.type]
        if for_each_match is not None:
            owner_type, owner_id = column(table, "res_type", CHECKED), column(table, "res_id", CHECKED)
            # Only the owner's index can find the rows: the parameter, unindexed, cannot lead a lookup
            # index, which a generic plan may otherwise walk for each match over every row of a common
            # value (every current document's status, at 200,000 patients: 0.9 s of PostgreSQL a search).
            of_this_param = compare(unindexed(column(table, "param", CHECKED)), "eq", param.code)
            owned = (same(owner_type, for_each_match[0]), same(owner_id, for_each_match[1]))
            rows = [subquery(owner_id, all_of(of_this_param, c, *owned)) for c in conditions]
            return any_of(*(exists_for_each_row(r) for r in rows))
        owner_type, owner_id, of_param = column(table, "res_type"), column(table, "res_id"), column(table, "param")
        if type_name is not None:
            typed = [subquery(owner_id, _rows_of(type_name, param, c, tests)) for c in conditions]
            return in_query(RES_ID, union(*typed))
        owned = (same(owner_type, RES_TYPE), same(owner_id, RES_ID))
        return any_of(
            *(exists(subquery(owner_id, all_of(compare(of_param, "eq", param.code), c, *owned))) for c in conditions)
        )

    def _criterion(
        self,
        type_name: str | None,
        criterion: Criterion | HasCriterion,
        visibility: Visibility,
        for_each_match: Owner | None = None,
        checked: Sequence[Criterion] = (),
    ) -> Node:
        if isinstance(criterion, HasCriterion):
            return self._has(type_name, criterion, visibility)
        param = criterion.param
        if param.is_column:
            return self._column_criterion(criterion)
        if criterion.missing is not None:
            present = self._matching(type_name, param, TRUE, for_each_match=for_each_match)
            return negate(present) if criterion.missing else present
        if criterion.chains:
            conditions = [
                all_of(
                    compare(column(idx_reference, "target_type"), "eq", target_type),
                    in_query(column(idx_reference, "target_id"), self._sub_query(target_type, inner, visibility)),
                )
                for target_type, inner in criterion.chains
            ]
            return self._matching(type_name, param, *conditions)
        if criterion.modifier == "not":
            positive = Criterion(param, None, criterion.values)
            return negate(self._criterion(type_name, positive, visibility, for_each_match))
        alias = CHECKED if for_each_match is not None else ""
        any_value = any_of(*(value_condition(criterion, v, alias) for v in criterion.values))
        tests = []
        if checked:
            table = INDEX_TABLES[param.type]
            owner = (column(table, "res_type"), column(table, "res_id"))  # each candidate this lookup finds
            tests = [self._criterion(type_name, c, visibility, for_each_match=owner) for c in checked]
        return self._matching(type_name, param, any_value, for_each_match=for_each_match, tests=tests)

    def _column_criterion(self, criterion: Criterion) -> Node:
        if criterion.missing is not None:
            return FALSE if criterion.missing else TRUE
        if criterion.param.code == "_id":
            matched = one_of(RES_ID, [v.code or v.raw for v in criterion.values])
            return negate(matched) if criterion.modifier == "not" else matched
        # lastUpdated is an instant stored to the microsecond: its range is that microsecond.
        return any_of(*(date_condition(LAST_UPDATED, plus(LAST_UPDATED, 1), v) for v in criterion.values))

    def _has(self, type_name: str | None, has: HasCriterion, visibility: Visibility) -> Node:
        ref = _Reference
        sources = self._sub_query(has.source_type, has.criterion, visibility)
        pointing = [
            compare(ref.res_type, "eq", has.source_type),
            compare(ref.param, "eq", has.reference.code),
            in_query(ref.res_id, sources),
        ]
        if type_name is not None:
            pointing.append(compare(ref.target_type, "eq", type_name))
        return in_query(RES_ID, subquery(ref.target_id, all_of(*pointing)))

    def order_by(self, request: SearchRequest, few: bool | None = None) -> list[Node]:
        """The sort keys, then ties broken by (last updated, type, id): every page has one order.

        The ties follow the direction of a leading ``_lastUpdated`` or ``_id``, and those NOT NULL
        columns get no NULLS LAST: then ``ix_resources_type_updated`` (type, last updated, id), read
        forwards or backwards, yields the rows already in order and a page stops after its rows, instead
        of sorting every match first.

        Except where the matches are few whatever the store holds (``few_matches``: within one patient's
        record, or found by identifier): there the last update is sorted as ``last_updated + 0``, which no
        index yields, so that the matches are found first, then sorted. Read in time order, the index walks
        every resource of the type until the page is full, which the planner chooses when a patient's share
        of the type looks large (a sandbox's test patient, a long stay in hospital), believing the matches
        spread evenly over time where a patient's come together. The walk costs what lies between the
        patient's matches and the end the walk starts from; the sort, what the patient's record holds. On
        PostgreSQL, a patient with 10,000 AuditEvents among 110,000, all the latest: the first page walked
        100,041 of them, 306 ms, against 92 sorted. A plan made once for any values (``planned_once``)
        could not know a patient's share at all: with no such walk to choose, it finds the matches first.
        """
        if few is None:  # the caller may know it already (``run_search``)
            few = few_matches(request)
        updated = plus(LAST_UPDATED, 0) if few else LAST_UPDATED
        keys: list[Node] = []
        for param, descending in request.sort:
            if param.code in ("_id", "_lastUpdated"):
                keys.append(ordered(RES_ID if param.code == "_id" else updated, descending))
            else:
                keys.append(ordered(self._sort_key(param, descending), descending, nulls_last=True))
        leading = request.sort[0] if request.sort else None
        backwards = leading is not None and leading[0].code in ("_id", "_lastUpdated") and leading[1]
        keys.extend(ordered(tie, backwards) for tie in (updated, RES_TYPE, RES_ID))
        return keys

    def _sort_key(self, param: SearchParam, descending: bool) -> Node:
        table = INDEX_TABLES[param.type]
        name = {
            "string": "value_norm",
            "token": "code",
            "date": "high" if descending else "low",
            "number": "value",
            "quantity": "value",
            "reference": "target_id",
            "uri": "value",
        }[param.type]
        owned = all_of(
            same(column(table, "res_type"), RES_TYPE),
            same(column(table, "res_id"), RES_ID),
            compare(column(table, "param"), "eq", param.code),
        )
        return aggregate("max" if descending else "min", column(table, name), owned)


def _rows_of(type_name: str, param: SearchParam, condition: Node, tests: Sequence[Node] = ()) -> Node:
    """The index rows of ``param`` of resources of ``type_name`` that meet ``condition`` and ``tests``."""
    table = INDEX_TABLES[param.type]
    of_type = compare(column(table, "res_type"), "eq", type_name)
    return all_of(compare(column(table, "param"), "eq", param.code), condition, of_type, *tests)


def _is_lookup(criterion: Criterion) -> bool:
    """Whether ``_criterion`` makes ``criterion`` one lookup of its index table (which can carry tests of each
    candidate it finds): not ids (a column), nor a chain, a ``:missing`` or a ``:not``."""
    return (
        not criterion.param.is_column
        and not criterion.chains
        and criterion.missing is None
        and criterion.modifier != "not"
    )


class _Reference:
    """idx_reference's columns, as shapes name them."""

    res_type = column(idx_reference, "res_type")
    res_id = column(idx_reference, "res_id")
    param = column(idx_reference, "param")
    target_type = column(idx_reference, "target_type")
    target_id = column(idx_reference, "target_id")
    last_updated = column(idx_reference, "last_updated")


def in_compartment(type_name: str, patient_id: str, via: tuple[str, ...]) -> Node:
    """Resources of ``type_name`` in the patient's compartment (the Patient itself, for Patient)."""
    if type_name == "Patient":
        return compare(RES_ID, "eq", patient_id)
    return in_query(RES_ID, subquery(_Reference.res_id, compartment_rows(type_name, patient_id, via)))


def compartment_rows(type_name: str, patient_id: str, via: tuple[str, ...]) -> Node:
    """The idx_reference rows that put resources of ``type_name`` in the patient's compartment."""
    ref = _Reference
    return all_of(
        compare(ref.res_type, "eq", type_name),
        one_of(ref.param, via),
        compare(ref.target_type, "eq", "Patient"),
        compare(ref.target_id, "eq", patient_id),
    )


def visible(type_name: str, reach: Reach) -> Node:
    """The resources of ``type_name`` within ``reach`` (rows of ``resources``)."""
    if not reach.allowed:
        return FALSE
    if reach.patient is None:
        return TRUE
    return in_compartment(type_name, reach.patient, reach.via)


def visible_any_type(limited: dict[str, Reach]) -> Node:
    """For a search across types: the types seen in full, and the limited ones within their reach."""
    if not limited:
        return TRUE
    partly = [all_of(compare(RES_TYPE, "eq", t), visible(t, r)) for t, r in limited.items() if r.allowed]
    return any_of(negate(one_of(RES_TYPE, list(limited))), *partly)


@dataclass(frozen=True, slots=True)
class UpdateOrderedLookup:
    """A search by one reference criterion alone (a patient's access log, ``AuditEvent?patient=``), in the
    order of the last update (the default, or ``_sort=[-]_lastUpdated``), by a caller who sees the whole type
    or the patient's own record (``in_update_order``).

    Its page is read off the rows of idx_reference's lookup index, which hold a value's rows in that order
    (``schema.STAMPED``): the page's ids first, off the index alone, then only those resources. Found as any
    other search's, the matches were each read from ``resources`` and sorted: a page cost what the patient's
    log holds, which grows with every access to their record. Counted up to a bound, the index rows alone.
    """

    type_name: str
    rows: Node  # the criterion's rows of idx_reference (``_rows_of``)
    descending: bool

    def ids(self, limit: int | None, offset: int, in_order: bool = True) -> Node:
        """The ids of the page ``limit`` from ``offset``; not ``in_order``: ``limit`` of them (None: all), to be
        counted."""
        descending = self.descending if in_order else None
        return ordered_ids(_Reference.res_id, _Reference.last_updated, self.rows, descending, limit, offset)

    def page(self, order: Sequence[Node], limit: int, offset: int) -> Node:
        ids = in_query(RES_ID, self.ids(limit, offset))
        return page(PAGE_COLUMNS, all_of(NOT_DELETED, compare(RES_TYPE, "eq", self.type_name), ids), order, limit, 0)


def in_update_order(request: SearchRequest) -> UpdateOrderedLookup | None:
    """The search as an ``UpdateOrderedLookup``, if it is one: in update order, by one reference criterion
    alone whose values are ids (which lead the lookup index, before the last update), of a type the caller
    sees whole, or within the patient's record the caller sees (a patient's own token): then by that
    patient's reference (``AuditEvent?patient=<self>``), or by none at all (the record's rows of the type)."""
    type_name, sort, criteria = request.type_name, request.sort, request.criteria
    if type_name is None or len(criteria) > 1:
        return None
    if sort and (len(sort) > 1 or sort[0][0].code != "_lastUpdated"):
        return None
    reach = request.visibility.of(type_name, request.kind)
    own = reach.patient  # the patient whose record the caller sees; None: the whole type
    if not reach.allowed or (own is not None and type_name == "Patient"):  # a Patient's record: the Patient
        return None
    descending = bool(sort) and sort[0][1]
    if not criteria:  # the whole type is in its time index's order already
        return UpdateOrderedLookup(type_name, compartment_rows(type_name, own, reach.via), descending) if own else None
    criterion = criteria[0]
    if not (isinstance(criterion, Criterion) and _by_ids(criterion)):
        return None
    if own is not None and not _within(criterion, own, reach.via):
        return None
    any_value = any_of(*(value_condition(criterion, v) for v in criterion.values))
    return UpdateOrderedLookup(type_name, _rows_of(type_name, criterion.param, any_value), descending)


def _by_ids(criterion: Criterion) -> bool:
    """A reference criterion whose values are ids on this server, each one lookup of its index table: not
    identifiers (``:identifier``), nor absolute URLs elsewhere."""
    return (
        criterion.param.type == STAMPED
        and _is_lookup(criterion)
        and criterion.modifier != "identifier"
        and all(v.system is None for v in criterion.values)
    )


def _within(criterion: Criterion, patient: str, via: tuple[str, ...]) -> bool:
    """Whether every resource ``criterion`` matches is within the patient's record: it names that patient by
    one of the parameters that put a resource in the record (``via``)."""
    return names_one_patient(criterion) and criterion.values[0].code == patient and criterion.param.code in via


class CountOfLookup:
    """The matches of an ``UpdateOrderedLookup``, counted off its index rows (``counting.Countable``)."""

    def __init__(self, lookup: UpdateOrderedLookup, planned_once: bool, estimated: CountOfShape) -> None:
        self._lookup, self._planned_once, self._estimated = lookup, planned_once, estimated

    def count(self, conn: Connection, up_to: int | None) -> int:
        rows = self._lookup.ids(up_to, 0, in_order=False)
        return int(SHAPES.rows(conn, count_rows(rows), self._planned_once)[0][0])

    def estimate(self, conn: Connection) -> int:  # the search's own estimate: planned, not run
        return self._estimated.estimate(conn)


class CountOfShape:
    """The matches of a search's page tree, counted through the compiled shapes (``counting.Countable``)."""

    def __init__(self, tree: Node, planned_once: bool = False) -> None:
        self._tree, self._planned_once = tree, planned_once

    def count(self, conn: Connection, up_to: int | None) -> int:
        return int(SHAPES.rows(conn, count_of(self._tree, up_to), self._planned_once)[0][0])

    def estimate(self, conn: Connection) -> int:  # beyond EXACT_UP_TO matches only: built each time
        return CountOfStatement(as_select(self._tree)).estimate(conn)


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
    sql = SearchSql()
    once, few = planned_once(request), few_matches(request)
    where, order = sql.where(request.type_name, request, once), sql.order_by(request, few)
    # A bounded count keeps the pages' order, so that a broad search's count stops early on an index
    # (``counting.CountOfStatement``). Few matches are all gathered to be sorted anyway: counted in no
    # order, they are not sorted for the count as well.
    matches = CountOfShape(page(PAGE_COLUMNS, where, () if few else order, 0, 0), once)
    lookup = in_update_order(request)
    counted = CountOfLookup(lookup, once, matches) if lookup else matches
    if request.summary == "count":
        counting = Counting.ACCURATE
    if not with_total:
        counting = Counting.NONE
    if request.summary == "count" or request.count == 0:
        return SearchPage(total_of(conn, counted, counting), [])
    # One row more than the page: whether a next page exists, without a count.
    limit, offset = request.count + 1, request.offset
    tree = lookup.page(order, limit, offset) if lookup else page(PAGE_COLUMNS, where, order, limit, offset)
    rows = SHAPES.rows(conn, tree, once)
    shown, more = rows[: request.count], len(rows) > request.count
    total = total_after_page(conn, counted, counting, request.offset, len(shown), more)
    return SearchPage(total, opened_rows(conn, shown), more=more)


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
