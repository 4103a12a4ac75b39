"""Replacing a document: dsp@17-18, on documents of the check's own patients."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.dsp.support import Provide, assert_refused_naming, document, new_patient, ref
from suites.contract.fhir_toolkit import Resource, entries, ids, read, search


def replacing(unique: str, patient: Resource, target: str) -> Provide:
    relation = [{"code": "replaces", "target": {"reference": f"DocumentReference/{target}"}}]
    provide = Provide(unique, ref(patient))
    provide.add(document(unique, ref(patient), "PATSUMMARY", relatesTo=relation))
    return provide


def provided_one(client: EvidenceClient, unique: str, patient: Resource) -> str:
    provide = Provide(unique, ref(patient))
    provide.add(document(unique, ref(patient), "PATSUMMARY"))
    return provide.stored(client)[2].split("/")[1]


@pytest.mark.requirement("dsp@17")
def test_a_replacement_supersedes_the_old_document(fhir_client: EvidenceClient, unique: str) -> None:
    """a document that replaces another is stored and the other becomes superseded"""
    patient = new_patient(fhir_client, unique)
    old = provided_one(fhir_client, unique, patient)
    new = replacing(unique, patient, old).stored(fhir_client, "the replacing provide")[2].split("/")[1]
    status = read(fhir_client, "DocumentReference", old).get("status")
    assert status == "superseded", (
        f"DocumentReference/{old}, replaced by DocumentReference/{new}, is {status!r}; expected superseded"
    )
    current = set(ids(search(fhir_client, "DocumentReference", {"patient": patient["id"], "status": "current"})))
    assert current == {new}, f"status=current finds {sorted(current)} after the replacement; expected [{new}]"


@pytest.mark.requirement("dsp@18")
def test_a_replacement_of_no_current_document_of_the_patient_is_refused(
    fhir_client: EvidenceClient, unique: str
) -> None:
    """replacing an unknown, superseded or other patient's document is refused with 422 and stores nothing"""
    patient, other = new_patient(fhir_client, unique), new_patient(fhir_client, unique)
    old = provided_one(fhir_client, unique, patient)
    replacing(unique, patient, old).stored(fhir_client, "the first replacement")
    others = provided_one(fhir_client, unique, other)
    for target, what in (
        (f"{unique}-nothing", "a replacement of an unknown document"),
        (old, "a second replacement of an already superseded document"),
        (others, "a replacement of another patient's document"),
    ):
        assert_refused_naming(replacing(unique, patient, target).send(fhir_client), "relatesTo", what)
    kept = entries(search(fhir_client, "DocumentReference", {"patient": patient["id"]}))
    assert len(kept) == 2, f"after the refused replacements the patient has {len(kept)} documents; expected 2"
