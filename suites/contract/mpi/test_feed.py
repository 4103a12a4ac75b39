"""The feed (ITI-104) and the identifiers of a Patient (mpi@1-7): checked with institutions and people of
the check's own (see support.py)."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import create, expressions, patient, shown
from suites.contract.mpi.support import (
    LOCAL_ID_PREFIX,
    PLATFORM_ID,
    SPEC_INVALID,
    SPEC_VALID,
    assert_error,
    fed,
    feed,
    identifier_values,
    matricule,
    national,
    person,
    register_institution,
)


@pytest.mark.requirement("mpi@1")
@pytest.mark.parametrize("value", SPEC_INVALID)
def test_an_invalid_matricule_is_refused_naming_the_identifier(
    fhir_client: EvidenceClient, unique: str, value: str
) -> None:
    """a Patient with an invalid matricule is refused with 422 naming the identifier"""
    response = fhir_client.post("Patient", json=patient(unique, identifier=[national(value)]))
    assert_error(response, 422, f"creating a Patient with the invalid matricule {value} (SPEC section 3)")
    named = expressions(response)
    assert any("identifier" in e for e in named), (
        f"the 422 for the invalid matricule {value} names {named or 'no element'} in issue.expression; expected "
        "the identifier, e.g. Patient.identifier[0]"
    )


@pytest.mark.requirement("mpi@2")
def test_valid_matricules_are_stored(fhir_client: EvidenceClient, unique: str) -> None:
    """Patients with the SPEC's valid matricules and with freshly built ones are stored"""
    for value in (*SPEC_VALID, matricule(), matricule()):
        response = fhir_client.post("Patient", json=patient(unique, identifier=[national(value)]))
        assert response.status_code == 201, (
            f"creating a Patient with the valid matricule {value} answered {shown(response)}; expected 201 "
            "(13 digits: YYYYMMDD, sequence, Luhn and Verhoeff digits of digits 1-11)"
        )


@pytest.mark.requirement("mpi@3")
def test_the_feed_creates_then_updates_the_same_record(fhir_client: EvidenceClient, unique: str) -> None:
    """PUT Patient?identifier=<local system>|<id> creates (201), then updates that same Patient (200)"""
    system = register_institution(fhir_client, unique)
    first = fed(fhir_client, person(unique, system, "F-1"), system, "F-1", status=201)
    again = fed(fhir_client, person(unique, system, "F-1", family="Kieffer-Weber"), system, "F-1", status=200)
    assert again.get("id") == first.get("id"), (
        f"the second feed of {system}|F-1 updated Patient/{again.get('id')}, not the record the first feed "
        f"created (Patient/{first.get('id')})"
    )


@pytest.mark.requirement("mpi@4")
def test_an_unregistered_local_system_is_refused(fhir_client: EvidenceClient, unique: str) -> None:
    """a Patient naming a local id system of no institution in the directory is refused with 422"""
    system = LOCAL_ID_PREFIX + "9" + matricule()[:12]  # a directory code no institution has
    response = feed(fhir_client, person(unique, system, "U-1"), system, "U-1")
    assert_error(response, 422, f"feeding a Patient under the unregistered local system {system}")
    named = expressions(response)
    assert any("identifier" in e for e in named), (
        f"the 422 for the unregistered system names {named or 'no element'} in issue.expression; expected the "
        "identifier, e.g. Patient.identifier[0]"
    )


@pytest.mark.requirement("mpi@5")
def test_the_directory_registers_local_systems(fhir_client: EvidenceClient, unique: str) -> None:
    """an active Organization in the directory registers its local system; an inactive one does not"""
    active = register_institution(fhir_client, unique)
    fed(fhir_client, person(unique, active, "R-1"), active, "R-1", status=201)
    inactive = register_institution(fhir_client, unique, active=False)
    response = feed(fhir_client, person(unique, inactive, "R-2"), inactive, "R-2")
    assert_error(response, 422, f"feeding a Patient under {inactive}, the system of an inactive Organization")


@pytest.mark.requirement("mpi@6")
def test_the_index_assigns_a_platform_id_and_keeps_it(fhir_client: EvidenceClient, unique: str) -> None:
    """a Patient stored without a platform id gets one; an update that leaves it out keeps it"""
    system = register_institution(fhir_client, unique)
    first = fed(fhir_client, person(unique, system, "A-1"), system, "A-1")
    assigned = identifier_values(first, PLATFORM_ID)
    assert len(assigned) == 1, (
        f"the fed Patient has {len(assigned)} platform ids ({PLATFORM_ID}): {assigned}; expected the one the "
        "patient index assigns"
    )
    updated = fed(fhir_client, person(unique, system, "A-1", given="Anna"), system, "A-1", status=200)
    assert identifier_values(updated, PLATFORM_ID) == assigned, (
        f"after an update without it, the platform ids are {identifier_values(updated, PLATFORM_ID)}; expected "
        f"the assigned {assigned} to be kept"
    )
    created = create(fhir_client, patient(unique))
    assert len(identifier_values(created, PLATFORM_ID)) == 1, "a Patient created by POST got no platform id"


@pytest.mark.requirement("mpi@7")
def test_records_of_one_person_share_the_platform_id(fhir_client: EvidenceClient, unique: str) -> None:
    """two institutions' records with one matricule stay two resources with one platform id"""
    first_system, second_system = register_institution(fhir_client, unique), register_institution(fhir_client, unique)
    shared = matricule()
    first = fed(fhir_client, person(unique, first_system, "S-1", national(shared)), first_system, "S-1")
    second = fed(fhir_client, person(unique, second_system, "S-2", national(shared)), second_system, "S-2")
    stranger = fed(fhir_client, person(unique, second_system, "S-3", national(matricule())), second_system, "S-3")
    assert first.get("id") != second.get("id"), (
        "the second institution's feed updated the first institution's record: each source's Patient stays its own"
    )
    ids = [identifier_values(r, PLATFORM_ID) for r in (first, second, stranger)]
    assert ids[0] and ids[0] == ids[1], (
        f"records with the same matricule carry the platform ids {ids[0]} and {ids[1]}; expected one and the same"
    )
    assert ids[2] != ids[0], "a record of another person (another matricule) carries the same platform id"
