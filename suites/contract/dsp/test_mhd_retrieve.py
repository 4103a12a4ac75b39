"""Retrieve (ITI-68): dsp@15-16, the documents' bytes as the check provided them."""

from __future__ import annotations

import base64

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.dsp.support import PDF, Provide, document, new_patient, ref
from suites.contract.fhir_toolkit import body_of, media_type, shown

LETTER = "Compte rendu d'hospitalisation\nSéjour du 3 au 7 mars : évolution favorable.\n".encode()


def provided_binaries(client: EvidenceClient, unique: str) -> dict[str, tuple[str, bytes]]:
    """Provide a PDF and a text document; Binary id -> (media type, bytes)."""
    patient = new_patient(client, unique)
    provide = Provide(unique, ref(patient))
    provide.add(document(unique, ref(patient), "IMAGING"), PDF, "application/pdf")
    provide.add(document(unique, ref(patient), "DISCHARGE"), LETTER, "text/plain")
    binaries = provide.stored(client)[1::2]
    return {binaries[0].split("/")[1]: ("application/pdf", PDF), binaries[1].split("/")[1]: ("text/plain", LETTER)}


@pytest.mark.requirement("dsp@15")
def test_retrieve_returns_the_raw_document_in_its_media_type(fhir_client: EvidenceClient, unique: str) -> None:
    """GET Binary/<id> with Accept the document's media type gives its bytes with that Content-Type"""
    for binary_id, (media, content) in provided_binaries(fhir_client, unique).items():
        response = fhir_client.get(f"Binary/{binary_id}", headers={"Accept": media})
        assert response.status_code == 200, f"GET Binary/{binary_id} (Accept {media}) answered {shown(response)}"
        assert media_type(response) == media, (
            f"GET Binary/{binary_id} (Accept {media}) answered Content-Type {response.headers.get('content-type')!r}; "
            f"expected {media}, the document's media type"
        )
        assert response.content == content, f"GET Binary/{binary_id} returned other bytes than the provided document"


@pytest.mark.requirement("dsp@16")
def test_retrieve_as_fhir_json_returns_the_binary_resource(fhir_client: EvidenceClient, unique: str) -> None:
    """GET Binary/<id> with Accept application/fhir+json gives the Binary resource: contentType and data"""
    for binary_id, (media, content) in provided_binaries(fhir_client, unique).items():
        response = fhir_client.get(f"Binary/{binary_id}", headers={"Accept": "application/fhir+json"})
        assert response.status_code == 200, f"GET Binary/{binary_id} as FHIR JSON answered {shown(response)}"
        binary = body_of(response, f"GET Binary/{binary_id}")
        assert binary.get("resourceType") == "Binary" and binary.get("contentType") == media, (
            f"GET Binary/{binary_id} as FHIR JSON gave a {binary.get('resourceType')} with contentType "
            f"{binary.get('contentType')!r}; expected a Binary of {media}"
        )
        assert base64.b64decode(str(binary.get("data", ""))) == content, (
            f"Binary/{binary_id}.data is not the provided bytes"
        )
