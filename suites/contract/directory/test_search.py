"""mCSD (ITI-90) read and search of the directory's resources, and _include/_revinclude between them
(dir@1-7), on a directory each check makes for itself (support.Directory).

Each search is judged by what it must return and what it must keep out: a server that ignores a
parameter returns too much, one that mismatches returns too little.
"""

from __future__ import annotations

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.directory.support import (
    CARDIOLOGY,
    GENERAL_PRACTICE,
    ORGANIZATION_ID,
    PRACTITIONER_ID,
    SNOMED,
    Directory,
    code_of,
    key,
)
from suites.contract.fhir_toolkit import read


def expect(found: set[str], wanted: set[str], what: str) -> None:
    assert found == wanted, (
        f"{what} returned {sorted(found) or 'nothing'} of the check's directory; expected exactly {sorted(wanted)}"
    )


@pytest.mark.requirement("dir@1")
def test_directory_resources_are_read_by_id(fhir_client: EvidenceClient, unique: str) -> None:
    """each of the six mCSD resource types, created, is read back by id"""
    made = Directory.create(fhir_client, unique)
    for resource in (made.practitioner, made.role, made.organization, made.location, made.service, made.endpoint):
        back = read(fhir_client, resource["resourceType"], resource["id"])
        assert back.get("resourceType") == resource["resourceType"] and back.get("id") == resource["id"], (
            f"GET {key(resource)} answered a {back.get('resourceType')} with id {back.get('id')!r}"
        )
        assert back.get("identifier") == resource.get("identifier"), (
            f"GET {key(resource)} answered identifiers {back.get('identifier')}; stored {resource.get('identifier')}"
        )


@pytest.mark.requirement("dir@2")
def test_practitioners_are_found_by_code_name_and_active(fhir_client: EvidenceClient, unique: str) -> None:
    """Practitioner?identifier=<practitioner code>, ?name=, ?active= return exactly the matching practitioners"""
    made = Directory.create(fhir_client, unique)
    active, inactive = key(made.practitioner), key(made.inactive_practitioner)
    by_code = f"{PRACTITIONER_ID}|{code_of(made.practitioner, PRACTITIONER_ID)}"
    expect(
        made.found(fhir_client, "Practitioner", ("identifier", by_code)), {active}, f"Practitioner?identifier={by_code}"
    )
    expect(made.found(fhir_client, "Practitioner", ("name", made.family)), {active, inactive}, "Practitioner?name=")
    expect(made.found(fhir_client, "Practitioner", ("active", "true")), {active}, "Practitioner?active=true")
    expect(made.found(fhir_client, "Practitioner", ("active", "false")), {inactive}, "Practitioner?active=false")


@pytest.mark.requirement("dir@3")
def test_roles_are_found_by_specialty(fhir_client: EvidenceClient, unique: str) -> None:
    """PractitionerRole?specialty=system|code and ?specialty=code return exactly the roles of that specialty"""
    made = Directory.create(fhir_client, unique)
    cardiology, general = {key(made.role)}, {key(made.other_role), key(made.inactive_role)}
    for value, wanted in (
        (f"{SNOMED}|{CARDIOLOGY}", cardiology),
        (CARDIOLOGY, cardiology),
        (f"{SNOMED}|{GENERAL_PRACTICE}", general),
    ):
        found = made.found(fhir_client, "PractitionerRole", ("specialty", value))
        expect(found, wanted, f"PractitionerRole?specialty={value}")


@pytest.mark.requirement("dir@3")
def test_roles_are_found_by_practitioner_organization_and_active(fhir_client: EvidenceClient, unique: str) -> None:
    """PractitionerRole?practitioner=, ?organization=, ?active= narrow the roles"""
    made = Directory.create(fhir_client, unique)
    role, other, inactive = key(made.role), key(made.other_role), key(made.inactive_role)
    practitioner, organization = key(made.practitioner), key(made.organization)
    expect(
        made.found(fhir_client, "PractitionerRole", ("practitioner", practitioner)),
        {role, inactive},
        f"PractitionerRole?practitioner={practitioner}",
    )
    expect(
        made.found(fhir_client, "PractitionerRole", ("organization", organization)),
        {role},
        f"PractitionerRole?organization={organization}",
    )
    expect(
        made.found(fhir_client, "PractitionerRole", ("active", "true")), {role, other}, "PractitionerRole?active=true"
    )


@pytest.mark.requirement("dir@4")
def test_organizations_are_found_by_code_name_and_active(fhir_client: EvidenceClient, unique: str) -> None:
    """Organization?identifier=<organization code>, ?name=, ?active= return exactly the matching organizations"""
    made = Directory.create(fhir_client, unique)
    active, inactive = key(made.organization), key(made.inactive_organization)
    by_code = f"{ORGANIZATION_ID}|{code_of(made.organization, ORGANIZATION_ID)}"
    expect(
        made.found(fhir_client, "Organization", ("identifier", by_code)), {active}, f"Organization?identifier={by_code}"
    )
    expect(made.found(fhir_client, "Organization", ("name", made.family)), {active, inactive}, "Organization?name=")
    expect(made.found(fhir_client, "Organization", ("active", "false")), {inactive}, "Organization?active=false")


@pytest.mark.requirement("dir@5")
def test_locations_services_and_endpoints_are_found_by_organization(fhir_client: EvidenceClient, unique: str) -> None:
    """Location, HealthcareService and Endpoint searches by organization, name, location and status"""
    made = Directory.create(fhir_client, unique)
    organization, closed = key(made.organization), key(made.inactive_organization)
    location, service, endpoint = key(made.location), key(made.service), key(made.endpoint)
    for path, params, wanted in (
        ("Location", ("organization", organization), {location}),
        ("Location", ("organization", closed), set()),
        ("Location", ("name", f"{made.family} Site"), {location}),
        ("HealthcareService", ("organization", organization), {service}),
        ("HealthcareService", ("location", location), {service}),
        ("HealthcareService", ("organization", closed), set()),
        ("Endpoint", ("organization", organization), {endpoint}),
        ("Endpoint", ("status", "active"), {endpoint}),
        ("Endpoint", ("status", "off"), set()),
    ):
        expect(made.found(fhir_client, path, params), wanted, f"{path}?{params[0]}={params[1]}")


@pytest.mark.requirement("dir@6")
def test_include_adds_the_referenced_directory_resources(fhir_client: EvidenceClient, unique: str) -> None:
    """PractitionerRole:practitioner/organization, Location:organization, HealthcareService:location and
    Organization:endpoint add what the matches reference"""
    made = Directory.create(fhir_client, unique)
    role_includes = made.found(
        fhir_client,
        "PractitionerRole",
        ("_id", made.role["id"]),
        ("_include", "PractitionerRole:practitioner"),
        ("_include", "PractitionerRole:organization"),
        mode="include",
    )
    wanted = {key(made.practitioner), key(made.organization)}
    expect(role_includes, wanted, "PractitionerRole?_include=PractitionerRole:practitioner&_include=...:organization")
    for path, include, wanted in (
        ("Location", "Location:organization", {key(made.organization)}),
        ("HealthcareService", "HealthcareService:location", {key(made.location)}),
    ):
        found = made.found(fhir_client, path, ("_include", include), mode="include")
        expect(found, wanted, f"{path}?_include={include}")


@pytest.mark.requirement("dir@7")
def test_revinclude_adds_a_practitioners_roles(fhir_client: EvidenceClient, unique: str) -> None:
    """Practitioner?_revinclude=PractitionerRole:practitioner adds each practitioner's roles"""
    made = Directory.create(fhir_client, unique)
    found = made.found(
        fhir_client,
        "Practitioner",
        ("_id", made.practitioner["id"]),
        ("_revinclude", "PractitionerRole:practitioner"),
        mode="include",
    )
    expect(found, {key(made.role), key(made.inactive_role)}, "Practitioner?_revinclude=PractitionerRole:practitioner")


@pytest.mark.requirement("dir@7")
def test_revinclude_adds_an_organizations_sites_services_and_endpoints(
    fhir_client: EvidenceClient, unique: str
) -> None:
    """Organization?_revinclude=Location:organization (and HealthcareService:, Endpoint:) adds them"""
    made = Directory.create(fhir_client, unique)
    for include, wanted in (
        ("Location:organization", key(made.location)),
        ("HealthcareService:organization", key(made.service)),
        ("Endpoint:organization", key(made.endpoint)),
    ):
        found = made.found(
            fhir_client, "Organization", ("_id", made.organization["id"]), ("_revinclude", include), mode="include"
        )
        expect(found, {wanted}, f"Organization?_revinclude={include}")
