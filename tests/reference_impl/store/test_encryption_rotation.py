"""Rotating the master key (`eqlab platform-keys rotate-master`): every key it wraps is re-wrapped in
one transaction, the sealed documents stay as they are and still read; a wrong old key changes nothing."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select

from eqlab.cli import main
from reference_impl.auth.schema import signing_keys
from reference_impl.store.database import Database
from reference_impl.store.schema import document_keys, resources
from tests.reference_impl.store.test_encryption import (
    FHIR_JSON,
    MASTER,
    OTHER_MASTER,
    created_ids,
    platform,
    provide_bundle,
    secret_bytes,
)


def stored_state(db_url: str) -> dict[str, Any]:
    db = Database(db_url)
    try:
        with db.transaction(write=False) as conn:
            return {
                "document keys": dict(conn.execute(select(document_keys.c.res_id, document_keys.c.wrapped_key)).all()),
                "signing keys": dict(conn.execute(select(signing_keys.c.kid, signing_keys.c.wrapped_jwk)).all()),
                "bodies": {
                    row[0]: row[1:]
                    for row in conn.execute(select(resources.c.res_id, resources.c.content, resources.c.sealed))
                },
            }
    finally:
        db.dispose()


def rotate(db_url: str, old_key: str, new_key: str, tmp_path: Path) -> Result:
    old_file = tmp_path / f"old-{uuid.uuid4().hex[:6]}.key"
    old_file.write_text(old_key + "\n", encoding="ascii")
    args = ["platform-keys", "rotate-master", "--db", db_url, "--old-key-file", str(old_file)]
    return CliRunner().invoke(main, args, env={"EQLAB_MASTER_KEY": new_key})


def test_rotation_rewraps_every_key_and_documents_read_under_the_new_master_key(db_url: str, tmp_path: Path) -> None:
    marker = f"eqlab-marker-{uuid.uuid4().hex}"
    with platform(db_url, MASTER) as fhir:
        ids = created_ids(fhir.post("", json=provide_bundle(marker), headers=FHIR_JSON))
    before = stored_state(db_url)

    result = rotate(db_url, MASTER, OTHER_MASTER, tmp_path)
    assert result.exit_code == 0, result.output
    assert "re-wrapped 2 document key(s) and 1 token-signing key(s)" in result.output
    after = stored_state(db_url)
    assert after["bodies"] == before["bodies"]  # not re-encrypted
    for kind in ("document keys", "signing keys"):
        assert after[kind].keys() == before[kind].keys()
        assert all(after[kind][k] != before[kind][k] for k in before[kind]), kind

    with platform(db_url, OTHER_MASTER) as fhir:  # its token is signed by the re-wrapped signing key
        raw = fhir.get("Binary/letter", headers={"Accept": "application/pdf"})
        assert raw.status_code == 200 and raw.content == secret_bytes(marker)
        document = fhir.get(f"DocumentReference/{ids['DocumentReference']}").json()
        inline = document["content"][0]["attachment"]["data"]
        assert base64.b64decode(inline) == f"inline summary {marker}".encode()

    again = rotate(db_url, MASTER, OTHER_MASTER, tmp_path)
    assert again.exit_code == 0 and "re-wrapped 0 document key(s) and 0 token-signing key(s)" in again.output


def test_a_wrong_old_key_changes_nothing_and_says_so(sqlite_db_url: str, tmp_path: Path) -> None:
    with platform(sqlite_db_url, MASTER) as fhir:
        created_ids(fhir.post("", json=provide_bundle("wrong-old-key"), headers=FHIR_JSON))
    before = stored_state(sqlite_db_url)
    stranger = base64.b64encode(b"not the master key of this store").decode()
    result = rotate(sqlite_db_url, stranger, OTHER_MASTER, tmp_path)
    assert result.exit_code == 1
    assert "unwrap with neither the old nor the new master key" in result.output and "nothing was re-wrapped" in (
        result.output
    )
    assert stored_state(sqlite_db_url) == before
