"""Documents sealed at rest: AES-256-GCM under a key per document, wrapped by the master key.

A document is a Binary, or a DocumentReference carrying attachment data inline: its whole stored
JSON is sealed, so no plaintext of it reaches the database files, the WAL or a dump. Every other
resource is stored and served as plain JSON, untouched: sealing costs only documents.

A sealed body is ``FORMAT`` + nonce + ciphertext, as bytes in the ``sealed`` column (``content`` is
then empty): no base64 to pay for on the way in or out. Its associated data is ``Type/id/_history/version``,
so a sealed body copied onto another resource or version does not open. The document's key is
made on its first sealed version and kept in ``document_keys``, wrapped by the master key with the
context ``document key Type/id``; rotating the master key re-wraps those keys and leaves the
sealed bodies as they are (``rewrap_document_keys``).

The Database carries the sealing (``Database(url, documents=DocumentVault(master))``; the app
builds it from the settings). A Database built without one serves every other resource and refuses
documents: a tool that never meant to touch them cannot store one in the clear.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, bindparam, insert, select, update

from reference_impl.lru import LruMemory
from reference_impl.store.schema import document_keys
from reference_impl.vault import MasterKey, VaultError, rewrapped

log = logging.getLogger(__name__)

FORMAT = b"\x01"  # AES-256-GCM, 12-byte nonce, associated data Type/id/_history/version
NONCE_BYTES = 12
# Document keys a vault keeps from its reads, the least recently used dropped first: ~20 MB. It was 10,000
# with all dropped when full: the national flows' 2,000 patients (16,000 documents) then queried a key
# again for most reads (``DocumentVault._document_keys``: 6.5% of an ITI-67 find's server CPU, py-spy).
OPENED_KEYS = 100_000
DOCUMENTS_INFO_KEY = "eqlab.documents"  # where a transaction's connection carries its Database's sealing

_SELECT_KEY = select(document_keys.c.res_id, document_keys.c.wrapped_key).where(
    document_keys.c.res_type == bindparam("type_name"), document_keys.c.res_id == bindparam("res_id")
)
_SELECT_KEYS = select(document_keys.c.res_id, document_keys.c.wrapped_key).where(
    document_keys.c.res_type == bindparam("type_name"), document_keys.c.res_id.in_(bindparam("ids", expanding=True))
)
_INSERT_KEY = insert(document_keys)


class DocumentKeyError(RuntimeError):
    """A document cannot be sealed or opened: never answered with garbage, always a server error."""


def is_document(type_name: str, body: dict[str, Any]) -> bool:
    """True for what must be sealed: every Binary, and a DocumentReference with inline attachment data."""
    if type_name == "Binary":
        return True
    if type_name != "DocumentReference":
        return False
    contents = body.get("content")
    return isinstance(contents, list) and any(
        isinstance(c, dict) and isinstance(c.get("attachment"), dict) and "data" in c["attachment"] for c in contents
    )


@dataclass(frozen=True, slots=True)
class SealedVersion:
    type_name: str
    res_id: str
    version_id: int
    sealed: bytes  # FORMAT + nonce + ciphertext


class DocumentSealing(Protocol):
    def seal(self, conn: Connection, type_name: str, res_id: str, version_id: int, content: str) -> bytes | None:
        """The sealed body of ``content``; None keeps it in the clear (``ClearDocumentsForMeasurement`` only)."""

    def open(self, conn: Connection, versions: Sequence[SealedVersion]) -> list[str]: ...


def _associated_data(type_name: str, res_id: str, version_id: int) -> bytes:
    return f"{type_name}/{res_id}/_history/{version_id}".encode()


def key_context(type_name: str, res_id: str) -> str:
    return f"document key {type_name}/{res_id}"


class DocumentVault:
    """Seals and opens documents with their keys, unwrapped by the master key of the settings.

    Reads keep the keys they unwrapped (the ``kept_keys`` last used): a document's key never changes (a
    rotation re-wraps it), so a document read again costs no query for its key, which on PostgreSQL
    is a round trip. A body that does not open with a kept key is tried once more with the key the
    store holds (a store replaced under a running process), and only then refused.
    """

    def __init__(self, master: MasterKey, kept_keys: int = OPENED_KEYS) -> None:
        self._master = master
        self._opened_keys: LruMemory[tuple[str, str], bytes] = LruMemory(kept_keys)

    def seal(self, conn: Connection, type_name: str, res_id: str, version_id: int, content: str) -> bytes:
        wrapped = self._wrapped_keys(conn, type_name, [res_id]).get(res_id)
        if wrapped is None:
            key = AESGCM.generate_key(bit_length=256)
            conn.execute(
                _INSERT_KEY,
                {
                    "res_type": type_name,
                    "res_id": res_id,
                    "wrapped_key": self._master.wrap(key, key_context(type_name, res_id)),
                },
            )
        else:
            key = self._unwrap(type_name, res_id, wrapped)
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, content.encode(), _associated_data(type_name, res_id, version_id))
        return FORMAT + nonce + sealed

    def open(self, conn: Connection, versions: Sequence[SealedVersion]) -> list[str]:
        for version in versions:
            if version.sealed[:1] != FORMAT:
                raise _refused(version, f"its sealed body has an unknown format {version.sealed[:1]!r}")
        keys = self._document_keys(conn, versions, kept=True)
        opened = []
        for version in versions:
            where = (version.type_name, version.res_id)
            plain = _decrypted(keys[where], version)
            if plain is None:
                plain = _decrypted(self._document_keys(conn, [version], kept=False)[where], version)
            if plain is None:
                raise _refused(version, "its sealed body does not open with its key (altered, or moved)")
            opened.append(plain)
        return opened

    def _document_keys(
        self, conn: Connection, versions: Sequence[SealedVersion], kept: bool
    ) -> dict[tuple[str, str], bytes]:
        """The keys of ``versions``' documents: those kept from earlier reads (``kept``), the others from the store."""
        needed = {(v.type_name, v.res_id) for v in versions}
        keys: dict[tuple[str, str], bytes] = {}
        if kept:
            remembered = {where: self._opened_keys.get(where) for where in needed}
            keys = {where: key for where, key in remembered.items() if key is not None}
        unwrapped: dict[tuple[str, str], bytes] = {}
        missing = needed - keys.keys()
        for type_name in {t for t, _ in missing}:
            ids = sorted(i for t, i in missing if t == type_name)
            for res_id, wrapped in self._wrapped_keys(conn, type_name, ids).items():
                unwrapped[(type_name, res_id)] = self._unwrap(type_name, res_id, wrapped)
        for version in versions:
            if (version.type_name, version.res_id) not in keys and (version.type_name, version.res_id) not in unwrapped:
                raise _refused(version, "its document key is missing from document_keys")
        for where, key in unwrapped.items():
            self._opened_keys.put(where, key)
        return keys | unwrapped

    @staticmethod
    def _wrapped_keys(conn: Connection, type_name: str, ids: list[str]) -> dict[str, str]:
        if len(ids) == 1:  # the usual case (a read, a write), without an expanding IN: built once, cached
            rows = conn.execute(_SELECT_KEY, {"type_name": type_name, "res_id": ids[0]})
        else:
            rows = conn.execute(_SELECT_KEYS, {"type_name": type_name, "ids": ids})
        return {row[0]: row[1] for row in rows}

    def _unwrap(self, type_name: str, res_id: str, wrapped: str) -> bytes:
        try:
            return self._master.unwrap(wrapped, key_context(type_name, res_id))
        except VaultError:
            message = (
                f"cannot unwrap the document key of {type_name}/{res_id}: the configured master key is not the one "
                "that wrapped it (EQLAB_MASTER_KEY or the master key file changed without `eqlab platform-keys "
                "rotate-master`?)"
            )
            log.error(message)
            raise DocumentKeyError(message) from None


class ClearDocumentsForMeasurement:
    """Stores documents in the clear, for ``benchmarks/dsp.py`` to measure what sealing costs.

    Never built from settings or a command: a platform always seals (``DocumentVault``).
    """

    def seal(self, conn: Connection, type_name: str, res_id: str, version_id: int, content: str) -> None:
        return None

    def open(self, conn: Connection, versions: Sequence[SealedVersion]) -> list[str]:
        raise _refused(versions[0], "this store was built to keep documents in the clear, for a measurement")


def _decrypted(key: bytes, version: SealedVersion) -> str | None:
    nonce, sealed = version.sealed[1 : 1 + NONCE_BYTES], version.sealed[1 + NONCE_BYTES :]
    try:
        plain = AESGCM(key).decrypt(
            nonce, sealed, _associated_data(version.type_name, version.res_id, version.version_id)
        )
    except InvalidTag:
        return None
    return plain.decode()


def _refused(version: SealedVersion, why: str) -> DocumentKeyError:
    message = f"cannot open {version.type_name}/{version.res_id} version {version.version_id}: {why}"
    log.error(message)
    return DocumentKeyError(message)


def sealing_of(conn: Connection) -> DocumentSealing:
    """The sealing of the Database whose transaction ``conn`` is; a Database built without one refuses."""
    sealing: DocumentSealing | None = conn.info.get(DOCUMENTS_INFO_KEY)
    if sealing is None:
        message = (
            "this store was opened without the document vault (Database(url, documents=DocumentVault(master))): "
            "it neither stores nor opens documents"
        )
        log.error(message)
        raise DocumentKeyError(message)
    return sealing


def rewrap_document_keys(conn: Connection, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap every document key from ``old`` to ``new``; the sealed bodies are not touched.

    Keys already under ``new`` are left as they are (a rotation run again); a key that unwraps with
    neither stops the rotation before anything changed. Returns the number of keys re-wrapped.
    """
    if conn.dialect.name == "postgresql":  # no document gets a key under the old master meanwhile
        conn.exec_driver_sql("LOCK TABLE document_keys IN SHARE ROW EXCLUSIVE MODE")
    rows = conn.execute(select(document_keys.c.res_type, document_keys.c.res_id, document_keys.c.wrapped_key)).all()
    changes: list[dict[str, str]] = []
    unopened: list[str] = []
    for type_name, res_id, wrapped in rows:
        try:
            again = rewrapped(wrapped, key_context(type_name, res_id), old, new)
        except VaultError:
            unopened.append(f"{type_name}/{res_id}")
            continue
        if again is not None:
            changes.append({"key_type": type_name, "key_id": res_id, "wrapped_key": again})
    if unopened:
        shown = ", ".join(unopened[:5]) + (" ..." if len(unopened) > 5 else "")
        raise VaultError(
            f"{len(unopened)} document key(s) unwrap with neither the old nor the new master key ({shown}): "
            "nothing was re-wrapped"
        )
    if changes:
        conn.execute(
            update(document_keys).where(
                document_keys.c.res_type == bindparam("key_type"), document_keys.c.res_id == bindparam("key_id")
            ),
            changes,
        )
    return len(changes)
