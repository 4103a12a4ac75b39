"""A search read off the index in the order of the last update: a patient's access log (``AuditEvent?patient=``).

A search by one reference criterion alone, in update order, by a caller who sees the whole type or the
patient's own record, is an ``UpdateOrderedLookup``: its page is read off the rows of idx_reference's lookup
index, which hold a value's rows in that order (``schema.STAMPED``). Every other search is found by its
criteria (``search_sql.SearchSql``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reference_impl.fhir.query import Criterion, SearchRequest
from reference_impl.store.bounded_searches import names_one_patient
from reference_impl.store.schema import STAMPED
from reference_impl.store.search_sql import (
    NOT_DELETED,
    PAGE_COLUMNS,
    RES_ID,
    RES_TYPE,
    ReferenceColumns,
    compartment_rows,
    is_lookup,
    rows_of,
)
from reference_impl.store.search_values import value_condition
from reference_impl.store.sql_shapes import Node, all_of, any_of, compare, in_query, ordered_ids, page


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
    rows: Node  # the criterion's rows of idx_reference (``search_sql.rows_of``)
    descending: bool

    def ids(self, limit: int | None, offset: int, in_order: bool = True) -> Node:
        """The ids of the page ``limit`` from ``offset``; not ``in_order``: ``limit`` of them (None: all), to be
        counted."""
        descending = self.descending if in_order else None
        ref = ReferenceColumns
        return ordered_ids(ref.res_id, ref.last_updated, self.rows, descending, limit, offset)

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
    return UpdateOrderedLookup(type_name, rows_of(type_name, criterion.param, any_value), descending)


def _by_ids(criterion: Criterion) -> bool:
    """A reference criterion whose values are ids on this server, each one lookup of its index table: not
    identifiers (``:identifier``), nor absolute URLs elsewhere."""
    return (
        criterion.param.type == STAMPED
        and is_lookup(criterion)
        and criterion.modifier != "identifier"
        and all(v.system is None for v in criterion.values)
    )


def _within(criterion: Criterion, patient: str, via: tuple[str, ...]) -> bool:
    """Whether every resource ``criterion`` matches is within the patient's record: it names that patient by
    one of the parameters that put a resource in the record (``via``)."""
    return names_one_patient(criterion) and criterion.values[0].code == patient and criterion.param.code in via
