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
from reference_impl.fhir.index_row_memo import IndexRowMemo
from reference_impl.fhir.searchparams import SearchParamRegistry, registry
from reference_impl.store.documents import FORMAT, NONCE_BYTES, is_document, key_context
from reference_impl.store.resources import versioned_body
from reference_impl.store.schema import INDEX_TABLES, index_row_columns, index_row_stamp
from reference_impl.vault import MasterKey

METHOD = "PUT"  # a loaded resource is stored under its own id, as a transaction's PUT entry stores it


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
            stamp = index_row_stamp(param_type, last_updated)
            out.index[param_type].extend(key + row + stamp for row in rows)
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
    **{table.name: index_row_columns(name) for name, table in INDEX_TABLES.items()},
}


def tables_of(rows: Rows) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    yield "resources", rows.resources
    yield "resource_history", rows.history
    yield "document_keys", rows.keys
    for name, table in INDEX_TABLES.items():
        yield table.name, rows.index[name]
