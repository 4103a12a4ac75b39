"""The rows a bulk load writes: for each resource, exactly the rows ``resources.save`` writes for a
first version (the JSON with its meta, its history row, its search index rows, and for documents
the sealed body and its wrapped key), gathered per chunk and per table (``bulk.py`` writes them).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reference_impl.fhir.dates import now_instant
from reference_impl.fhir.indexing import ROWS_BY_TYPE, Row
from reference_impl.fhir.searchparams import SearchParam, SearchParamRegistry, registry
from reference_impl.fhir.structure import ElementContext
from reference_impl.store.documents import FORMAT, NONCE_BYTES, is_document, key_context
from reference_impl.store.resources import versioned_body
from reference_impl.store.schema import INDEX_TABLES, INDEX_VALUE_COLUMNS
from reference_impl.vault import MasterKey

METHOD = "PUT"  # a loaded resource is stored under its own id, as a transaction's PUT entry stores it


IndexSuffix = tuple[Any, ...]  # (param code, *values) of one index row
TypedRows = list[tuple[str, list[IndexSuffix]]]  # (param type, rows) per param type with rows
MEMO_LIMIT = 200_000  # remembered answers, all groups together; all forgotten when full
TRIAL = 2_000  # lookups after which a group whose answers rarely come back stops being remembered
WORTH_REMEMBERING = 0.1  # ... rarely: less than this share of its lookups found a remembered answer


class _Group:
    """The parameters of a type that read the same top-level elements (``keys``; None: any element,
    evaluated every time), and their remembered rows per value of those elements."""

    def __init__(self, keys: tuple[str, ...] | None, params: list[SearchParam]) -> None:
        self.keys, self.params = keys, params
        self.remembered = keys is not None
        self.memo: dict[bytes, TypedRows] = {}
        self.lookups = self.found = 0


class IndexRowMemo:
    """``SearchParamRegistry.index_rows``, remembered per group of parameters and the values it reads.

    Hand-written for speed: the registry evaluates every parameter's FHIRPath on every resource
    (about 120 µs a resource, most of a load's time), while most parameters of a generated resource
    read elements many resources share (a status, a type, the patient, the same ``meta``). A
    parameter whose every path starts with a child of the resource reads only those top-level
    elements, so its rows are a function of their values: the parameters reading the same elements
    are computed together once per distinct values and remembered. A group whose values rarely come
    back (an identifier, a date: each resource its own) is evaluated every time after a trial, as is
    any other parameter: remembering them was most of this class's own time (serialising the values,
    storing answers never asked for again). The rows are those of ``index_rows`` (same evaluation,
    same de-duplication): ``tests/reference_impl/seed`` compares both on every resource of a
    generated dataset.
    """

    def __init__(self, search: SearchParamRegistry, trial: int = TRIAL) -> None:
        self._registry = search
        self._trial = trial
        self._plans: dict[str, list[_Group]] = {}
        self._remembered = 0

    def rows(self, resource: dict[str, Any]) -> Iterator[tuple[str, list[IndexSuffix]]]:
        """(param type, rows) for the parameters of ``resource``'s type (a type may come more than once)."""
        type_name = resource["resourceType"]
        plan = self._plans.get(type_name)
        if plan is None:
            plan = self._plans[type_name] = self._plan(type_name)
        for group in plan:
            keys = group.keys
            if keys is not None:
                for key in keys:
                    if key in resource:
                        break
                else:
                    continue  # paths that start at absent elements select nothing: no rows
            if not group.remembered:
                yield from self._evaluate(group.params, resource)
                continue
            assert keys is not None
            read = orjson.dumps([resource.get(k) for k in keys])
            found = group.memo.get(read)
            group.lookups += 1
            if found is not None:
                group.found += 1
            else:
                found = self._evaluate(group.params, resource)
                self._remember(group, read, found)
            yield from found

    def _remember(self, group: _Group, read: bytes, found: TypedRows) -> None:
        if group.lookups >= self._trial and group.found < WORTH_REMEMBERING * group.lookups:
            group.remembered = False
            self._remembered -= len(group.memo)
            group.memo.clear()
            return
        if self._remembered >= MEMO_LIMIT:
            for plan in self._plans.values():
                for other in plan:
                    other.memo.clear()
            self._remembered = 0
        group.memo[read] = found
        self._remembered += 1

    def _plan(self, type_name: str) -> list[_Group]:
        structure = self._registry.structure
        by_keys: dict[tuple[str, ...] | None, list[SearchParam]] = {}
        for param in self._registry.for_type(type_name).values():
            if param.is_column:
                continue
            keys: set[str] | None = set()
            for path in param.paths:
                if not path or path[0].kind != "child" or keys is None:
                    keys = None
                    continue
                keys.update(c.json_key for c in structure.children(ElementContext(type_name), path[0].name))
            by_keys.setdefault(tuple(sorted(keys)) if keys is not None else None, []).append(param)
        return [_Group(keys, params) for keys, params in by_keys.items()]

    def _evaluate(self, params: list[SearchParam], resource: dict[str, Any]) -> TypedRows:
        # index_rows' evaluation of each parameter, row for row, gathered per param type.
        by_type: dict[str, list[IndexSuffix]] = {}
        for param in params:
            nodes = self._registry.selected(resource, param)
            seen: set[Row] = set()
            for row in ROWS_BY_TYPE[param.type](nodes):
                if row not in seen:
                    seen.add(row)
                    by_type.setdefault(param.type, []).append((param.code, *row))
        return list(by_type.items())


@dataclass
class Rows:
    """The rows of one chunk, per table, in the tables' column order."""

    resources: list[tuple[Any, ...]]
    history: list[tuple[Any, ...]]
    keys: list[tuple[Any, ...]]
    index: dict[str, list[tuple[Any, ...]]]
    count: int = 0


class RowMaker:
    """Turns resources into the rows ``resources.save`` writes for a first version."""

    def __init__(self, master: MasterKey, search: SearchParamRegistry | None = None) -> None:
        self._master = master
        self._index = IndexRowMemo(search or registry())

    def rows(self, resources: Iterable[dict[str, Any]]) -> Rows:
        last_updated, instant = now_instant()
        out = Rows([], [], [], {name: [] for name in INDEX_TABLES})
        for resource in resources:
            self.add(out, resource, last_updated, instant)
        return out

    def add(self, out: Rows, resource: dict[str, Any], last_updated: int, instant: str) -> None:
        type_name, res_id = resource["resourceType"], resource["id"]
        body = versioned_body(resource, res_id, 1, instant)
        content: str | None = orjson.dumps(body).decode()
        sealed = None
        if is_document(type_name, body):
            assert content is not None
            sealed = self._seal(out, type_name, res_id, content)
            content = None
        out.resources.append((type_name, res_id, 1, last_updated, False, content, sealed))
        out.history.append((type_name, res_id, 1, last_updated, METHOD, None, None))  # the body: current row's
        key = (type_name, res_id)
        for param_type, rows in self._index.rows(body):
            out.index[param_type].extend(key + row for row in rows)
        out.count += 1

    def _seal(self, out: Rows, type_name: str, res_id: str, content: str) -> bytes:
        # DocumentVault.seal's format (documents.py): FORMAT + nonce + AES-256-GCM under the document's
        # own key, associated data Type/id/_history/version; the key wrapped with key_context.
        key = AESGCM.generate_key(bit_length=256)
        out.keys.append((type_name, res_id, self._master.wrap(key, key_context(type_name, res_id))))
        nonce = os.urandom(NONCE_BYTES)
        associated = f"{type_name}/{res_id}/_history/1".encode()
        return FORMAT + nonce + AESGCM(key).encrypt(nonce, content.encode(), associated)


COLUMNS = {
    "resources": ("res_type", "res_id", "version_id", "last_updated", "deleted", "content", "sealed"),
    "resource_history": ("res_type", "res_id", "version_id", "last_updated", "method", "content", "sealed"),
    "document_keys": ("res_type", "res_id", "wrapped_key"),
    **{table.name: ("res_type", "res_id", "param", *INDEX_VALUE_COLUMNS[name]) for name, table in INDEX_TABLES.items()},
}


def tables_of(rows: Rows) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    yield "resources", rows.resources
    yield "resource_history", rows.history
    yield "document_keys", rows.keys
    for name, table in INDEX_TABLES.items():
        yield table.name, rows.index[name]
