"""The feed (ITI-104): conditional update by local id, registered systems only, one platform id per person."""

from __future__ import annotations

import uuid

from reference_impl.naming import LOCAL_ID_PREFIX, PLATFORM_ID
from tests.reference_impl.services.mpi.conftest import Platform, national, person, values

MATRICULE = "1971110258749"  # SPEC section 3: valid


def test_a_feed_creates_then_updates_the_same_record_and_keeps_its_platform_id(platform: Platform) -> None:
    system, local = platform.institution(), uuid.uuid4().hex[:10]
    created = platform.feed(person(system, local), system, local)
    assert created.status_code == 201, created.text
    [assigned] = values(created.json(), PLATFORM_ID)
    updated = platform.feed(person(system, local, family="Kieffer-Reuter"), system, local)
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"
    assert values(updated.json(), PLATFORM_ID) == [assigned], "an update without the platform id keeps it"


def test_an_unregistered_or_inactive_institution_system_is_refused_naming_the_identifier(platform: Platform) -> None:
    unknown = LOCAL_ID_PREFIX + "999999999999999"
    inactive = platform.institution(active=False)
    for system in (unknown, inactive, LOCAL_ID_PREFIX + "CHL"):
        refused = platform.feed(person(system, "A-1"), system, "A-1")
        assert refused.status_code == 422, refused.text
        issue = refused.json()["issue"][0]
        assert issue["expression"] == ["Patient.identifier[0]"] and system in issue["diagnostics"]
    assert platform.client.get("Patient", params={"identifier": f"{unknown}|A-1"}).json()["total"] == 0


def test_an_invalid_matricule_is_refused_naming_the_identifier(platform: Platform) -> None:
    system = platform.institution()
    bad = person(system, "B-1", identifier=[national("1893120105733")])
    refused = platform.feed(bad, system, "B-1")
    assert refused.status_code == 422, refused.text
    assert refused.json()["issue"][0]["expression"] == ["Patient.identifier[1]"]
    assert "Verhoeff" in refused.json()["issue"][0]["diagnostics"]


def test_records_of_one_person_stay_apart_and_share_the_platform_id(platform: Platform) -> None:
    first_system, second_system = platform.institution(), platform.institution()
    matricule = "1994092874550"
    first = platform.feed(person(first_system, "P-1", identifier=[national(matricule)]), first_system, "P-1")
    second = platform.feed(person(second_system, "Q-7", identifier=[national(matricule)]), second_system, "Q-7")
    other = platform.feed(person(second_system, "Q-8"), second_system, "Q-8")
    assert first.status_code == second.status_code == other.status_code == 201
    assert first.json()["id"] != second.json()["id"], "each institution's record stays its own resource"
    assert values(first.json(), PLATFORM_ID) == values(second.json(), PLATFORM_ID)
    assert values(other.json(), PLATFORM_ID) != values(first.json(), PLATFORM_ID)


def test_a_platform_id_the_client_sends_is_kept(platform: Platform) -> None:
    system = platform.institution()
    given = str(uuid.uuid4())
    fed = platform.feed(person(system, "K-1", identifier=[{"system": PLATFORM_ID, "value": given}]), system, "K-1")
    assert values(fed.json(), PLATFORM_ID) == [given]


def test_a_transaction_feeding_two_records_of_one_person_links_them(platform: Platform) -> None:
    system = platform.institution()
    entries = [
        {
            "resource": person(system, local, identifier=[national(MATRICULE)]),
            "request": {"method": "PUT", "url": f"Patient?identifier={system}|{local}"},
        }
        for local in ("T-1", "T-2")
    ]
    answer = platform.client.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert answer.status_code == 200, answer.text
    fed = platform.client.get("Patient", params={"identifier": f"{system}|T-1,{system}|T-2"}).json()["entry"]
    assert len({values(e["resource"], PLATFORM_ID)[0] for e in fed}) == 1
