"""Find (ITI-67): dsp@9-14, over documents the check provides for a patient of its own."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.dsp.support import (
    DSP_TYPES,
    LOINC,
    NATIONAL_ID,
    PLATFORM_ID,
    Provide,
    document,
    identifier_of,
    new_patient,
    ref,
)
from suites.contract.fhir_toolkit import Resource, create, entries, ids, pages, search, tag

PRACTITIONER_ID = "urn:oid:1.3.182.3.1"
LAB = {"coding": [{"system": LOINC, "code": "26436-6"}]}


def provided(client: EvidenceClient, unique: str, patient: Resource, *docs: Resource) -> list[str]:
    """Provide ``docs`` for ``patient``; the ids of the stored documents, in order."""
    provide = Provide(unique, ref(patient))
    for doc in docs:
        provide.add(doc)
    return [key.split("/")[1] for key in provide.stored(client)[2::2]]


def found(client: EvidenceClient, params: dict[str, str]) -> set[str]:
    return set(ids(search(client, "DocumentReference", params)))


@pytest.mark.requirement("dsp@9")
def test_find_current_leaves_out_superseded_documents(fhir_client: EvidenceClient, unique: str) -> None:
    """status=current finds the patient's current documents only; status=superseded the others"""
    patient, other = new_patient(fhir_client, unique), new_patient(fhir_client, unique)
    current, old = provided(
        fhir_client, unique, patient, document(unique, ref(patient)), document(unique, ref(patient), "MEDREPORT")
    )
    provide = Provide(unique, ref(patient))
    replaces = [{"code": "replaces", "target": {"reference": f"DocumentReference/{old}"}}]
    provide.add(document(unique, ref(patient), "MEDREPORT", relatesTo=replaces))
    replacement = provide.stored(fhir_client)[2].split("/")[1]
    provided(fhir_client, unique, other, document(unique, ref(other)))
    shown_current = found(fhir_client, {"patient": patient["id"], "status": "current"})
    assert shown_current == {current, replacement}, (
        f"DocumentReference?patient={patient['id']}&status=current found {sorted(shown_current)}; expected the "
        f"current documents {sorted({current, replacement})} only (DocumentReference/{old} is superseded)"
    )
    superseded = found(fhir_client, {"patient": patient["id"], "status": "superseded"})
    assert superseded == {old}, f"status=superseded found {sorted(superseded)}; expected [{old}]"


@pytest.mark.requirement("dsp@10")
def test_find_by_type(fhir_client: EvidenceClient, unique: str) -> None:
    """type=urn:oid:1.3.182.6.1|<code> finds the documents of that type; a comma ORs types"""
    patient = new_patient(fhir_client, unique)
    discharge, lab, cert = provided(
        fhir_client,
        unique,
        patient,
        *(document(unique, ref(patient), c) for c in ("DISCHARGE", "LABRESULT", "CERTIFICATE")),
    )
    one = found(fhir_client, {"patient": patient["id"], "type": f"{DSP_TYPES}|LABRESULT"})
    assert one == {lab}, f"type={DSP_TYPES}|LABRESULT found {sorted(one)}; expected [{lab}]"
    either = found(fhir_client, {"patient": patient["id"], "type": f"{DSP_TYPES}|DISCHARGE,{DSP_TYPES}|CERTIFICATE"})
    assert either == {discharge, cert}, (
        f"type=DISCHARGE,CERTIFICATE found {sorted(either)}; expected {sorted({discharge, cert})}"
    )


@pytest.mark.requirement("dsp@11")
def test_find_by_date(fhir_client: EvidenceClient, unique: str) -> None:
    """date with ge/le/gt/lt prefixes and a year's precision filters on DocumentReference.date"""
    patient = new_patient(fhir_client, unique)
    older, newer = provided(
        fhir_client,
        unique,
        patient,
        document(unique, ref(patient), date="2023-06-01T08:00:00Z"),
        document(unique, ref(patient), date="2025-02-10T08:00:00Z"),
    )
    for value, expected in (
        ("ge2024-01-01", {newer}),
        ("lt2024-01-01", {older}),
        ("le2025-02-10", {older, newer}),
        ("gt2025-02-10", set()),
        ("2023", {older}),
    ):
        answer = found(fhir_client, {"patient": patient["id"], "date": value})
        assert answer == expected, f"date={value} found {sorted(answer)}; expected {sorted(expected)}"


@pytest.mark.requirement("dsp@12")
@pytest.mark.parametrize("system", [PLATFORM_ID, NATIONAL_ID])
def test_find_by_patient_identifier(fhir_client: EvidenceClient, unique: str, system: str) -> None:
    """patient.identifier=<platform id or matricule> finds that person's documents"""
    patient = new_patient(fhir_client, unique)
    (doc,) = provided(fhir_client, unique, patient, document(unique, ref(patient)))
    value = f"{system}|{identifier_of(patient, system)}"
    answer = found(fhir_client, {"patient.identifier": value})
    assert answer == {doc}, f"DocumentReference?patient.identifier={value} found {sorted(answer)}; expected [{doc}]"


@pytest.mark.requirement("dsp@13")
def test_find_by_category_and_author(fhir_client: EvidenceClient, unique: str) -> None:
    """category=<system>|<code> and author=<reference> find the documents of that category and author"""
    patient = new_patient(fhir_client, unique)
    author = create(
        fhir_client,
        {
            "resourceType": "Practitioner",
            "identifier": [tag(unique), {"system": PRACTITIONER_ID, "value": unique}],
            "active": True,
            "name": [{"family": "Weber", "given": ["Marc"]}],
        },
    )
    lab, other = provided(
        fhir_client,
        unique,
        patient,
        document(unique, ref(patient), "LABRESULT", category=[LAB], author=[ref(author)]),
        document(unique, ref(patient), "DISCHARGE"),
    )
    by_category = found(fhir_client, {"patient": patient["id"], "category": f"{LOINC}|26436-6"})
    assert by_category == {lab}, f"category={LOINC}|26436-6 found {sorted(by_category)}; expected [{lab}]"
    by_author = found(fhir_client, {"patient": patient["id"], "author": f"Practitioner/{author['id']}"})
    assert by_author == {lab}, (
        f"author=Practitioner/{author['id']} found {sorted(by_author)}; expected [{lab}] (not {other})"
    )


@pytest.mark.requirement("dsp@14")
def test_find_sorted_newest_first_and_paged(fhir_client: EvidenceClient, unique: str) -> None:
    """_sort=-date lists the newest first; _count pages them and the next links reach each exactly once"""
    patient = new_patient(fhir_client, unique)
    dates = [
        "2024-01-05T08:00:00Z",
        "2025-04-01T08:00:00Z",
        "2023-09-12T08:00:00Z",
        "2024-11-30T08:00:00Z",
        "2025-01-01T08:00:00Z",
    ]
    stored = provided(fhir_client, unique, patient, *(document(unique, ref(patient), date=d) for d in dates))
    newest_first = [doc for _, doc in sorted(zip(dates, stored, strict=True), reverse=True)]
    first = search(fhir_client, "DocumentReference", {"patient": patient["id"], "_sort": "-date", "_count": "2"})
    assert first.get("total") == len(stored), f"the first page's total is {first.get('total')}; expected {len(stored)}"
    walked = [doc for page in pages(fhir_client, first, "the sorted find") for doc in ids(page)]
    assert walked == newest_first, f"_sort=-date with _count=2 listed {walked} over its pages; expected {newest_first}"
    assert all(len(entries(page)) <= 2 for page in pages(fhir_client, first, "the sorted find")), (
        "a page held more than _count=2 entries"
    )
