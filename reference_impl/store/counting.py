"""How many rows match, without scanning millions of them for every page (a search's or history's total).

FHIR lets a server give ``Bundle.total`` exactly, estimate it or leave it out (``_total=accurate |
estimate | none``). Counting exactly costs a scan of every match: at national scale, 8 million
documents or 10 million AuditEvents for a broad search, on every page. So by default a total is
exact up to ``EXACT_UP_TO`` matches (a count over a LIMITed sub-query, which stops at the bound) and
estimated beyond it: on PostgreSQL the planner's row estimate of the same query (``EXPLAIN``, no
scan), never below the bound it passed; SQLite has no estimator and counts exactly (an embedded
store, far from national scale). ``_total=accurate`` and ``_summary=count`` always count exactly.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, Select, func, literal, select

EXACT_UP_TO = 1000


class Counting(Enum):
    """How a total is counted: ``_total`` as the search asked (``none``: not at all)."""

    NONE = "none"
    ESTIMATE = "estimate"  # the default too: exact up to EXACT_UP_TO matches, estimated beyond
    ACCURATE = "accurate"


class Countable(Protocol):
    """The matches of a search or a history, as ``total_of`` counts them."""

    def count(self, conn: Connection, up_to: int | None) -> int:
        """How many rows match, counting no further than ``up_to`` (None: all of them)."""

    def estimate(self, conn: Connection) -> int:
        """PostgreSQL's estimate of how many rows match: planned, not run."""


class CountOfStatement:
    """The rows a SELECT of any columns, in its pages' order, returns.

    The bounded count keeps the pages' order: the planner then takes the plan of a first page, the one
    that stops early (rows read in index order, each probed), not one that gathers every match first.
    """

    def __init__(self, matching: Select[Any]) -> None:
        self._ordered = matching.with_only_columns(literal(1), maintain_column_froms=True).limit(None).offset(None)

    def count(self, conn: Connection, up_to: int | None) -> int:
        rows = self._ordered.order_by(None) if up_to is None else self._ordered.limit(up_to)
        return int(conn.execute(select(func.count()).select_from(rows.subquery())).scalar_one())

    def estimate(self, conn: Connection) -> int:
        compiled = self._ordered.order_by(None).compile(conn, compile_kwargs={"render_postcompile": True})
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar_one()
        document = orjson.loads(plan) if isinstance(plan, str | bytes) else plan  # psycopg parses json itself
        return int(document[0]["Plan"]["Plan Rows"])


def total_of(conn: Connection, matching: Countable, counting: Counting) -> int | None:
    """The number of rows ``matching`` holds, counted as ``counting`` says."""
    if counting is Counting.NONE:
        return None
    if counting is Counting.ACCURATE or conn.dialect.name != "postgresql":
        return matching.count(conn, None)
    counted = matching.count(conn, EXACT_UP_TO + 1)
    if counted <= EXACT_UP_TO:
        return counted
    return max(EXACT_UP_TO + 1, matching.estimate(conn))


def total_after_page(
    conn: Connection, matching: Countable, counting: Counting, offset: int, page_rows: int, more: bool
) -> int | None:
    """The total of ``matching`` once a page of it was read (``page_rows`` rows from ``offset``, and
    whether ``more`` follow): the last page needs no count, its offset and its rows are the total (most
    searches of one patient's data fit on their first page); any other page is counted as ``total_of``."""
    if counting is Counting.NONE:
        return None
    if not more and (page_rows or offset == 0):
        return offset + page_rows
    return total_of(conn, matching, counting)
