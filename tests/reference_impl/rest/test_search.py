"""Search: parameter types, prefixes, modifiers, chaining, _has, includes, sorting and paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.reference_impl.rest.helpers import JSON_HEADERS, assert_outcome, create, ids, patient, search


def observation(subject: str, code: str, value: float, when: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "Heart rate"},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        **fields,
    }


@pytest.fixture
def people(fhir: httpx.Client) -> dict[str, str]:
    made = {
        "anne": patient(
            "Müller",
            birthDate="1980-05-17",
            gender="female",
            identifier=[{"system": "urn:oid:1.3.182.4.4", "value": "1980051712381"}],
        ),
        "maddy": patient(
            "Schmit",
            birthDate="1975-01-01",
            gender="female",
            active=True,
            telecom=[{"system": "phone", "value": "+352 111"}],
        ),
        "maggy": patient("Schmitz", birthDate="1975-01-02", gender="female", active=False),
        "luc": patient(
            "Weber", birthDate="2001-12-31", gender="male", address=[{"city": "Esch-sur-Alzette", "postalCode": "4005"}]
        ),
    }
    made["maddy"]["name"][0]["given"] = ["Maddy"]
    made["maggy"]["name"][0]["given"] = ["Maggy"]
    return {key: create(fhir, resource)["id"] for key, resource in made.items()}


def test_string_default_is_prefix_case_and_accent_insensitive(fhir: httpx.Client, people: dict[str, str]) -> None:
    assert ids(search(fhir, "Patient?family=muller")) == [people["anne"]]
    assert sorted(ids(search(fhir, "Patient?family=SCHMIT"))) == sorted([people["maddy"], people["maggy"]])
    assert ids(search(fhir, "Patient?name=madd")) == [people["maddy"]]
    assert ids(search(fhir, "Patient?address-city=esch")) == [people["luc"]]


def test_string_exact_and_contains(fhir: httpx.Client, people: dict[str, str]) -> None:
    assert ids(search(fhir, "Patient?family:exact=Schmit")) == [people["maddy"]]
    assert ids(search(fhir, "Patient?family:exact=schmit")) == []
    assert sorted(ids(search(fhir, "Patient?family:contains=hmi"))) == sorted([people["maddy"], people["maggy"]])


def test_token_forms(fhir: httpx.Client, people: dict[str, str]) -> None:
    assert ids(search(fhir, "Patient?identifier=urn:oid:1.3.182.4.4|1980051712381")) == [people["anne"]]
    assert ids(search(fhir, "Patient?identifier=1980051712381")) == [people["anne"]]
    assert ids(search(fhir, "Patient?identifier=urn:oid:1.3.182.4.4|")) == [people["anne"]]
    assert ids(search(fhir, "Patient?identifier=urn:other|1980051712381")) == []
    assert ids(search(fhir, "Patient?active=true")) == [people["maddy"]]
    assert ids(search(fhir, "Patient?gender=male")) == [people["luc"]]
    assert ids(search(fhir, "Patient?phone=%2B352 111")) == [people["maddy"]]


def test_token_not_includes_missing_values(fhir: httpx.Client, people: dict[str, str]) -> None:
    found = set(ids(search(fhir, "Patient?active:not=true")))
    assert found == {people["anne"], people["maggy"], people["luc"]}


def test_missing_modifier(fhir: httpx.Client, people: dict[str, str]) -> None:
    assert set(ids(search(fhir, "Patient?active:missing=true"))) == {people["anne"], people["luc"]}
    assert set(ids(search(fhir, "Patient?active:missing=false"))) == {people["maddy"], people["maggy"]}


def test_or_with_comma_and_and_with_repetition(fhir: httpx.Client, people: dict[str, str]) -> None:
    assert set(ids(search(fhir, "Patient?family=muller,weber"))) == {people["anne"], people["luc"]}
    assert ids(search(fhir, "Patient?family=schmit&given=maggy")) == [people["maggy"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("birthdate=1975", {"maddy", "maggy"}),
        ("birthdate=1975-01", {"maddy", "maggy"}),
        ("birthdate=1975-01-02", {"maggy"}),
        ("birthdate=eq1980-05-17", {"anne"}),
        ("birthdate=ne1975", {"anne", "luc"}),
        ("birthdate=gt1980-05-17", {"luc"}),
        ("birthdate=ge1980-05-17", {"anne", "luc"}),
        ("birthdate=lt1975-01-02", {"maddy"}),
        ("birthdate=le1975-01-02", {"maddy", "maggy"}),
        ("birthdate=sa1980", {"luc"}),
        ("birthdate=eb1976", {"maddy", "maggy"}),
        ("birthdate=ge1975&birthdate=lt1976", {"maddy", "maggy"}),
        ("birthdate=2001-12-31T12:00:00Z", set()),
        ("birthdate=ap1975-01-01", {"maddy", "maggy"}),
    ],
)
def test_date_prefixes(fhir: httpx.Client, people: dict[str, str], query: str, expected: set[str]) -> None:
    assert set(ids(search(fhir, f"Patient?{query}"))) == {people[k] for k in expected}


def test_date_period_and_datetime_ranges(fhir: httpx.Client) -> None:
    enc = create(
        fhir,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "period": {"start": "2024-03-01T08:00:00Z", "end": "2024-03-05T12:00:00Z"},
        },
    )
    open_ended = create(
        fhir,
        {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {"code": "IMP"},
            "period": {"start": "2024-06-01T00:00:00Z"},
        },
    )
    assert ids(search(fhir, "Encounter?date=2024-03-03")) == []  # the stay is wider than that day
    assert ids(search(fhir, "Encounter?date=2024-03")) == [enc["id"]]
    assert set(ids(search(fhir, "Encounter?date=gt2024-03-02"))) == {enc["id"], open_ended["id"]}
    assert ids(search(fhir, "Encounter?date=lt2024-03-02")) == [enc["id"]]
    assert ids(search(fhir, "Encounter?date=sa2024-04-01")) == [open_ended["id"]]
    assert ids(search(fhir, "Encounter?date=2024-03-01T09:00:00%2B01:00")) == []
    assert ids(search(fhir, "Encounter?date=ge2024-03-01T09:00:00%2B01:00&date=le2024-03-31")) == [enc["id"]]


def test_quantity_and_number(fhir: httpx.Client, people: dict[str, str]) -> None:
    subject = f"Patient/{people['anne']}"
    low = create(fhir, observation(subject, "8867-4", 60, "2024-01-01T10:00:00Z"))
    high = create(fhir, observation(subject, "8867-4", 100.5, "2024-01-02T10:00:00Z"))
    assert ids(search(fhir, "Observation?value-quantity=60")) == [low["id"]]
    assert ids(search(fhir, "Observation?value-quantity=100")) == []
    assert ids(search(fhir, "Observation?value-quantity=100.5")) == [high["id"]]
    # one significant figure: 1e2 stands for [50, 150)
    assert set(ids(search(fhir, "Observation?value-quantity=1e2"))) == {low["id"], high["id"]}
    assert ids(search(fhir, "Observation?value-quantity=1.0e2")) == [high["id"]]  # [95, 105)
    assert ids(search(fhir, "Observation?value-quantity=gt60")) == [high["id"]]
    assert set(ids(search(fhir, "Observation?value-quantity=ge60"))) == {low["id"], high["id"]}
    assert ids(search(fhir, "Observation?value-quantity=lt61|http://unitsofmeasure.org|/min")) == [low["id"]]
    assert ids(search(fhir, "Observation?value-quantity=lt61|http://unitsofmeasure.org|mg")) == []
    assert ids(search(fhir, "Observation?value-quantity=60||/min")) == [low["id"]]
    risk = create(
        fhir,
        {
            "resourceType": "RiskAssessment",
            "status": "final",
            "subject": {"reference": subject},
            "prediction": [{"probabilityDecimal": 0.25}],
        },
    )
    assert ids(search(fhir, "RiskAssessment?probability=0.25")) == [risk["id"]]
    assert ids(search(fhir, "RiskAssessment?probability=gt0.3")) == []


def test_reference_forms_and_chaining(fhir: httpx.Client, people: dict[str, str]) -> None:
    anne, luc = people["anne"], people["luc"]
    obs_anne = create(fhir, observation(f"Patient/{anne}", "8867-4", 70, "2024-01-01"))
    obs_luc = create(fhir, observation(f"Patient/{luc}", "8867-4", 80, "2024-01-01"))
    assert ids(search(fhir, f"Observation?subject=Patient/{anne}")) == [obs_anne["id"]]
    assert ids(search(fhir, f"Observation?subject={anne}")) == [obs_anne["id"]]
    assert ids(search(fhir, f"Observation?subject:Patient={luc}")) == [obs_luc["id"]]
    assert ids(search(fhir, f"Observation?patient={luc}")) == [obs_luc["id"]]
    base = str(fhir.base_url).rstrip("/")
    assert ids(search(fhir, f"Observation?subject={base}/Patient/{anne}")) == [obs_anne["id"]]
    assert ids(search(fhir, "Observation?subject.family=weber")) == [obs_luc["id"]]
    assert ids(search(fhir, "Observation?subject:Patient.identifier=1980051712381")) == [obs_anne["id"]]
    assert ids(search(fhir, "Observation?patient.family=nobody")) == []


def test_reference_identifier_modifier(fhir: httpx.Client) -> None:
    resource = observation("Patient/x", "1", 1, "2024")
    resource["subject"] = {"identifier": {"system": "urn:oid:1.3.182.4.4", "value": "123"}}
    obs = create(fhir, resource)
    assert ids(search(fhir, "Observation?subject:identifier=urn:oid:1.3.182.4.4|123")) == [obs["id"]]
    assert ids(search(fhir, "Observation?subject:identifier=urn:oid:1.3.182.4.4|999")) == []


def test_has_reverse_chaining(fhir: httpx.Client, people: dict[str, str]) -> None:
    create(fhir, observation(f"Patient/{people['maddy']}", "8302-2", 170, "2024-01-01"))
    create(fhir, observation(f"Patient/{people['luc']}", "8867-4", 80, "2024-01-01"))
    assert ids(search(fhir, "Patient?_has:Observation:subject:code=8302-2")) == [people["maddy"]]
    assert ids(search(fhir, "Patient?_has:Observation:subject:value-quantity=gt100")) == [people["maddy"]]


def test_include_and_revinclude(fhir: httpx.Client, people: dict[str, str]) -> None:
    org = create(fhir, {"resourceType": "Organization", "name": "CHL"})
    pat = create(fhir, patient("Kieffer", managingOrganization={"reference": f"Organization/{org['id']}"}))
    obs = create(fhir, observation(f"Patient/{pat['id']}", "8867-4", 70, "2024-01-01"))
    bundle = search(fhir, f"Patient?_id={pat['id']}&_include=Patient:organization&_revinclude=Observation:subject")
    assert ids(bundle) == [pat["id"]]
    assert set(ids(bundle, "include")) == {org["id"], obs["id"]}
    assert bundle["total"] == 1  # includes are not counted
    assert_outcome(fhir.get("Patient?_include=Observation:subject"), 400)
    assert_outcome(fhir.get("Patient?_include=Patient:family"), 400)


def test_id_and_last_updated(fhir: httpx.Client, people: dict[str, str]) -> None:
    assert set(ids(search(fhir, f"Patient?_id={people['anne']},{people['luc']}"))) == {people["anne"], people["luc"]}
    stamp = fhir.get(f"Patient/{people['luc']}").json()["meta"]["lastUpdated"]
    assert people["luc"] in ids(search(fhir, f"Patient?_lastUpdated=ge{stamp.replace('+', '%2B')}"))
    assert ids(search(fhir, "Patient?_lastUpdated=lt2000-01-01")) == []


def test_sort(fhir: httpx.Client, people: dict[str, str]) -> None:
    ascending = ids(search(fhir, "Patient?_sort=birthdate"))
    assert ascending == [people["maddy"], people["maggy"], people["anne"], people["luc"]]
    assert ids(search(fhir, "Patient?_sort=-birthdate")) == list(reversed(ascending))
    assert ids(search(fhir, "Patient?_sort=family")) == [
        people["anne"],
        people["maddy"],
        people["maggy"],
        people["luc"],
    ]
    by_gender = ids(search(fhir, "Patient?_sort=gender,-birthdate"))
    assert by_gender == [people["anne"], people["maggy"], people["maddy"], people["luc"]]
    assert_outcome(fhir.get("Patient?_sort=nonsense"), 400)


def test_paging_links_walk_all_results(fhir: httpx.Client) -> None:
    made = {create(fhir, patient(f"Page{i:02d}"))["id"] for i in range(23)}
    first = search(fhir, "Patient?_count=10&_sort=family")
    assert first["total"] == 23 and len(first["entry"]) == 10
    seen, page = [], first
    while True:
        seen += ids(page)
        link = {x["relation"]: x["url"] for x in page["link"]}
        assert link["self"].startswith("http")
        if "next" not in link:
            break
        page = fhir.get(link["next"]).json()
    assert len(seen) == 23 and set(seen) == made
    assert [e["resource"]["name"][0]["family"] for e in first["entry"]][:2] == ["Page00", "Page01"]


def test_count_default_maximum_and_zero(fhir: httpx.Client) -> None:
    for i in range(55):
        create(fhir, patient(f"Many{i}"))
    assert len(search(fhir, "Patient")["entry"]) == 50
    capped = search(fhir, "Patient?_count=5000")
    outcomes = [e for e in capped["entry"] if e["search"]["mode"] == "outcome"]
    assert len(ids(capped)) == 55 and outcomes and "1000" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    assert "entry" not in search(fhir, "Patient?_count=0")
    assert search(fhir, "Patient?_summary=count")["total"] == 55


def test_summary_and_elements_in_search(fhir: httpx.Client, people: dict[str, str]) -> None:
    bundle = search(fhir, f"Patient?_id={people['luc']}&_elements=birthDate")
    assert set(bundle["entry"][0]["resource"]) == {"resourceType", "id", "meta", "birthDate"}
    count = search(fhir, "Patient?_summary=count")
    assert count["total"] == 4 and "entry" not in count
    assert_outcome(fhir.get("Patient?_summary=everything"), 400)


def test_post_search_and_system_search(fhir: httpx.Client, people: dict[str, str]) -> None:
    response = fhir.post(
        "Patient/_search", content="family=weber", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200 and ids(response.json()) == [people["luc"]]
    assert_outcome(fhir.post("Patient/_search", content="family=weber", headers=JSON_HEADERS), 415)
    create(fhir, {"resourceType": "Organization", "name": "Org"})
    everything = search(fhir, "?_type=Patient,Organization")
    assert everything["total"] == 5
    assert search(fhir, f"?_id={people['anne']}")["total"] == 1
    assert_outcome(fhir.get("?_type=Nonsense"), 400)


def test_unknown_parameters_lenient_by_default_strict_on_request(fhir: httpx.Client, people: dict[str, str]) -> None:
    bundle = search(fhir, "Patient?nonsense=1&family=weber")
    assert ids(bundle) == [people["luc"]]
    self_link = next(x["url"] for x in bundle["link"] if x["relation"] == "self")
    assert "nonsense" not in self_link and "family=weber" in self_link
    assert_outcome(fhir.get("Patient?nonsense=1", headers={"Prefer": "handling=strict"}), 400)


@pytest.mark.parametrize(
    "query",
    [
        "Patient?_count=abc",
        "Patient?_count=-1",
        "Patient?birthdate=2020-13-01",
        "Patient?birthdate=yesterday",
        "Patient?birthdate=xx2020",
        "Observation?value-quantity=abc",
        "Patient?family:fuzzy=x",
        "Patient?gender:exact=male",
        "Patient?active:missing=maybe",
        "Patient?family=",
        "Patient?general-practitioner=a b",
        "Observation?subject.nosuch=1",
        "Patient?_has:Observation:nosuch:code=1",
        "Patient?_offset=x",
    ],
)
def test_invalid_values_of_known_parameters_are_400(fhir_unwritten: httpx.Client, query: str) -> None:
    assert_outcome(fhir_unwritten.get(query), 400)


@pytest.mark.parametrize(
    "value",
    [
        "x' OR '1'='1",
        "'; DROP TABLE resources; --",
        '" OR ""="',
        "%",
        "_",
        "\\",
        "a%' UNION SELECT content FROM resources --",
        "\u0000",
    ],
)
def test_sql_metacharacters_are_plain_values(fhir: httpx.Client, people: dict[str, str], value: str) -> None:
    for param in ("family", "identifier", "_id", "general-practitioner"):
        response = fhir.get("Patient", params={param: value})
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            assert response.json()["total"] == 0
    assert search(fhir, "Patient")["total"] == 4  # nothing was dropped


def test_spec_chain_over_an_ambiguous_reference(fhir: httpx.Client, people: dict[str, str]) -> None:
    """SPEC section 6 searches MedicationRequest?patient.identifier=...: patient may be a Patient or a Group."""
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "paracetamol"},
        "subject": {"reference": f"Patient/{people['anne']}"},
    }
    created = create(fhir, request)
    found = search(fhir, "MedicationRequest?patient.identifier=urn:oid:1.3.182.4.4|1980051712381&status=active")
    assert ids(found) == [created["id"]]
