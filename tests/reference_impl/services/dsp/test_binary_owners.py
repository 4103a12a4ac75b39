"""A Binary's patient is the subject of the document pointing to it by its attachment URL, relative (as a
transaction stores it) or absolute, both found on the search index; a document that only mentions the
Binary elsewhere, or points to another one, is not its governing document."""

from __future__ import annotations

from typing import Any

from reference_impl.fhir.searchparams import registry
from reference_impl.services.dsp.access import binary_owners
from reference_impl.store import resources as store
from reference_impl.store.database import Database


def _document(patient: str, url: str, description: str = "") -> dict[str, Any]:
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": f"Patient/{patient}"},
        "content": [{"attachment": {"contentType": "text/plain", "url": url}}],
    }
    return document | ({"description": description} if description else {})


def test_a_binary_belongs_to_the_patient_of_its_document_however_the_url_is_written(platform_db: Database) -> None:
    documents = {
        "d1": _document("p1", "Binary/b1"),
        "d2": _document("p2", "https://platform.example/fhir/Binary/b2"),
        "d3": _document("p3", "Binary/b30"),  # a longer id that only starts the same
        # Mentions Binary/b4 in its text only, and points to b5 by a URL differing in case from b5's.
        "d4": _document("p4", "https://platform.example/fhir/Binary/B5", description="see Binary/b4"),
        "d5": _document("p5", "urn:example:Binary/b6"),  # not a URL of this server's kind
    }

    def owners(conn: Any) -> dict[str, set[str]]:
        for res_id, document in documents.items():
            store.save(conn, registry(), document, res_id, None, "POST")
        binaries = ("b1", "b2", "b3", "b30", "b4", "b5", "B5", "b6")
        return {b: binary_owners(conn, {"resourceType": "Binary", "id": b}) for b in binaries}

    assert platform_db.run(owners, write=True) == {
        "b1": {"Patient/p1"},
        "b2": {"Patient/p2"},
        "b3": set(),
        "b30": {"Patient/p3"},
        "b4": set(),
        "b5": set(),
        "B5": {"Patient/p4"},
        "b6": set(),
    }
