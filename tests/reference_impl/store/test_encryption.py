"""Documents are sealed at rest (SPEC section 5): no plaintext of a document in the SQLite file, its
WAL or a pg_dump; every way of reading one gives it back exactly; a wrong master key fails loudly."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from reference_impl.app import create_app
from reference_impl.fhir.searchparams import registry
from reference_impl.platform import migrate_platform
from reference_impl.settings import Settings
from reference_impl.store import resources as store
from reference_impl.store.database import Database
from reference_impl.store.documents import DocumentKeyError, DocumentVault
from reference_impl.store.schema import resources
from reference_impl.vault import MasterKey
from tests.support.postgres import PG_URL
from tests.support.tokens import mint

MASTER = base64.b64encode(b"eqlab encryption tests master 01").decode()
OTHER_MASTER = base64.b64encode(b"eqlab encryption tests master 02").decode()
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


@contextmanager
def platform(db_url: str, master_key: str = MASTER) -> Iterator[TestClient]:
    """The FHIR core without the national services: sealing is the store's, for any Binary or DocumentReference."""
    app = create_app(Settings(db_url=db_url, master_key=master_key), available=())
    with TestClient(app, base_url="http://testserver/fhir/") as client:
        client.headers["Authorization"] = f"Bearer {mint(app, 'http://testserver')}"
        yield client


def secret_bytes(marker: str) -> bytes:
    return f"%PDF-1.4 discharge letter {marker} \x00\x01 end".encode("latin-1")


def provide_bundle(marker: str) -> dict[str, Any]:
    """An ITI-65-like provide: a List, a DocumentReference with its data inline and a Binary."""
    letter = base64.b64encode(secret_bytes(marker)).decode()
    inline = base64.b64encode(f"inline summary {marker}".encode()).decode()
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0f0d4c8a-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "List",
                    "status": "current",
                    "mode": "working",
                    "title": "submission set",
                    "entry": [{"item": {"reference": "urn:uuid:0f0d4c8a-0000-4000-8000-000000000002"}}],
                },
                "request": {"method": "POST", "url": "List"},
            },
            {
                "fullUrl": "urn:uuid:0f0d4c8a-0000-4000-8000-000000000002",
                "resource": {
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "description": "discharge letter",
                    "content": [
                        {"attachment": {"contentType": "text/plain", "data": inline, "title": "summary"}},
                        {"attachment": {"contentType": "application/pdf", "url": "Binary/letter"}},
                    ],
                },
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "resource": {
                    "resourceType": "Binary",
                    "id": "letter",
                    "contentType": "application/pdf",
                    "data": letter,
                },
                "request": {"method": "PUT", "url": "Binary/letter"},
            },
        ],
    }


def created_ids(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.text
    locations = [e["response"]["location"].split("/_history/")[0].split("/") for e in response.json()["entry"]]
    return {parts[-2]: parts[-1] for parts in locations}


def stored_files(db_url: str) -> bytes:
    """Every byte the store keeps: the SQLite file and its WAL, or a pg_dump of the test's schema."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    schema = str(url.query["schema"])
    dump = subprocess.run(
        ["pg_dump", "--dbname", PG_URL, "--schema", schema, "--no-owner"], capture_output=True, check=True, timeout=60
    )
    return dump.stdout


def test_documents_never_reach_the_store_in_the_clear_and_read_back_exactly(db_url: str) -> None:
    marker = f"eqlab-marker-{uuid.uuid4().hex}"
    second = f"eqlab-marker-{uuid.uuid4().hex}"
    with platform(db_url) as fhir:
        ids = created_ids(fhir.post("", json=provide_bundle(marker), headers=FHIR_JSON))
        doc_path, list_path = f"DocumentReference/{ids['DocumentReference']}", f"List/{ids['List']}"
        # An update and reads inside one transaction: the update reads the sealed version it replaces.
        update = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Binary",
                        "id": "letter",
                        "contentType": "application/pdf",
                        "data": base64.b64encode(secret_bytes(second)).decode(),
                    },
                    "request": {"method": "PUT", "url": "Binary/letter", "ifMatch": 'W/"1"'},
                },
                {"request": {"method": "GET", "url": doc_path}},
                {"request": {"method": "GET", "url": "Binary/letter/_history/1"}},
            ],
        }
        answered = fhir.post("", json=update, headers=FHIR_JSON)
        assert answered.status_code == 200, answered.text
        _, read_in_transaction, vread_in_transaction = answered.json()["entry"]
        document = read_in_transaction["resource"]
        inline = document["content"][0]["attachment"]["data"]
        assert base64.b64decode(inline) == f"inline summary {marker}".encode()
        assert base64.b64decode(vread_in_transaction["resource"]["data"]) == secret_bytes(marker)

        raw = fhir.get("Binary/letter", headers={"Accept": "application/pdf"})
        assert raw.status_code == 200 and raw.content == secret_bytes(second)
        assert raw.headers["content-type"] == "application/pdf"
        as_fhir = fhir.get("Binary/letter", headers=FHIR_JSON).json()
        assert base64.b64decode(as_fhir["data"]) == secret_bytes(second) and as_fhir["meta"]["versionId"] == "2"
        assert base64.b64decode(fhir.get("Binary/letter/_history/1").json()["data"]) == secret_bytes(marker)
        history = fhir.get("Binary/letter/_history").json()
        assert [base64.b64decode(e["resource"]["data"]) for e in history["entry"]] == [
            secret_bytes(second),
            secret_bytes(marker),
        ]
        assert fhir.get(doc_path).json() == document
        found = fhir.get("DocumentReference", params={"_id": ids["DocumentReference"]}).json()
        assert [e["resource"] for e in found["entry"]] == [document]
        # Found through its clear index rows, its sealed body opened for the answer.
        assert fhir.get("DocumentReference", params={"description": "discharge"}).json()["entry"][0]["resource"] == (
            document
        )
        with_documents = fhir.get("List", params={"_id": ids["List"], "_include": "List:item"}).json()
        assert [e["resource"] for e in with_documents["entry"] if e["search"]["mode"] == "include"] == [document]
        server_history = fhir.get("_history", params={"_count": "100"}).json()
        assert document in [e.get("resource") for e in server_history["entry"]]
        assert fhir.get(list_path).status_code == 200

    stored = stored_files(db_url)
    assert ids["DocumentReference"].encode() in stored and b"letter" in stored  # the right files were read
    for secret in (marker, second):
        for form in (
            secret.encode(),
            base64.b64encode(secret_bytes(secret)),
            base64.b64encode(f"inline summary {secret}".encode()),
        ):
            assert form not in stored, f"{form[:40]!r} is in the store in the clear"


def test_other_resources_and_documents_without_inline_data_are_stored_as_served(sqlite_db_url: str) -> None:
    pointer = {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{"attachment": {"contentType": "application/pdf", "url": "Binary/elsewhere"}}],
    }
    patient = {"resourceType": "Patient", "gender": "female"}
    with platform(sqlite_db_url) as fhir:
        served = {}
        for type_name, resource in (("DocumentReference", pointer), ("Patient", patient)):
            res_id = fhir.post(type_name, json=resource).json()["id"]
            served[res_id] = fhir.get(f"{type_name}/{res_id}", headers=FHIR_JSON).content
    db = Database(sqlite_db_url)
    try:
        with db.transaction(write=False) as conn:
            rows = dict(conn.execute(select(resources.c.res_id, resources.c.content)).all())
    finally:
        db.dispose()
    assert {res_id: rows[res_id].encode() for res_id in served} == served


def test_a_wrong_master_key_fails_loudly_never_with_garbage(
    sqlite_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A document sealed under another master key: a 500 and a log line that says why."""
    db = Database(sqlite_db_url, DocumentVault(MasterKey.from_text(OTHER_MASTER)))
    try:
        migrate_platform(db)
        binary = {"resourceType": "Binary", "contentType": "text/plain", "data": base64.b64encode(b"old").decode()}
        db.run(lambda conn: store.save(conn, registry(), binary, "sealed-elsewhere", None, "PUT"), write=True)
    finally:
        db.dispose()
    with platform(sqlite_db_url) as fhir, caplog.at_level(logging.ERROR):
        for accept in ("text/plain", "application/fhir+json"):
            answer = fhir.get("Binary/sealed-elsewhere", headers={"Accept": accept})
            assert answer.status_code == 500 and b"old" not in answer.content
            assert answer.json()["resourceType"] == "OperationOutcome"
        assert fhir.get("Binary/sealed-elsewhere/_history").status_code == 500
    assert any(
        "cannot unwrap the document key of Binary/sealed-elsewhere" in r.getMessage() and "master key" in r.getMessage()
        for r in caplog.records
    )


def test_a_store_opened_without_the_vault_refuses_documents_and_serves_the_rest(sqlite_db_url: str) -> None:
    db = Database(sqlite_db_url)
    try:
        migrate_platform(db)
        binary = {"resourceType": "Binary", "contentType": "text/plain", "data": base64.b64encode(b"x").decode()}
        with pytest.raises(DocumentKeyError, match="without the document vault"):
            db.run(lambda conn: store.save(conn, registry(), binary, "b1", None, "PUT"), write=True)
        patient = {"resourceType": "Patient", "gender": "male"}
        saved = db.run(lambda conn: store.save(conn, registry(), patient, "p1", None, "PUT"), write=True)
        assert db.run(lambda conn: store.current(conn, "Patient", "p1"), write=False) == saved
        assert db.run(lambda conn: store.current(conn, "Binary", "b1"), write=False) is None
    finally:
        db.dispose()


def test_a_store_made_before_sealing_gains_it_when_migrated(db_url: str) -> None:
    db = Database(db_url, DocumentVault(MasterKey.from_text(MASTER)))
    try:
        migrate_platform(db)
        with db.transaction(write=True) as conn:  # back to the store as migrations 1 and 2 left it
            for table in ("resources", "resource_history"):
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN sealed"))
            conn.execute(text("DROP TABLE document_keys"))
            conn.execute(text("DELETE FROM schema_migrations WHERE version = 3"))
        assert migrate_platform(db) == [3]
        binary = {"resourceType": "Binary", "contentType": "text/plain", "data": base64.b64encode(b"late").decode()}
        saved = db.run(lambda conn: store.save(conn, registry(), binary, "late", None, "PUT"), write=True)
        assert db.run(lambda conn: store.current(conn, "Binary", "late"), write=False) == saved
    finally:
        db.dispose()


def test_a_key_kept_from_an_earlier_read_never_opens_another_store_s_document(tmp_path: Path) -> None:
    """One vault over two stores holding the same Binary id under different keys: each reads its own."""
    vault = DocumentVault(MasterKey.from_text(MASTER))
    stores = [Database(f"sqlite:///{tmp_path / name}.sqlite3", vault) for name in ("first", "second")]
    try:
        for n, db in enumerate(stores):
            migrate_platform(db)
            binary = {"resourceType": "Binary", "contentType": "text/plain", "data": f"c3RvcmUg{n}A=="}
            with db.transaction(write=True) as conn:
                store.save(conn, registry(), binary, "same-id", None, "PUT")
        for _ in range(2):  # the second round reads with the keys kept from the first
            read = [db.run(lambda conn: store.current(conn, "Binary", "same-id"), write=False) for db in stores]
            assert [r.parsed()["data"] for r in read if r is not None] == ["c3RvcmUg0A==", "c3RvcmUg1A=="]
    finally:
        for db in stores:
            db.dispose()


def test_a_vault_keeps_the_keys_it_used_last(sqlite_db_url: str) -> None:
    """Reads keep their keys up to a bound, the least recently used dropped first: a key used lately is not
    queried again when another one comes in."""
    vault = DocumentVault(MasterKey.from_text(MASTER), kept_keys=2)
    db = Database(sqlite_db_url, vault)
    key_queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "document_keys" in statement and statement.lstrip().upper().startswith("SELECT"):
            key_queries.append(statement)

    try:
        migrate_platform(db)
        with db.transaction(write=True) as conn:
            for name in "abc":
                binary = {"resourceType": "Binary", "contentType": "text/plain", "data": "c2VjcmV0"}
                store.save(conn, registry(), binary, name, None, "PUT")
        event.listen(db._reader, "before_cursor_execute", count)

        def read(name: str) -> int:
            stored = db.run(lambda conn: store.current(conn, "Binary", name), write=False)
            assert stored is not None and stored.parsed()["data"] == "c2VjcmV0"
            return len(key_queries)

        assert [read(name) for name in ("a", "b", "a", "c", "a", "b")] == [1, 2, 2, 3, 3, 4]
    finally:
        db.dispose()
