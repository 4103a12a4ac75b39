"""Tables: current resources, their history, and one search index table per parameter type.

Times are epoch microseconds (BIGINT) so that ranges compare the same way on SQLite and
PostgreSQL. Resource bodies are stored as the exact JSON the server returns (``content``), except
documents: those are sealed (``sealed``, bytes; ``documents.py``) and ``document_keys`` holds each
document's key, wrapped by the master key.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    literal_column,
)
from sqlalchemy.dialects import postgresql

metadata = MetaData()

# "C" collation on PostgreSQL makes `LIKE 'prefix%'` use the btree index.
IndexedText = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
TypeColumn = String(64)
IdColumn = String(64)

resources = Table(
    "resources",
    metadata,
    Column("res_type", TypeColumn, primary_key=True),
    Column("res_id", IdColumn, primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),
    Column("sealed", LargeBinary, nullable=True),
    # A type's resources in the order of a search's pages (ties by id): a page is read off it, not sorted.
    Index("ix_resources_type_updated_id", "res_type", "last_updated", "res_id"),
)

history = Table(
    "resource_history",
    metadata,
    Column("res_type", TypeColumn, primary_key=True),
    Column("res_id", IdColumn, primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("content", Text, nullable=True),
    Column("sealed", LargeBinary, nullable=True),
    # A type's history pages, newest first, read backwards off it: in order, no sort.
    Index("ix_history_type_updated_id", "res_type", "last_updated", "res_id", "version_id"),
)
# The whole server's history pages, newest first. Partial, with a predicate every row meets, so that only
# the whole server's query (which states it) may use it: the planner, believing types spread evenly over
# time, took an index on the last update alone for a type's pages too, and walked through every newer
# version of other types (AuditEvents, written with every access) to find 50 DocumentReference versions.
# A literal, never a bound parameter: the planner must see the predicate in the query's own text (a
# generic plan of a prepared statement knows no parameter's value).
WHOLE_SERVER_HISTORY = history.c.version_id > literal_column("0")
Index(
    "ix_history_server_updated",
    history.c.last_updated,
    postgresql_where=WHOLE_SERVER_HISTORY,
    sqlite_where=WHOLE_SERVER_HISTORY,
)

document_keys = Table(
    "document_keys",
    metadata,
    Column("res_type", TypeColumn, primary_key=True),
    Column("res_id", IdColumn, primary_key=True),
    Column("wrapped_key", Text, nullable=False),
)


# PDQm's plan reads the few people born that day, then checks each one's family and given names. Through an
# owner index of (type, id) alone each check fetched the person's table rows; the planner, costing those
# fetches as reads from disk (random_page_cost 4), preferred at 1,000,000 patients to walk the lookup index
# over every row of the name for each person (0.6-0.9 ms a check, 45 ms a search). With the parameter and
# values in the owner index, a check is an index-only scan of the person's few rows: over 200 searches at
# 1,000,000 patients, execution p95 17-26 -> 1.3-1.6 ms, worst 34-52 -> 1.5-2.6 ms (migration 8).
OWNER_COVERS_LOOKUP = ("string", "date")


# The index table whose rows carry their resource's last update (``last_updated``, as in ``resources``;
# rewritten with the rows at every version): its lookup index holds a value's rows in that order, so the
# page of a search by one reference (a patient's access log, ``AuditEvent?patient=``) is read off the
# index's first rows (``update_order.UpdateOrderedLookup``), not sorted from every resource pointing there.
# Migration 9 adds the column to a store made before it.
STAMPED = "reference"


def _index_table(name: str, *columns: Column[object], lookup: tuple[str, ...]) -> Table:
    stamped = name == STAMPED
    table = Table(
        f"idx_{name}",
        metadata,
        Column("res_type", TypeColumn, nullable=False),
        Column("res_id", IdColumn, nullable=False),
        Column("param", String(64), nullable=False),
        *columns,
        *([Column("last_updated", BigInteger, nullable=False)] if stamped else []),
    )
    looked_up = [table.c[c] for c in lookup]
    # The id last: a criterion's matches are read off the index alone (an index-only scan), no table rows.
    if stamped:
        # A value's rows in the order of their resources' last update (``STAMPED``), whether or not the search
        # names its target's type (``patient=<id>`` does not): the type after them, still read off the index.
        first, *others = looked_up
        Index(
            f"ix_idx_{name}_lookup_updated_id",
            table.c.res_type,
            table.c.param,
            first,
            table.c.last_updated,
            table.c.res_id,
            *others,
        )
    else:
        Index(f"ix_idx_{name}_lookup_id", table.c.res_type, table.c.param, *looked_up, table.c.res_id)
    if name in OWNER_COVERS_LOOKUP:
        # A candidate's rows of a criterion, checked off the index alone (``OWNER_COVERS_LOOKUP``).
        Index(f"ix_idx_{name}_owner_lookup", table.c.res_type, table.c.res_id, table.c.param, *looked_up)
    else:
        Index(f"ix_idx_{name}_owner", table.c.res_type, table.c.res_id)
    return table


idx_string = _index_table(
    "string",
    Column("value_norm", IndexedText),
    Column("value_exact", IndexedText),
    lookup=("value_norm",),
)
idx_token = _index_table(
    "token",
    Column("system", IndexedText),
    Column("code", IndexedText),
    Column("text_norm", IndexedText),
    lookup=("code", "system"),
)
idx_date = _index_table(
    "date",
    Column("low", BigInteger),
    Column("high", BigInteger),
    lookup=("low", "high"),
)
idx_number = _index_table("number", Column("value", Float), lookup=("value",))
idx_quantity = _index_table(
    "quantity",
    Column("value", Float),
    Column("system", IndexedText),
    Column("code", IndexedText),
    Column("unit", IndexedText),
    lookup=("value",),
)
idx_reference = _index_table(
    "reference",
    Column("target_type", TypeColumn),
    Column("target_id", IdColumn),
    Column("url", IndexedText),
    Column("ident_system", IndexedText),
    Column("ident_value", IndexedText),
    lookup=("target_id", "target_type"),
)
Index("ix_idx_reference_target", idx_reference.c.target_type, idx_reference.c.target_id)
idx_uri = _index_table("uri", Column("value", IndexedText), lookup=("value",))
# A Binary's document names it by its attachment URL (a ``location`` row), absolute or relative: the URLs
# ending ``/Binary/<id>`` are those whose reversal starts with the reversed ending, a range of this index
# (PostgreSQL; SQLite has no ``reverse``, and finds them by a scan of the documents' URLs). Without it,
# reading a Binary whose document names it by an absolute URL scanned every document's URL (migration 10).
URI_REVERSED = func.reverse(idx_uri.c.value)
_uri_reversed = Index("ix_idx_uri_reversed", idx_uri.c.res_type, idx_uri.c.param, URI_REVERSED).ddl_if(
    dialect="postgresql"
)
POSTGRESQL_ONLY_INDEXES = frozenset({_uri_reversed.name})

INDEX_TABLES: dict[str, Table] = {
    "string": idx_string,
    "token": idx_token,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "reference": idx_reference,
    "uri": idx_uri,
}
INDEX_VALUE_COLUMNS: dict[str, tuple[str, ...]] = {  # what the FHIR layer's index rows hold after the parameter
    "string": ("value_norm", "value_exact"),
    "token": ("system", "code", "text_norm"),
    "date": ("low", "high"),
    "number": ("value",),
    "quantity": ("value", "system", "code", "unit"),
    "reference": ("target_type", "target_id", "url", "ident_system", "ident_value"),
    "uri": ("value",),
}


def index_row_columns(name: str) -> tuple[str, ...]:
    """The columns of index table ``name`` in the order its writers give them: the owner, the parameter and
    its values, then for ``STAMPED`` the resource's last update."""
    stamp = ("last_updated",) if name == STAMPED else ()
    return ("res_type", "res_id", "param", *INDEX_VALUE_COLUMNS[name], *stamp)


def index_row_stamp(name: str, last_updated: int) -> tuple[int, ...]:
    """What ``index_row_columns`` adds after a row's values: its resource's last update for ``STAMPED``."""
    return (last_updated,) if name == STAMPED else ()
