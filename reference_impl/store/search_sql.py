"""Search criteria as SQL over the index tables; the same statements run on SQLite and PostgreSQL.

Each value's condition is ``search_values.py``'s. All values are bound parameters: nothing a client sends
is spliced into SQL text. The SQL is made as a shape (``sql_shapes.py``): a search of a shape seen before
runs the SQL compiled for it then.
"""

from __future__ import annotations

from collections.abc import Sequence

from reference_impl.fhir.query import Criterion, HasCriterion, Reach, SearchRequest, Visibility
from reference_impl.fhir.searchparams import SearchParam
from reference_impl.store.bounded_searches import few_matches, picks_few
from reference_impl.store.resources import CURRENT_COLUMNS
from reference_impl.store.schema import INDEX_TABLES, idx_reference, resources
from reference_impl.store.search_values import date_condition, value_condition
from reference_impl.store.sql_shapes import (
    FALSE,
    TRUE,
    Column,
    Fixed,
    Node,
    aggregate,
    all_of,
    any_of,
    column,
    compare,
    exists,
    exists_for_each_row,
    fixed,
    in_query,
    negate,
    one_of,
    ordered,
    plus,
    same,
    subquery,
    unindexed,
    union,
)

Owner = tuple[Column, Column]  # the (type, id) columns naming the resource a criterion is tested on

RES_TYPE, RES_ID = column(resources, "res_type"), column(resources, "res_id")
LAST_UPDATED = column(resources, "last_updated")
NOT_DELETED = fixed(Fixed(resources.c.deleted.is_(False)))
PAGE_COLUMNS = Fixed(CURRENT_COLUMNS)
RESOURCE: Owner = (RES_TYPE, RES_ID)
CHECKED = "checked"  # a criterion's index table as its tests on each candidate read it (``_matching``)


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
        carrier = next((c for c in lookups if is_lookup(c)), None)
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
            typed = [subquery(owner_id, rows_of(type_name, param, c, tests)) for c in conditions]
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
        ref = ReferenceColumns
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


def rows_of(type_name: str, param: SearchParam, condition: Node, tests: Sequence[Node] = ()) -> Node:
    """The index rows of ``param`` of resources of ``type_name`` that meet ``condition`` and ``tests``."""
    table = INDEX_TABLES[param.type]
    of_type = compare(column(table, "res_type"), "eq", type_name)
    return all_of(compare(column(table, "param"), "eq", param.code), condition, of_type, *tests)


def is_lookup(criterion: Criterion) -> bool:
    """Whether ``_criterion`` makes ``criterion`` one lookup of its index table (which can carry tests of each
    candidate it finds): not ids (a column), nor a chain, a ``:missing`` or a ``:not``."""
    return (
        not criterion.param.is_column
        and not criterion.chains
        and criterion.missing is None
        and criterion.modifier != "not"
    )


class ReferenceColumns:
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
    return in_query(RES_ID, subquery(ReferenceColumns.res_id, compartment_rows(type_name, patient_id, via)))


def compartment_rows(type_name: str, patient_id: str, via: tuple[str, ...]) -> Node:
    """The idx_reference rows that put resources of ``type_name`` in the patient's compartment."""
    ref = ReferenceColumns
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
