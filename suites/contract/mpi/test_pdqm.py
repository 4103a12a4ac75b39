"""Demographics query (PDQm ITI-78): the Patient search parameters and string modifiers of SPEC section 3
(mpi@13-19).

The check's people carry a family name built from its unique value, so a search scoped by that name
sees only them on a shared system; each parameter is checked by what it must let through and what it
must keep out.
"""

from __future__ import annotations

import secrets

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import Resource, ids, search
from suites.contract.mpi.support import fed, matricule, national, person, register_institution


class People:
    """Three records: Anne (the base family), Paul (a longer family, born another day, male), Zoé (the
    family in capitals, inactive)."""

    def __init__(self, client: EvidenceClient, unique: str) -> None:
        self.family = "Schmitt" + unique.rsplit("-", 1)[-1]
        self.system = register_institution(client, unique)
        self.phone = f"+352 691 {secrets.randbelow(900000) + 100000}"
        self.postal = f"{secrets.randbelow(9000) + 1000}"
        self.matricule = matricule()
        self.anne = self._feed(client, unique, "P-1", self.family, "Anne", "female", "1961-03-07", active=True)
        self.paul = self._feed(
            client, unique, "P-2", self.family + "-Weber", "Paul", "male", "1962-04-08", active=True, extra=False
        )
        self.zoe = self._feed(client, unique, "P-3", self.family.upper(), "Zoé", "female", "1961-03-07", active=False)

    def _feed(
        self,
        client: EvidenceClient,
        unique: str,
        local: str,
        family: str,
        given: str,
        gender: str,
        born: str,
        active: bool,
        extra: bool = True,
    ) -> str:
        more = [national(self.matricule)] if local == "P-1" else []
        fields: dict[str, object] = {"family": family, "given": given, "gender": gender, "birthDate": born}
        fields["active"] = active
        if extra:
            fields["telecom"] = [{"system": "phone", "value": self.phone if local == "P-1" else "+352 20 00 00"}]
            fields["address"] = [{"postalCode": self.postal if local == "P-1" else "9999", "country": "LU"}]
        resource = fed(client, person(unique, self.system, local, *more, **fields), self.system, local)
        return str(resource.get("id"))

    def named(self) -> dict[str, str]:
        return {self.anne: "Anne", self.paul: "Paul", self.zoe: "Zoé"}


@pytest.fixture
def people(fhir_client: EvidenceClient, unique: str) -> People:
    return People(fhir_client, unique)


def found(client: EvidenceClient, people: People, params: dict[str, str]) -> set[str]:
    """Which of the check's people the search ``params`` finds (others' data ignored)."""
    bundle: Resource = search(client, "Patient", {**params, "_count": "200"})
    return {people.named()[i] for i in ids(bundle) if i in people.named()}


def expect(client: EvidenceClient, people: People, params: dict[str, str], wanted: set[str]) -> None:
    got = found(client, people, params)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    assert got == wanted, (
        f"Patient?{query} found {sorted(got) or 'none'} of the check's patients; expected {sorted(wanted) or 'none'} "
        f"(families: Anne {people.family}, Paul {people.family}-Weber, Zoé {people.family.upper()})"
    )


@pytest.mark.requirement("mpi@13")
def test_family_and_given_match_the_start_ignoring_case_and_accents(
    fhir_client: EvidenceClient, people: People
) -> None:
    """family and given match names starting with the value, whatever the case and accents"""
    expect(fhir_client, people, {"family": people.family.lower()}, {"Anne", "Paul", "Zoé"})
    expect(fhir_client, people, {"family": people.family, "given": "zoe"}, {"Zoé"})
    expect(fhir_client, people, {"family": people.family, "given": "AN"}, {"Anne"})


@pytest.mark.requirement("mpi@14")
def test_exact_matches_the_whole_name_with_its_case(fhir_client: EvidenceClient, people: People) -> None:
    """family:exact matches the whole name only, case included"""
    expect(fhir_client, people, {"family:exact": people.family}, {"Anne"})
    expect(fhir_client, people, {"family:exact": people.family.upper()}, {"Zoé"})
    expect(fhir_client, people, {"family": people.family, "given:exact": "Zoe"}, set())


@pytest.mark.requirement("mpi@15")
def test_contains_matches_anywhere_in_the_name(fhir_client: EvidenceClient, people: People) -> None:
    """family:contains and given:contains match the value anywhere, ignoring case"""
    middle = people.family[3:]
    expect(fhir_client, people, {"family:contains": middle.lower()}, {"Anne", "Paul", "Zoé"})
    expect(fhir_client, people, {"family:contains": f"{middle}-WEB"}, {"Paul"})
    expect(fhir_client, people, {"family": people.family, "given:contains": "au"}, {"Paul"})


@pytest.mark.requirement("mpi@16")
def test_birthdate_and_gender(fhir_client: EvidenceClient, people: People) -> None:
    """birthdate finds those born that day, gender those of that gender"""
    expect(fhir_client, people, {"family": people.family, "birthdate": "1961-03-07"}, {"Anne", "Zoé"})
    expect(fhir_client, people, {"family": people.family, "gender": "male"}, {"Paul"})


@pytest.mark.requirement("mpi@17")
def test_identifier(fhir_client: EvidenceClient, people: People) -> None:
    """identifier=<system>|<value> finds the holders of a local id and of a matricule"""
    expect(fhir_client, people, {"identifier": f"{people.system}|P-2"}, {"Paul"})
    expect(fhir_client, people, {"identifier": f"urn:oid:1.3.182.4.4|{people.matricule}"}, {"Anne"})


@pytest.mark.requirement("mpi@18")
def test_postal_code_and_telecom(fhir_client: EvidenceClient, people: People) -> None:
    """address-postalcode and telecom find the patients with that postal code and that phone"""
    expect(fhir_client, people, {"family": people.family, "address-postalcode": people.postal}, {"Anne"})
    expect(fhir_client, people, {"telecom": people.phone}, {"Anne"})


@pytest.mark.requirement("mpi@19")
def test_active(fhir_client: EvidenceClient, people: People) -> None:
    """active=true and active=false tell current records from retired ones"""
    expect(fhir_client, people, {"family": people.family, "active": "false"}, {"Zoé"})
    expect(fhir_client, people, {"family": people.family, "active": "true"}, {"Anne", "Paul"})
