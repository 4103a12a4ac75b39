"""mCSD (ITI-90) read and search over the demo directory: the generic FHIR search serves it all,
practitioner and organization codes, role specialty, _include and _revinclude between the six types;
and the directory's two search faults change exactly what they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from reference_impl.app import create_app
from reference_impl.naming import ORGANIZATION_ID, PRACTITIONER_ID
from reference_impl.settings import Settings
from tests.reference_impl.auth.flows import practitioner_token
from tests.reference_impl.services.directory.conftest import CARDIOLOGY, FHIR_JSON, SNOMED, Platform
from tests.support.servers import sqlite_url
from tests.support.tokens import mint


def found(client: httpx.Client, path: str, params: list[tuple[str, str]], mode: str = "match") -> set[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in response.json().get("entry", [])
        if e["search"]["mode"] == mode
    }


def test_the_six_directory_types_are_read_by_id(platform: Platform) -> None:
    for path in (
        "Practitioner/prac-retired",
        "PractitionerRole/role-moved-chl",
        "Organization/org-chl",
        "Location/loc-chl-emergency",
        "HealthcareService/hcs-chl-cardiology",
        "Endpoint/ep-chl-fhir",
    ):
        response = platform.client.get(path)
        assert response.status_code == 200, response.text
        assert f"{response.json()['resourceType']}/{response.json()['id']}" == path


def test_practitioners_and_organizations_are_found_by_their_codes(platform: Platform) -> None:
    client = platform.client
    assert found(client, "Practitioner", [("identifier", f"{PRACTITIONER_ID}|200001")]) == {"Practitioner/prac-retired"}
    assert found(client, "Organization", [("identifier", f"{ORGANIZATION_ID}|1001")]) == {"Organization/org-chl"}
    retired = found(client, "Practitioner", [("active", "false")])
    assert "Practitioner/prac-retired" in retired and "Practitioner/prac-moved" not in retired


def test_roles_are_found_by_specialty_with_their_practitioners(platform: Platform) -> None:
    params = [("specialty", f"{SNOMED}|{CARDIOLOGY}"), ("_include", "PractitionerRole:practitioner"), ("_count", "200")]
    response = platform.client.get("PractitionerRole", params=params)
    entries = response.json()["entry"]
    roles = [e["resource"] for e in entries if e["search"]["mode"] == "match"]
    assert {"role-moved-chl", "role-moved-chem"} <= {r["id"] for r in roles}
    assert all(c["code"] == CARDIOLOGY for r in roles for c in r["specialty"][0]["coding"])
    practitioners = {r["practitioner"]["reference"] for r in roles}
    included = {f"Practitioner/{e['resource']['id']}" for e in entries if e["search"]["mode"] == "include"}
    assert included == practitioners
    by_code = found(platform.client, "PractitionerRole", [("specialty", CARDIOLOGY), ("_count", "200")])
    assert by_code == {f"PractitionerRole/{r['id']}" for r in roles}


def test_revinclude_gives_a_practitioners_roles_and_an_organizations_sites_services_endpoints(
    platform: Platform,
) -> None:
    client = platform.client
    roles = found(
        client,
        "Practitioner",
        [("_id", "prac-moved"), ("_revinclude", "PractitionerRole:practitioner")],
        mode="include",
    )
    assert roles == {"PractitionerRole/role-moved-chl", "PractitionerRole/role-moved-chem"}
    around = found(
        client,
        "Organization",
        [
            ("_id", "org-chl"),
            ("_revinclude", "Location:organization"),
            ("_revinclude", "HealthcareService:organization"),
            ("_revinclude", "Endpoint:organization"),
        ],
        mode="include",
    )
    assert {"Location/loc-chl", "Location/loc-chl-emergency", "HealthcareService/hcs-chl-cardiology"} <= around
    assert "Endpoint/ep-chl-fhir" in around
    assert not any(k.endswith(("-hrs", "-hrs-fhir", "-chdn")) for k in around), around


def test_locations_services_and_endpoints_are_found_by_what_links_them(platform: Platform) -> None:
    client = platform.client
    assert found(client, "Location", [("partof", "Location/loc-chl")]) == {"Location/loc-chl-emergency"}
    assert found(client, "HealthcareService", [("location", "Location/loc-hrs")]) == {
        "HealthcareService/hcs-hrs-paediatrics"
    }
    assert found(client, "Endpoint", [("organization", "Organization/org-chdn")]) == {"Endpoint/ep-chdn-fhir"}
    included = found(
        client,
        "HealthcareService",
        [("_id", "hcs-chl-cardiology"), ("_include", "HealthcareService:location")],
        "include",
    )
    assert included == {"Location/loc-chl"}


def test_a_practitioner_signed_in_searches_the_directory(platform: Platform, http: httpx.Client) -> None:
    token = practitioner_token(platform.lab, http, "doctor1", scope="user/*.rs")
    response = http.get(
        f"{platform.lab.fhir_base}/PractitionerRole",
        params={"practitioner": "Practitioner/prac-moved", "active": "true"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert [e["resource"]["id"] for e in response.json()["entry"]] == ["role-moved-chl"]


def _directory_with_faults(tmp_path: Path, faults: frozenset[str]) -> tuple[TestClient, Any]:
    app = create_app(Settings(db_url=sqlite_url(tmp_path), faults=faults))
    return TestClient(app, base_url="http://testserver/fhir/"), app


def test_the_search_faults_break_exactly_what_they_name(tmp_path: Path) -> None:
    client, app = _directory_with_faults(tmp_path, frozenset({"specialty-search-ignored", "revinclude-role-ignored"}))
    with client:
        client.headers.update({"Authorization": f"Bearer {mint(app, 'http://testserver')}", **FHIR_JSON})
        organization = client.post("Organization", json={"resourceType": "Organization", "name": "X"}).json()
        practitioner = client.post("Practitioner", json={"resourceType": "Practitioner", "active": True}).json()
        for code in (CARDIOLOGY, "394814009"):
            role = {
                "resourceType": "PractitionerRole",
                "practitioner": {"reference": f"Practitioner/{practitioner['id']}"},
                "specialty": [{"coding": [{"system": SNOMED, "code": code}]}],
            }
            assert client.post("PractitionerRole", json=role).status_code == 201
        location = {
            "resourceType": "Location",
            "managingOrganization": {"reference": f"Organization/{organization['id']}"},
        }
        assert client.post("Location", json=location).status_code == 201
        assert len(found(client, "PractitionerRole", [("specialty", CARDIOLOGY)])) == 2, "specialty ignored"
        ignored = [("_id", practitioner["id"]), ("_revinclude", "PractitionerRole:practitioner")]
        assert found(client, "Practitioner", ignored, "include") == set(), "the roles' _revinclude ignored"
        kept = [("_id", organization["id"]), ("_revinclude", "Location:organization")]
        assert len(found(client, "Organization", kept, "include")) == 1, "other _revincludes still work"
