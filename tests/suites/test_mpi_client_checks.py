"""The patient index's client checks (suites/client/mpi) on hand-made journals: each passes what a
well-behaved identity source or consumer sends, fails what breaks its rule citing the request that
proves it, and skips a run with nothing to judge."""

from __future__ import annotations

from typing import Any

import pytest

from suites.client.mpi import test_identity_consumer as consumer
from suites.client.mpi import test_identity_source as source
from tests.support.journals import TARGET, fails, passes, request, run_of

HRS = "urn:oid:1.3.182.2.4.2.1004"
CHL = "urn:oid:1.3.182.2.4.2.1001"
MATRICULE = "1988062135286"


def patient(local: tuple[str, str] = (HRS, "HRS-1"), institution: str = "1004", **changes: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Patient",
        "identifier": [
            {"system": local[0], "value": local[1]},
            {"system": "urn:oid:1.3.182.4.4", "value": MATRICULE},
        ],
        "managingOrganization": {"identifier": {"system": "urn:oid:1.3.182.3.2", "value": institution}},
        "name": [{"family": "Kremer", "given": ["Anne"]}],
        "gender": "female",
        "birthDate": "1988-06-21",
    }
    resource.update(changes)
    return {k: v for k, v in resource.items() if v is not None}


def feed(
    resource: dict[str, Any] | None = None, key: str = f"{HRS}|HRS-1", status: int = 201, **fields: Any
) -> dict[str, Any]:
    return request("PUT", "Patient", f"identifier={key}", json_body=resource or patient(), status=status, **fields)


def test_a_clean_identity_source_passes_every_source_check() -> None:
    run = run_of(
        feed(),
        feed(patient(telecom=[{"system": "phone", "value": "1"}]), status=200),
        feed(patient(("urn:oid:1.3.182.2.4.2.1002", "CHDN-7"), "1002"), "urn:oid:1.3.182.2.4.2.1002|CHDN-7"),
    )
    for check in (
        source.test_feeds_are_conditional_updates_on_the_institutions_own_local_system,
        source.test_every_matricule_sent_is_valid,
        source.test_every_patient_fed_carries_name_birth_date_and_gender,
        source.test_a_person_already_fed_is_updated_not_created_again,
        source.test_the_platform_id_is_never_sent_as_the_sources_own,
    ):
        assert passes(check, run)


@pytest.mark.parametrize(
    ("write", "why"),
    [
        (request("POST", "Patient", json_body=patient()), "a create (POST Patient), not the ITI-104"),
        (feed(key=f"urn:oid:1.3.182.4.4|{MATRICULE}"), "keyed on urn:oid:1.3.182.4.4, not on a local id system"),
        (feed(key=f"{CHL}|HRS-1"), "keyed on institution 1001's local system"),
        (feed(patient(managingOrganization=None)), "names no managingOrganization"),
        (feed(key=f"{HRS}|HRS-2"), f"does not carry the identifier {HRS}|HRS-2"),
        (request("PUT", "Patient", "identifier=a&family=b", json_body=patient()), "not one identifier="),
    ],
)
def test_a_feed_off_the_institutions_own_local_system_fails(write: dict[str, Any], why: str) -> None:
    assert fails(
        source.test_feeds_are_conditional_updates_on_the_institutions_own_local_system, run_of(write), why, "#1 "
    )


def test_a_feed_inside_a_transaction_is_judged_like_one_alone() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Observation"}},
            {"resource": patient(), "request": {"method": "PUT", "url": f"Patient?identifier={CHL}|HRS-1"}},
        ],
    }
    assert fails(
        source.test_feeds_are_conditional_updates_on_the_institutions_own_local_system,
        run_of(request("POST", "", json_body=bundle)),
        "(Bundle entry 1): #1 POST /fhir",
    )


@pytest.mark.parametrize("value", ["1988062135287", "1988062135276", "1988132135286", "198806213528"])
def test_an_invalid_matricule_fails(value: str) -> None:
    resource = patient()
    resource["identifier"][1]["value"] = value
    assert fails(source.test_every_matricule_sent_is_valid, run_of(feed(resource)), f"invalid matricule {value}")


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"birthDate": None}, "no birthDate"),
        ({"gender": None}, "no gender"),
        ({"name": [{"family": "Kremer"}]}, "no name (family and given)"),
    ],
)
def test_a_patient_without_its_demographics_fails(changes: dict[str, Any], missing: str) -> None:
    check = source.test_every_patient_fed_carries_name_birth_date_and_gender
    assert fails(check, run_of(feed(patient(**changes))), missing)


def test_a_person_created_again_fails_naming_the_first_feed() -> None:
    run = run_of(feed(), request("POST", "Patient", json_body=patient(), status=201), scenario="feed-update")
    assert fails(
        source.test_a_person_already_fed_is_updated_not_created_again, run, "fed before by #1 PUT", ": #2 POST"
    )


def test_a_create_after_a_refused_feed_or_a_conditional_create_is_no_duplicate() -> None:
    refused_then_created = run_of(feed(status=422), request("POST", "Patient", json_body=patient(), status=201))
    assert passes(source.test_a_person_already_fed_is_updated_not_created_again, refused_then_created)
    conditional = request("POST", "Patient", json_body=patient(), headers={"if-none-exist": "identifier=x"})
    assert passes(source.test_a_person_already_fed_is_updated_not_created_again, run_of(feed(), conditional))


def test_a_platform_id_is_sent_only_once_the_platform_answered_it() -> None:
    platform = {"system": "urn:oid:1.3.182.2.4.2", "value": "p-1"}
    with_platform_id = patient()
    with_platform_id["identifier"].append(platform)
    check = source.test_the_platform_id_is_never_sent_as_the_sources_own
    assert fails(check, run_of(feed(with_platform_id)), "platform id p-1 sent, never answered")
    assert passes(check, run_of(feed(response_json=with_platform_id), feed(with_platform_id, status=200)))
    assert fails(check, run_of(feed(key="urn:oid:1.3.182.2.4.2|p-1")), "a feed keyed on the platform id")


def test_a_clean_consumer_passes_every_consumer_check() -> None:
    merged = {
        "resourceType": "Patient",
        "id": "old",
        "active": False,
        "link": [{"other": {"reference": "Patient/new"}, "type": "replaced-by"}],
    }
    page = {"resourceType": "Bundle", "link": [{"relation": "next", "url": "http://h/fhir/Patient?family=A&_offset=2"}]}
    run = run_of(
        request("GET", "Patient/$ihe-pix", f"sourceIdentifier={CHL}|CHL-1&targetSystem={HRS}"),
        request("GET", "Patient", "family:exact=A&given=B&birthdate=2000-01-01", response_json=page),
        request("GET", "Patient", "family=A&_offset=2&_count=2"),
        request("GET", "Patient/old", response_json=merged),
        request("GET", "Patient/new"),
        request("GET", "Observation", "subject=Patient/new"),
    )
    for check in (
        consumer.test_pixm_queries_name_one_source_identifier_as_system_and_value,
        consumer.test_pdqm_searches_use_pdqm_parameters_and_modifiers,
        consumer.test_every_patient_search_names_the_person_sought,
        consumer.test_a_merged_patient_is_left_for_the_one_that_replaces_it,
    ):
        assert passes(check, run)


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("sourceIdentifier=CHL-1", "is not <system>|<value>"),
        (f"sourceIdentifier={CHL}|", "is not <system>|<value>"),
        ("sourceIdentifier=1001|CHL-1", "is not <system>|<value>"),
        (f"sourceIdentifier={CHL}|1&sourceIdentifier={HRS}|2", "2 sourceIdentifier parameters"),
        (f"sourceIdentifier={CHL}|1&targetSystem=1004", "targetSystem ['1004'] is not an absolute URI"),
        (f"sourceIdentifier={CHL}|1&patient=x", "parameters ['patient']"),
    ],
)
def test_a_malformed_pixm_query_fails(query: str, why: str) -> None:
    check = consumer.test_pixm_queries_name_one_source_identifier_as_system_and_value
    assert fails(check, run_of(request("GET", "Patient/$ihe-pix", query)), why, "#1 GET /fhir/Patient/$ihe-pix")


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("family=A&birthDate=2000-01-01", "unknown parameter birthDate"),
        ("family:fuzzy=A", "modifier family:fuzzy"),
        ("family=A&gender:exact=male", "modifier gender:exact"),
        ("family=", "empty family"),
        ("family=A&_offset=10", "unknown parameter _offset"),  # a paging parameter no link of the platform gave
    ],
)
def test_a_search_outside_pdqm_fails(query: str, why: str) -> None:
    assert fails(
        consumer.test_pdqm_searches_use_pdqm_parameters_and_modifiers, run_of(request("GET", "Patient", query)), why
    )


@pytest.mark.parametrize("query", ["", "_count=1000", "gender=female&birthdate=1983-08-12", "family=&active=true"])
def test_a_fishing_search_fails(query: str) -> None:
    check = consumer.test_every_patient_search_names_the_person_sought
    assert fails(check, run_of(request("GET", "Patient", query)), "a search for anybody", "#1 GET /fhir/Patient")


def test_a_search_by_post_is_judged_by_its_form() -> None:
    check = consumer.test_every_patient_search_names_the_person_sought
    assert passes(check, run_of(request("POST", "Patient/_search", form=[("identifier", f"{CHL}|1")])))
    assert fails(check, run_of(request("POST", "Patient/_search", form=[("gender", "male")])), "gender=male")


def test_a_merged_patient_used_again_or_never_followed_fails() -> None:
    merged = {
        "resourceType": "Patient",
        "id": "old",
        "active": False,
        "link": [{"other": {"reference": "http://h/fhir/Patient/new"}, "type": "replaced-by"}],
    }
    check = consumer.test_a_merged_patient_is_left_for_the_one_that_replaces_it
    used_again = run_of(
        request("GET", "Patient/old", response_json=merged), request("GET", "Observation", "subject=Patient/old")
    )
    assert fails(check, used_again, "Patient/old used again after #1", ": #2 GET /fhir/Observation", "never asked for")
    in_a_search = run_of(
        request(
            "GET", "Patient", "family=A", response_json={"resourceType": "Bundle", "entry": [{"resource": merged}]}
        ),
        request(
            "POST", "Observation", json_body={"resourceType": "Observation", "subject": {"reference": "Patient/old"}}
        ),
    )
    message = fails(check, in_a_search, "Patient/old used again", ": #2 POST /fhir/Observation")
    assert "never asked for" not in message  # found by a search, not asked for by id
    other_scenario = run_of(
        request("GET", "Patient/old", response_json=merged), request("GET", "Patient/new", scenario="t")
    )
    assert fails(check, other_scenario, "never asked for")


def test_checks_with_nothing_to_judge_skip() -> None:
    empty = run_of(request("GET", "metadata"), request("POST", "Patient/$match", json_body=patient()))  # no write
    for check in (
        source.test_feeds_are_conditional_updates_on_the_institutions_own_local_system,
        consumer.test_pixm_queries_name_one_source_identifier_as_system_and_value,
        consumer.test_every_patient_search_names_the_person_sought,
        consumer.test_a_merged_patient_is_left_for_the_one_that_replaces_it,
    ):
        with pytest.raises(pytest.skip.Exception, match="nothing to judge"):
            check(empty, TARGET)
