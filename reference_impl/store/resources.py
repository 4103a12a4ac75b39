"""Resource persistence: current versions, history and search index rows, kept in step.

A version's body is stored once: the current version's in ``resources``, a superseded version's in its
history row, moved there when the next version (or the deletion) is written. A history row therefore
reads its body through the current row when it is the current version (``HISTORY_COLUMNS``); a store
written before kept both copies, which read the same. Every body held twice was a fifth of the store:
about 74 GiB against 60 at a million people (docs/performance.md).

Documents are sealed on their way in and opened on their way out (``documents.py``): every
StoredResource this module or ``search_run`` hands out holds plain JSON, whatever the row holds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import uuid6
from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, func, select, text

from reference_impl.fhir import index_row_memo
from reference_impl.fhir.dates import format_instant, from_us, now_instant
from reference_impl.fhir.searchparams import SearchParamRegistry
from reference_impl.store.counting import Counting, CountOfStatement, total_after_page
from reference_impl.store.documents import SealedVersion, is_document, sealing_of
from reference_impl.store.driver import DriverStatement, TableAppend, append_all, appending
from reference_impl.store.schema import (
    INDEX_TABLES,
    WHOLE_SERVER_HISTORY,
    history,
    index_row_columns,
    index_row_stamp,
    resources,
)


@dataclass(frozen=True, slots=True)
class StoredResource:
    type_name: str
    id: str
    version_id: int
    last_updated: int  # epoch microseconds
    deleted: bool
    content: str | None  # the resource JSON as served; None for a deletion

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    def parsed(self) -> dict[str, Any]:
        if self.content is None:
            raise ValueError(f"{self.type_name}/{self.id} version {self.version_id} is a deletion")
        result: dict[str, Any] = orjson.loads(self.content)
        return result


CURRENT_COLUMNS = (
    resources.c.res_type,
    resources.c.res_id,
    resources.c.version_id,
    resources.c.last_updated,
    resources.c.deleted,
    resources.c.content,
    resources.c.sealed,
)


def opened_rows(conn: Connection, rows: Sequence[Any]) -> list[StoredResource]:
    """Rows of CURRENT_COLUMNS or HISTORY_COLUMNS as StoredResources with plain content: sealed
    documents opened (their keys looked up once per type)."""
    sealed = [SealedVersion(row[0], row[1], row[2], row[6]) for row in rows if row[6] is not None]
    opened = iter(sealing_of(conn).open(conn, sealed) if sealed else ())
    # Each built once, with its body opened (a dataclasses.replace() after the fact: 2.4 µs a document).
    return [
        StoredResource(row[0], row[1], row[2], row[3], bool(row[4]), row[5] if row[6] is None else next(opened))
        for row in rows
    ]


# Statements of fixed shape are built once: building a statement costs several times executing it.
_KEY = "WHERE res_type = ? AND res_id = ?"
_CURRENT_BY_KEY = f"SELECT res_type, res_id, version_id, last_updated, deleted, content, sealed FROM resources {_KEY}"
_READ_CURRENT = DriverStatement(_CURRENT_BY_KEY)
# The row locked until the unit ends, on PostgreSQL; SQLite's writer is alone already (BEGIN IMMEDIATE).
_LOCK_CURRENT = DriverStatement(_CURRENT_BY_KEY + " FOR UPDATE")
_SELECT_MANY = select(*CURRENT_COLUMNS).where(
    resources.c.res_type == bindparam("type_name"),
    resources.c.res_id.in_(bindparam("ids", expanding=True)),
    resources.c.deleted.is_(False),
)
# A history row read as a StoredResource (a DELETE row is a deletion), then its method; the current
# version's body from the current row.
_HISTORY_WITH_CURRENT = history.outerjoin(
    resources,
    and_(
        resources.c.res_type == history.c.res_type,
        resources.c.res_id == history.c.res_id,
        resources.c.version_id == history.c.version_id,
    ),
)
HISTORY_COLUMNS = (
    history.c.res_type,
    history.c.res_id,
    history.c.version_id,
    history.c.last_updated,
    history.c.method == "DELETE",
    func.coalesce(history.c.content, resources.c.content),
    func.coalesce(history.c.sealed, resources.c.sealed),
    history.c.method,
)
_SELECT_VERSION = (
    select(*HISTORY_COLUMNS)
    .select_from(_HISTORY_WITH_CURRENT)
    .where(
        history.c.res_type == bindparam("type_name"),
        history.c.res_id == bindparam("res_id"),
        history.c.version_id == bindparam("version_id"),
    )
)
_UPDATE_CURRENT = DriverStatement(
    f"UPDATE resources SET version_id = ?, last_updated = ?, deleted = ?, content = ?, sealed = ? {_KEY}"
)
# The current version's body into its history row, before the next version replaces it.
_KEEP_SUPERSEDED_BODY = DriverStatement(
    f"UPDATE resource_history SET (content, sealed) = (SELECT content, sealed FROM resources {_KEY})"
    f" {_KEY} AND version_id = ?"
)
_DELETE_VERSION = delete(history).where(
    history.c.res_type == bindparam("type_name"),
    history.c.res_id == bindparam("res_id"),
    history.c.version_id == bindparam("version_id"),
)
# create_all's rows: many at once, on the driver (SQLAlchemy's per-row work costs more than the insert).
_CREATE_CURRENT = TableAppend(
    resources, ("res_type", "res_id", "version_id", "last_updated", "deleted", "content", "sealed")
)
_CREATE_HISTORY = TableAppend(
    history, ("res_type", "res_id", "version_id", "last_updated", "method", "content", "sealed")
)
_CREATE_INDEX_ROW = {name: TableAppend(table, index_row_columns(name)) for name, table in INDEX_TABLES.items()}
_DROP_INDEX = [DriverStatement(f"DELETE FROM {table.name} {_KEY}") for table in INDEX_TABLES.values()]


def new_id() -> str:
    """An id for a resource the server names: a time-ordered UUID (version 7, RFC 9562). New rows then
    land at the end of every index keyed by id instead of on a random page each (measured on
    SQLite: half the time of writing a group of AuditEvents)."""
    return str(uuid6.uuid7())


def current(conn: Connection, type_name: str, res_id: str, for_update: bool = False) -> StoredResource | None:
    """The current row; ``for_update`` locks it until the transaction ends (PostgreSQL)."""
    statement = _LOCK_CURRENT if for_update and conn.dialect.name == "postgresql" else _READ_CURRENT
    row = statement.first(conn, (type_name, res_id))  # every read and every write runs this
    return opened_rows(conn, [row])[0] if row else None


def lock_type(conn: Connection, type_name: str) -> None:
    """Serialise conditional writes on one type, so two of them never both see "no match".

    SQLite has a single writer already; PostgreSQL takes a transaction-scoped advisory lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"eqlab:{type_name}"})


def many(conn: Connection, keys: list[tuple[str, str]]) -> list[StoredResource]:
    """Current, non-deleted resources for (type, id) keys, in the order given."""
    found: dict[tuple[str, str], StoredResource] = {}
    by_type: dict[str, list[str]] = {}
    for type_name, res_id in keys:
        by_type.setdefault(type_name, []).append(res_id)
    for type_name, ids in by_type.items():
        rows = conn.execute(_SELECT_MANY, {"type_name": type_name, "ids": ids}).all()
        found.update(((s.type_name, s.id), s) for s in opened_rows(conn, rows))
    return [found[k] for k in dict.fromkeys(keys) if k in found]


def version(conn: Connection, type_name: str, res_id: str, version_id: int) -> StoredResource | None:
    row = conn.execute(_SELECT_VERSION, {"type_name": type_name, "res_id": res_id, "version_id": version_id}).first()
    return opened_rows(conn, [row])[0] if row else None


def save(
    conn: Connection,
    registry: SearchParamRegistry,
    resource: dict[str, Any],
    res_id: str,
    previous: StoredResource | None,
    method: str,
    reuse_version: bool = False,
) -> StoredResource:
    """Store ``resource`` as the next version of ``Type/res_id`` (``previous`` is the current row).

    ``reuse_version`` is the fault "version-not-incremented": the current version is overwritten.
    """
    type_name = resource["resourceType"]
    version_id = previous.version_id + 1 if previous else 1
    if reuse_version and previous is not None:
        version_id = previous.version_id
        conn.execute(_DELETE_VERSION, {"type_name": type_name, "res_id": res_id, "version_id": version_id})
    last_updated, instant = now_instant()
    body, content, body_columns = _versioned(conn, resource, res_id, version_id, instant)
    current: tuple[object, ...] = (version_id, last_updated, False, body_columns["content"], body_columns["sealed"])
    appends: list[tuple[TableAppend, list[tuple[object, ...]]]] = []
    if previous is None:
        appends.append((_CREATE_CURRENT, [(type_name, res_id, *current)]))
    appends.append((_CREATE_HISTORY, [_history_row(type_name, res_id, version_id, last_updated, method)]))
    for param_type, rows in registry.index_rows(body).items():
        stamp = index_row_stamp(param_type, last_updated)
        appends.append((_CREATE_INDEX_ROW[param_type], [(type_name, res_id, code, *row, *stamp) for code, row in rows]))
    with appending(conn, appends):  # the new rows after the block's changes (the index rows replaced dropped)
        if previous is not None:
            _replace_current(conn, previous, current, keep_superseded=not reuse_version)
    return StoredResource(type_name, res_id, version_id, last_updated, False, content)


def create_all(conn: Connection, registry: SearchParamRegistry, new: Sequence[tuple[dict[str, Any], str]]) -> None:
    """Store new resources (``(resource, id)``, each a version 1 created by POST) with one statement per
    table for all of them: how the audit trail's group commit writes many AuditEvents at once."""
    if not new:
        return
    last_updated, instant = now_instant()
    remembered = index_row_memo.shared(registry)
    current_rows: list[tuple[object, ...]] = []
    history_rows: list[tuple[object, ...]] = []
    index_rows: dict[str, list[tuple[object, ...]]] = {}
    for resource, res_id in new:
        body, _, body_columns = _versioned(conn, resource, res_id, 1, instant)
        type_name, content, sealed = body["resourceType"], body_columns["content"], body_columns["sealed"]
        current_rows.append((type_name, res_id, 1, last_updated, False, content, sealed))
        history_rows.append(_history_row(type_name, res_id, 1, last_updated, "POST"))
        key = (type_name, res_id)
        for param_type, rows in remembered.rows(body):
            stamp = index_row_stamp(param_type, last_updated)
            index_rows.setdefault(param_type, []).extend(key + row + stamp for row in rows)
    appends = [(_CREATE_CURRENT, current_rows), (_CREATE_HISTORY, history_rows)]
    append_all(conn, appends + [(_CREATE_INDEX_ROW[param_type], rows) for param_type, rows in index_rows.items()])


def versioned_body(resource: dict[str, Any], res_id: str, version_id: int, instant: str) -> dict[str, Any]:
    """``resource`` as stored for ``version_id``: type, id and meta (versionId, lastUpdated) first."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = instant
    body = {"resourceType": resource["resourceType"], "id": res_id, "meta": meta}
    # The resource's other elements after those three, in their order: updated in one call, the three
    # set again (a dict keeps a key's first place): 3.9-5.1 -> 1.8-3.2 µs a resource of the national dataset.
    body.update(resource)
    body["id"], body["meta"] = res_id, meta
    return body


def _versioned(
    conn: Connection, resource: dict[str, Any], res_id: str, version_id: int, instant: str
) -> tuple[dict[str, Any], str, dict[str, str | bytes | None]]:
    """The body as stored for ``version_id`` (id and meta set), its JSON, and the row's body columns
    (``content``, or ``sealed`` for a document)."""
    type_name = resource["resourceType"]
    body = versioned_body(resource, res_id, version_id, instant)
    content = orjson.dumps(body).decode()
    sealed = (
        sealing_of(conn).seal(conn, type_name, res_id, version_id, content) if is_document(type_name, body) else None
    )
    return body, content, {"content": None if sealed is not None else content, "sealed": sealed}


def mark_deleted(conn: Connection, previous: StoredResource) -> StoredResource:
    version_id = previous.version_id + 1
    last_updated, _ = now_instant()
    history_row = _history_row(previous.type_name, previous.id, version_id, last_updated, "DELETE")
    with appending(conn, [(_CREATE_HISTORY, [history_row])]):
        _replace_current(conn, previous, (version_id, last_updated, True, None, None), keep_superseded=True)
    return StoredResource(previous.type_name, previous.id, version_id, last_updated, True, None)


def _replace_current(
    conn: Connection, previous: StoredResource, row: tuple[object, ...], keep_superseded: bool
) -> None:
    """The current row becomes ``row`` (version, last update, deleted, content, sealed), its search index rows
    dropped; ``keep_superseded``: the body it replaces moves into that version's history row first."""
    key = (previous.type_name, previous.id)
    if keep_superseded:
        _KEEP_SUPERSEDED_BODY.write(conn, (*key, *key, previous.version_id))
    _UPDATE_CURRENT.write(conn, (*row, *key))
    for statement in _DROP_INDEX:
        statement.write(conn, key)


def _history_row(type_name: str, res_id: str, version_id: int, last_updated: int, method: str) -> tuple[object, ...]:
    """The history row of the version just written: no body while it is current (the current row holds it)."""
    return (type_name, res_id, version_id, last_updated, method, None, None)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    total: int | None  # exact up to counting.EXACT_UP_TO versions, estimated beyond (``counting.py``)
    versions: list[tuple[StoredResource, str]]  # (version, method)
    more: bool = False  # older versions beyond this page exist


def history_page(
    conn: Connection,
    type_name: str | None,
    res_id: str | None,
    since_us: int | None,
    at_us: int | None,
    count: int,
    offset: int,
    hidden_types: Collection[str] = (),
) -> HistoryPage:
    """Versions newest first, for one resource, one type or the whole server (without ``hidden_types``)."""
    conditions: list[ColumnElement[bool]] = []
    if hidden_types:
        conditions.append(history.c.res_type.not_in(list(hidden_types)))
    if type_name is not None:
        conditions.append(history.c.res_type == type_name)
    else:
        conditions.append(WHOLE_SERVER_HISTORY)  # true of every row: it lets the whole server's index serve
    if res_id is not None:
        conditions.append(history.c.res_id == res_id)
    if since_us is not None:
        conditions.append(history.c.last_updated >= since_us)
    if at_us is not None:
        conditions.append(history.c.last_updated <= at_us)
    where = and_(*conditions) if conditions else and_(True)
    matching = (
        select(*HISTORY_COLUMNS)
        .select_from(_HISTORY_WITH_CURRENT)
        .where(where)
        # Ties broken backwards too: the page is read backwards off ix_history_(type_)updated_id, not sorted.
        .order_by(
            *(c.desc() for c in (history.c.last_updated, history.c.res_type, history.c.res_id, history.c.version_id))
        )
    )
    rows = conn.execute(matching.limit(count + 1).offset(offset)).all()  # one more: is there a next page?
    shown, more = rows[:count], len(rows) > count
    total = total_after_page(conn, CountOfStatement(matching), Counting.ESTIMATE, offset, len(shown), more)
    return HistoryPage(total, list(zip(opened_rows(conn, shown), (r[7] for r in shown), strict=True)), more=more)


def instant_of(stored: StoredResource) -> str:
    return format_instant(from_us(stored.last_updated))
