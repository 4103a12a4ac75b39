"""Search criteria as SQL over the index tables; the same statements run on SQLite and PostgreSQL.

Dates are half-open ranges ``[low, high)``; prefixes compare the resource's range with the
search value's range as FHIR R4 defines (e.g. ``gt``: the resource's range ends after the search
range). All values are bound parameters: nothing a client sends is spliced into SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, false, func, literal, not_, or_, select, true, union_all

from reference_impl.fhir.indexing import normalize
from reference_impl.fhir.query import Criterion, HasCriterion, Include, Reach, SearchRequest, Value, Visibility
from reference_impl.fhir.searchparams import SearchParam
from reference_impl.store.counting import Counting, total_after_page, total_of
from reference_impl.store.resources import CURRENT_COLUMNS, StoredResource, many, opened_rows
from reference_impl.store.schema import INDEX_TABLES, idx_reference, resources

MAX_INCLUDED = 1000
APPROXIMATE = 0.1  # `ap`: within 10 %


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix``, as a range the btree index can answer.

    Both backends compare these columns by code point (SQLite BINARY, PostgreSQL "C"), so the
    strings starting with ``prefix`` are exactly those in ``[prefix, successor)``.
    """
    if not prefix:
        return true()
    successor = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(column >= prefix, column < successor)


def _date_condition(low: Any, high: Any, value: Value) -> ColumnElement[bool]:
    sl, sh = int(value.low), int(value.high)
    # ``low < sh`` follows from ``low < high <= sh``: said outright, it bounds the index range scanned
    # (low, high) from both ends, instead of every later date (half a national birth-date index).
    eq = and_(low >= sl, low < sh, high <= sh)
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": eq,
        "ne": not_(eq),
        "gt": high > sh,
        "lt": low < sl,
        "ge": or_(high > sh, eq),
        "le": or_(low < sl, eq),
        "sa": low >= sh,
        "eb": high <= sl,
    }
    if value.prefix == "ap":
        margin = max(int((sh - sl) * APPROXIMATE), 86_400_000_000)
        return and_(low < sh + margin, high > sl - margin)
    return conditions[value.prefix]


def _number_condition(column: Any, value: Value) -> ColumnElement[bool]:
    eq = and_(column >= value.low, column < value.high)
    if value.prefix == "ap":
        margin = abs(value.number) * APPROXIMATE
        return and_(column >= value.number - margin, column <= value.number + margin)
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": eq,
        "ne": not_(eq),
        "gt": column > value.number,
        "lt": column < value.number,
        "ge": column >= value.number,
        "le": column <= value.number,
        "sa": column > value.number,
        "eb": column < value.number,
    }
    return conditions[value.prefix]


def _token_condition(system: Any, code: Any, value: Value) -> ColumnElement[bool]:
    parts = []
    if value.has_system:
        parts.append(system == value.system if value.system is not None else system.is_(None))
    if value.code is not None:
        parts.append(code == value.code)
    return and_(*parts) if parts else true()


def _value_condition(criterion: Criterion, value: Value) -> ColumnElement[bool]:
    param, modifier = criterion.param, criterion.modifier
    table = INDEX_TABLES[param.type]
    c = table.c
    if param.type == "string":
        if modifier == "exact":
            return c.value_exact == value.raw
        if modifier == "contains":
            return c.value_norm.like("%" + _like_escape(normalize(value.raw)) + "%", escape="\\")
        return _starts_with(c.value_norm, normalize(value.raw))
    if param.type == "token":
        if modifier == "text":
            return _starts_with(c.text_norm, normalize(value.raw))
        return _token_condition(c.system, c.code, value)
    if param.type == "date":
        return _date_condition(c.low, c.high, value)
    if param.type == "number":
        return _number_condition(c.value, value)
    if param.type == "quantity":
        parts = [_number_condition(c.value, value)]
        if value.system is not None:
            parts.append(c.system == value.system)
        if value.code is not None:
            parts.append(
                or_(c.code == value.code, c.unit == value.code) if value.system is None else c.code == value.code
            )
        return and_(*parts)
    if param.type == "reference":
        if modifier == "identifier":
            return _token_condition(c.ident_system, c.ident_value, value)
        if value.system is not None:  # an absolute URL not on this server
            return c.url == value.system
        parts = [c.target_id == value.code]
        if value.ref_type is not None:
            parts.append(c.target_type == value.ref_type)
        return and_(*parts)
    if modifier == "below":
        return _starts_with(c.value, value.raw)
    return c.value == value.raw


class SearchSql:
    """Builds the WHERE clause for a type (or for the whole server when ``type_name`` is None).

    Every sub-query (a chain's targets, a ``_has`` source) is built by ``where`` again, for its own
    type: the caller's visibility limits it exactly as it limits a direct search of that type.
    """

    def where(self, type_name: str | None, request: SearchRequest) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = [resources.c.deleted.is_(False)]
        if type_name is not None:
            parts.append(resources.c.res_type == type_name)
            parts.append(visible(type_name, request.visibility.of(type_name, request.kind)))
        else:
            if request.types:
                parts.append(resources.c.res_type.in_(request.types))
            parts.append(visible_any_type(request.visibility.limited(request.kind)))
        parts.extend(self._criterion(type_name, c, request.visibility) for c in request.criteria)
        return and_(*parts)

    def _sub_query(self, type_name: str, criterion: Criterion, visibility: Visibility) -> Select[Any]:
        """The ids of ``type_name`` matching ``criterion``, among those the caller may see."""
        if visibility.judged_one_by_one(type_name):  # a side door into resources judged one by one: closed
            return select(resources.c.res_id).where(false())
        inner = SearchRequest(type_name, [criterion], visibility=visibility)
        return select(resources.c.res_id).where(self.where(type_name, inner))

    def _matching(
        self, type_name: str | None, param: SearchParam, *conditions: ColumnElement[bool]
    ) -> ColumnElement[bool]:
        """Resources with an index row of ``param`` meeting any of ``conditions``.

        Several conditions (a chain's target types) are a UNION of one sub-query each, not an OR inside
        one: PostgreSQL turns ``IN (... UNION ALL ...)`` into a semi-join driven by the index, whereas an OR
        of ``IN`` sub-queries is tested row by row against every candidate of the outer search.
        """
        table = INDEX_TABLES[param.type]
        found = [select(table.c.res_id).where(table.c.param == param.code, condition) for condition in conditions]
        if type_name is not None:
            typed = [query.where(table.c.res_type == type_name) for query in found]
            return resources.c.res_id.in_(typed[0] if len(typed) == 1 else union_all(*typed))
        owner = (table.c.res_type == resources.c.res_type, table.c.res_id == resources.c.res_id)
        return or_(*(query.where(*owner).exists() for query in found))

    def _criterion(
        self, type_name: str | None, criterion: Criterion | HasCriterion, visibility: Visibility
    ) -> ColumnElement[bool]:
        if isinstance(criterion, HasCriterion):
            return self._has(type_name, criterion, visibility)
        param = criterion.param
        if param.is_column:
            return self._column_criterion(criterion)
        if criterion.missing is not None:
            present = self._matching(type_name, param, true())
            return not_(present) if criterion.missing else present
        if criterion.chains:
            conditions = [
                and_(
                    idx_reference.c.target_type == target_type,
                    idx_reference.c.target_id.in_(self._sub_query(target_type, inner, visibility)),
                )
                for target_type, inner in criterion.chains
            ]
            return self._matching(type_name, param, *conditions)
        if criterion.modifier == "not":
            positive = Criterion(param, None, criterion.values)
            return not_(self._criterion(type_name, positive, visibility))
        return self._matching(type_name, param, or_(*(_value_condition(criterion, v) for v in criterion.values)))

    def _column_criterion(self, criterion: Criterion) -> ColumnElement[bool]:
        if criterion.missing is not None:
            return false() if criterion.missing else true()
        if criterion.param.code == "_id":
            matched = resources.c.res_id.in_([v.code or v.raw for v in criterion.values])
            return not_(matched) if criterion.modifier == "not" else matched
        updated = resources.c.last_updated
        # lastUpdated is an instant stored to the microsecond: its range is that microsecond.
        return or_(*(_date_condition(updated, updated + 1, v) for v in criterion.values))

    def _has(self, type_name: str | None, has: HasCriterion, visibility: Visibility) -> ColumnElement[bool]:
        sources = self._sub_query(has.source_type, has.criterion, visibility)
        pointing = select(idx_reference.c.target_id).where(
            idx_reference.c.res_type == has.source_type,
            idx_reference.c.param == has.reference.code,
            idx_reference.c.res_id.in_(sources),
        )
        if type_name is not None:
            pointing = pointing.where(idx_reference.c.target_type == type_name)
        return resources.c.res_id.in_(pointing)

    def order_by(self, type_name: str | None, request: SearchRequest) -> list[Any]:
        """The sort keys, then ties broken by (last updated, type, id): every page has one order.

        The ties follow the direction of a leading ``_lastUpdated`` or ``_id``, and those NOT NULL
        columns get no NULLS LAST: then ``ix_resources_type_updated`` (type, last updated, id), read
        forwards or backwards, yields the rows already in order and a page stops after its rows, instead
        of sorting every match first.
        """
        keys: list[Any] = []
        for param, descending in request.sort:
            if param.code in ("_id", "_lastUpdated"):
                column = resources.c.res_id if param.code == "_id" else resources.c.last_updated
                keys.append(column.desc() if descending else column.asc())
            else:
                column = self._sort_column(param, descending)
                keys.append(column.desc().nulls_last() if descending else column.asc().nulls_last())
        leading = request.sort[0] if request.sort else None
        backwards = leading is not None and leading[0].code in ("_id", "_lastUpdated") and leading[1]
        ties = [resources.c.last_updated, resources.c.res_type, resources.c.res_id]
        keys.extend(column.desc() if backwards else column.asc() for column in ties)
        return keys

    def _sort_column(self, param: SearchParam, descending: bool) -> Any:
        table = INDEX_TABLES[param.type]
        c = table.c
        column = {
            "string": c.get("value_norm"),
            "token": c.get("code"),
            "date": c.get("high") if descending else c.get("low"),
            "number": c.get("value"),
            "quantity": c.get("value"),
            "reference": c.get("target_id"),
            "uri": c.get("value"),
        }[param.type]
        aggregate = func.max(column) if descending else func.min(column)
        return (
            select(aggregate)
            .where(
                table.c.res_type == resources.c.res_type,
                table.c.res_id == resources.c.res_id,
                table.c.param == param.code,
            )
            .scalar_subquery()
        )


def in_compartment(type_name: str, patient_id: str, via: tuple[str, ...]) -> ColumnElement[bool]:
    """Resources of ``type_name`` in the patient's compartment (the Patient itself, for Patient)."""
    if type_name == "Patient":
        return resources.c.res_id == patient_id
    ref = idx_reference.c
    members = select(ref.res_id).where(
        ref.res_type == type_name, ref.param.in_(via), ref.target_type == "Patient", ref.target_id == patient_id
    )
    return resources.c.res_id.in_(members)


def visible(type_name: str, reach: Reach) -> ColumnElement[bool]:
    """The resources of ``type_name`` within ``reach`` (rows of ``resources``)."""
    if not reach.allowed:
        return false()
    if reach.patient is None:
        return true()
    return in_compartment(type_name, reach.patient, reach.via)


def visible_any_type(limited: dict[str, Reach]) -> ColumnElement[bool]:
    """For a search across types: the types seen in full, and the limited ones within their reach."""
    if not limited:
        return true()
    partly = [and_(resources.c.res_type == t, visible(t, r)) for t, r in limited.items() if r.allowed]
    return or_(resources.c.res_type.not_in(list(limited)), *partly)


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
    type_name = request.type_name
    matching: Select[Any] = (
        select(*CURRENT_COLUMNS).where(sql.where(type_name, request)).order_by(*sql.order_by(type_name, request))
    )
    if request.summary == "count":
        counting = Counting.ACCURATE
    if not with_total:
        counting = Counting.NONE
    if request.summary == "count" or request.count == 0:
        return SearchPage(total_of(conn, matching, counting), [])
    # One row more than the page: whether a next page exists, without a count.
    rows = conn.execute(matching.limit(request.count + 1).offset(request.offset)).all()
    shown, more = rows[: request.count], len(rows) > request.count
    total = total_after_page(conn, matching, counting, request.offset, len(shown), more)
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
                resources.c.res_type == type_name, resources.c.res_id.in_(ids), visible(type_name, reach)
            )
            kept.update((type_name, row[0]) for row in conn.execute(query))
    return [key for key in keys if key in kept]
