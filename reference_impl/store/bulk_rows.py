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
MEMO_LIMIT = 200_000  # remembered (parameter, elements) answers; all forgotten when full


class IndexRowMemo:
    """``SearchParamRegistry.index_rows``, remembered per parameter and the values it reads.

    Hand-written for speed: the registry evaluates every parameter's FHIRPath on every resource
    (about 120 µs a resource, most of a load's time), while most parameters of a generated resource
    read elements many resources share (a status, a type, the patient, the same ``meta``). A
    parameter whose every path starts with a child of the resource reads only those top-level
    elements, so its rows are a function of their values: they are computed once per distinct
    values and remembered. Any other parameter is evaluated every time. The rows are those of
    ``index_rows`` (same evaluation, same de-duplication): ``tests/reference_impl/seed`` compares
    both on every resource of a generated dataset.
    """

    def __init__(self, search: SearchParamRegistry) -> None:
        self._registry = search
        self._plans: dict[str, list[tuple[SearchParam, tuple[str, ...] | None]]] = {}
        self._memo: dict[tuple[str, str, bytes], list[IndexSuffix]] = {}

    def rows(self, resource: dict[str, Any]) -> Iterator[tuple[str, list[IndexSuffix]]]:
        """(param type, rows) per parameter of ``resource``'s type."""
        type_name = resource["resourceType"]
        plan = self._plans.get(type_name)
        if plan is None:
            plan = self._plans[type_name] = self._plan(type_name)
        values: dict[tuple[str, ...], bytes] = {}  # parameters reading the same elements: serialised once
        for param, keys in plan:
            if keys is None:
                yield param.type, self._evaluate(param, resource)
                continue
            read = values.get(keys)
            if read is None:
                read = values[keys] = orjson.dumps([resource.get(k) for k in keys])
            memo_key = (type_name, param.code, read)
            found = self._memo.get(memo_key)
            if found is None:
                if len(self._memo) >= MEMO_LIMIT:
                    self._memo.clear()
                found = self._memo[memo_key] = self._evaluate(param, resource)
            yield param.type, found

    def _plan(self, type_name: str) -> list[tuple[SearchParam, tuple[str, ...] | None]]:
        structure = self._registry.structure
        plan: list[tuple[SearchParam, tuple[str, ...] | None]] = []
        for param in self._registry.for_type(type_name).values():
            if param.is_column:
                continue
            keys: set[str] | None = set()
            for path in param.paths:
                if not path or path[0].kind != "child" or keys is None:
                    keys = None
                    continue
                keys.update(c.json_key for c in structure.children(ElementContext(type_name), path[0].name))
            plan.append((param, tuple(sorted(keys)) if keys is not None else None))
        return plan

    def _evaluate(self, param: SearchParam, resource: dict[str, Any]) -> list[IndexSuffix]:
        # index_rows' evaluation of one parameter, row for row.
        nodes = self._registry.selected(resource, param)
        seen: set[Row] = set()
        found: list[IndexSuffix] = []
        for row in ROWS_BY_TYPE[param.type](nodes):
            if row not in seen:
                seen.add(row)
                found.append((param.code, *row))
        return found


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
            if rows:
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
