"""A Binary's patient is the subject of the document pointing to it: by its relative URL on the search
index (as a transaction stores it), by an absolute URL in the documents' JSON."""

from __future__ import annotations

from typing import Any

from reference_impl.fhir.searchparams import registry
from reference_impl.services.dsp.access import binary_owners
from reference_impl.store import resources as store
from reference_impl.store.database import Database


def _document(patient: str, url: str) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": f"Patient/{patient}"},
        "content": [{"attachment": {"contentType": "text/plain", "url": url}}],
    }


def test_a_binary_belongs_to_the_patient_of_its_document_however_the_url_is_written(platform_db: Database) -> None:
    documents = {
        "d1": _document("p1", "Binary/b1"),
        "d2": _document("p2", "https://platform.example/fhir/Binary/b2"),
        "d3": _document("p3", "Binary/b30"),  # a longer id that only starts the same
    }

    def owners(conn: Any) -> dict[str, set[str]]:
        for res_id, document in documents.items():
            store.save(conn, registry(), document, res_id, None, "POST")
        binaries = ("b1", "b2", "b3", "b30")
        return {b: binary_owners(conn, {"resourceType": "Binary", "id": b}) for b in binaries}

    assert platform_db.run(owners, write=True) == {
        "b1": {"Patient/p1"},
        "b2": {"Patient/p2"},
        "b3": set(),
        "b30": {"Patient/p3"},
    }
