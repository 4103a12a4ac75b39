"""Cross-referencing with PIXm (ITI-83) and its errors (mpi@8-12), on a person of the check's own: known
to two institutions of its own under one matricule."""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.mpi.support import (
    NATIONAL_ID,
    PLATFORM_ID,
    UNKNOWN_DOMAIN,
    assert_error,
    cross_references,
    fed,
    identifier_values,
    matricule,
    national,
    person,
    pix,
    register_institution,
)


class Person:
    """One person known to two institutions: their systems, local ids, matricule, platform id and records."""

    def __init__(self, client: EvidenceClient, unique: str) -> None:
        self.first, self.second = register_institution(client, unique), register_institution(client, unique)
        self.matricule = matricule()
        one = fed(client, person(unique, self.first, "X-1", national(self.matricule)), self.first, "X-1")
        two = fed(client, person(unique, self.second, "Y-2", national(self.matricule)), self.second, "Y-2")
        self.records = {f"Patient/{one.get('id')}", f"Patient/{two.get('id')}"}
        self.platform_ids = set(identifier_values(one, PLATFORM_ID))


@pytest.fixture
def someone(fhir_client: EvidenceClient, unique: str) -> Person:
    return Person(fhir_client, unique)


@pytest.mark.requirement("mpi@8")
def test_one_identifier_leads_to_the_persons_identifiers_and_records(
    fhir_client: EvidenceClient, someone: Person
) -> None:
    """$ihe-pix answers targetIdentifier parts for the other identifiers and targetId parts for every record"""
    what = f"GET Patient/$ihe-pix?sourceIdentifier={someone.first}|X-1"
    identifiers, records = cross_references(pix(fhir_client, f"{someone.first}|X-1"), what)
    expected = {(NATIONAL_ID, someone.matricule), (someone.second, "Y-2")} | {
        (PLATFORM_ID, p) for p in someone.platform_ids
    }
    missing = expected - identifiers
    assert not missing, f"{what}: the targetIdentifier parts lack {sorted(missing)} (they hold {sorted(identifiers)})"
    assert someone.records <= records, (
        f"{what}: the targetId parts name {sorted(records)}; expected both records of the person "
        f"{sorted(someone.records)}"
    )


@pytest.mark.requirement("mpi@9")
def test_target_systems_limit_the_domains(fhir_client: EvidenceClient, someone: Person) -> None:
    """with targetSystem (repeated), only identifiers of those domains are answered"""
    what = f"$ihe-pix from the matricule with targetSystem={someone.second} and targetSystem={PLATFORM_ID}"
    identifiers, _ = cross_references(
        pix(fhir_client, f"{NATIONAL_ID}|{someone.matricule}", someone.second, PLATFORM_ID), what
    )
    expected = {(someone.second, "Y-2")} | {(PLATFORM_ID, p) for p in someone.platform_ids}
    assert identifiers == expected, (
        f"{what}: answered the identifiers {sorted(identifiers)}; expected {sorted(expected)}"
    )


@pytest.mark.requirement("mpi@10")
def test_an_unknown_source_domain_is_a_bad_request(fhir_client: EvidenceClient) -> None:
    """a sourceIdentifier in a domain the platform does not know answers 400"""
    assert_error(
        pix(fhir_client, f"{UNKNOWN_DOMAIN}|12345"), 400, f"$ihe-pix with sourceIdentifier={UNKNOWN_DOMAIN}|12345"
    )


@pytest.mark.requirement("mpi@11")
def test_an_unknown_value_in_a_known_domain_is_not_found(fhir_client: EvidenceClient, someone: Person) -> None:
    """a sourceIdentifier nobody has, in a known domain, answers 404"""
    for source in (f"{someone.first}|NOBODY-1", f"{NATIONAL_ID}|{matricule()}"):
        assert_error(
            pix(fhir_client, source), 404, f"$ihe-pix with sourceIdentifier={source} (known domain, no patient)"
        )


@pytest.mark.requirement("mpi@12")
def test_an_unknown_target_domain_is_forbidden(fhir_client: EvidenceClient, someone: Person) -> None:
    """a targetSystem the platform does not know answers 403"""
    response = pix(fhir_client, f"{someone.first}|X-1", UNKNOWN_DOMAIN)
    assert_error(response, 403, f"$ihe-pix with targetSystem={UNKNOWN_DOMAIN} (a domain the platform does not know)")
