"""Search mechanics: GET and POST, the searchset Bundle, paging, _count, _summary=count, unknown and
invalid parameters, _id and _lastUpdated (fhir@10, 29, 30, 33, 35-38)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from eqlab.checks import EvidenceClient
from suites.contract.fhir_toolkit import (
    Resource,
    body_of,
    bundle_request,
    create,
    entries,
    ids,
    last_updated_of,
    link,
    observation,
    pages,
    patient,
    post_bundle,
    scope,
    search,
    shown,
    tag,
)


def _patients(fhir_client: EvidenceClient, unique: str, count: int) -> list[str]:
    return [create(fhir_client, patient(unique, f"Page{i:02d}"))["id"] for i in range(count)]


@pytest.mark.requirement("fhir@35")
def test_search_answers_a_searchset_with_total_and_self(fhir_client: EvidenceClient, unique: str) -> None:
    """a search answers a searchset Bundle with total and a self link"""
    made = _patients(fhir_client, unique, 2)
    bundle = search(fhir_client, "Patient", {"identifier": scope(unique)})
    assert bundle.get("total") == 2, f"the searchset says total={bundle.get('total')!r}; 2 resources match"
    assert sorted(ids(bundle)) == sorted(made), f"the searchset holds {ids(bundle)}; expected {made}"
    assert link(bundle, "self"), "the searchset Bundle has no self link"


@pytest.mark.requirement("fhir@35")
def test_empty_search_is_still_a_searchset(fhir_client: EvidenceClient, unique: str) -> None:
    """a search without matches answers an empty searchset with total 0"""
    bundle = search(fhir_client, "Observation", {"identifier": scope(unique)})
    assert bundle.get("total") == 0, f"an empty searchset says total={bundle.get('total')!r}; expected 0"
    assert ids(bundle) == [], f"a search that matches nothing returned {ids(bundle)}"
    assert link(bundle, "self"), "the empty searchset Bundle has no self link"


@pytest.mark.requirement("fhir@10")
def test_post_search_gives_the_same_result(fhir_client: EvidenceClient, unique: str) -> None:
    """POST [type]/_search with form parameters gives the same result as GET"""
    _patients(fhir_client, unique, 3)
    create(fhir_client, patient(unique, "Other"))
    params = [("identifier", scope(unique)), ("family", "page"), ("_sort", "family")]
    by_get = search(fhir_client, "Patient", params)
    form = urlencode(params)
    response = fhir_client.post(
        "Patient/_search", content=form.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200, f"POST Patient/_search answered {shown(response)}; expected 200"
    by_post = body_of(response, "POST Patient/_search")
    assert by_post.get("type") == "searchset", f"POST _search answered a Bundle of type {by_post.get('type')!r}"
    assert ids(by_post) == ids(by_get) and len(ids(by_get)) == 3, (
        f"POST _search found {ids(by_post)}, GET found {ids(by_get)} (3 expected, in the same order)"
    )
    assert by_post.get("total") == by_get.get("total"), "POST _search and GET report different totals"


@pytest.mark.requirement("fhir@29")
def test_id_search_on_several_types(fhir_client: EvidenceClient, unique: str) -> None:
    """_id selects resources of several types, comma meaning OR"""
    pat = create(fhir_client, patient(unique))
    made: dict[str, list[str]] = {
        "Patient": [pat["id"], create(fhir_client, patient(unique))["id"]],
        "Observation": [create(fhir_client, observation(unique, f"Patient/{pat['id']}"))["id"]],
        "Organization": [create(fhir_client, {"resourceType": "Organization", "identifier": [tag(unique)]})["id"]],
    }
    for type_name, wanted in made.items():
        first = ids(search(fhir_client, type_name, {"_id": wanted[0]}))
        assert first == [wanted[0]], f"{type_name}?_id={wanted[0]} found {first}; expected exactly that resource"
        both = sorted(ids(search(fhir_client, type_name, {"_id": ",".join([*wanted, unique])})))
        assert both == sorted(wanted), f"{type_name}?_id=<{len(wanted)} ids and an unknown one> found {both}"


@pytest.mark.requirement("fhir@29")
def test_last_updated_search(fhir_client: EvidenceClient, unique: str) -> None:
    """_lastUpdated compares with the time the server stored the resource"""
    for resource in (patient(unique), {"resourceType": "Organization", "identifier": [tag(unique)]}):
        type_name = str(resource["resourceType"])
        created = create(fhir_client, resource)
        stamp = last_updated_of(created)
        assert stamp, f"the created {type_name} has no meta.lastUpdated"
        for value, expected in (
            (f"ge{stamp}", True),
            (f"le{stamp}", True),
            ("gt2000-01-01", True),
            (f"lt{stamp}", False),
            (f"gt{stamp}", False),
        ):
            found = ids(search(fhir_client, type_name, {"_id": created["id"], "_lastUpdated": value}))
            assert found == ([created["id"]] if expected else []), (
                f"{type_name}?_lastUpdated={value} (stored at {stamp}) found {found}; "
                f"expected {'the resource' if expected else 'nothing'}"
            )


@pytest.mark.requirement("fhir@29")
def test_id_and_last_updated_on_every_listed_type(fhir_client: EvidenceClient, unique: str) -> None:
    """every type the CapabilityStatement lists accepts _id and _lastUpdated (strict handling)"""
    statement = body_of(fhir_client.get("metadata"), "GET metadata")
    listed = [r.get("type") for rest in statement.get("rest") or [] for r in rest.get("resource") or []]
    refused = []
    for type_name in listed:
        response = fhir_client.get(
            str(type_name),
            params={"_id": unique, "_lastUpdated": "gt2000-01-01"},
            headers={"Prefer": "handling=strict"},
        )
        if response.status_code != 200 or body_of(response, f"search {type_name}").get("total", 0) != 0:
            refused.append(f"{type_name} ({response.status_code})")
    assert not refused, f"searching _id and _lastUpdated under Prefer handling=strict failed on: {', '.join(refused)}"


@pytest.mark.requirement("fhir@30")
def test_count_limits_the_page(fhir_client: EvidenceClient, unique: str) -> None:
    """_count limits the page size and the total still counts every match"""
    _patients(fhir_client, unique, 3)
    bundle = search(fhir_client, "Patient", {"identifier": scope(unique), "_count": "2"})
    assert len(ids(bundle)) == 2, f"_count=2 returned {len(ids(bundle))} matches on the first page; expected 2"
    assert bundle.get("total") == 3, f"with _count=2 the searchset says total={bundle.get('total')!r}; 3 match"
    one = search(fhir_client, "Patient", {"identifier": scope(unique), "_count": "1"})
    assert len(ids(one)) == 1, f"_count=1 returned {len(ids(one))} matches; expected 1"


# SPEC sets no size for transactions; servers bound them (the reference at 1,000 entries, some at 500).
TRANSACTION_SIZE = 400


@pytest.mark.requirement("fhir@30")
def test_default_page_is_50_and_maximum_1000(fhir_client: EvidenceClient, unique: str) -> None:
    """the default page holds 50 entries, and a _count over 1000 is reduced to 1000"""
    item = bundle_request(
        "POST", "Basic", {"resourceType": "Basic", "identifier": [tag(unique)], "code": {"text": "x"}}
    )
    for size in (TRANSACTION_SIZE, TRANSACTION_SIZE, 1001 - 2 * TRANSACTION_SIZE):
        response = post_bundle(fhir_client, "transaction", [item] * size)
        assert response.status_code == 200, f"a transaction creating {size} Basic resources answered {shown(response)}"
    default = search(fhir_client, "Basic", {"identifier": scope(unique)})
    assert len(ids(default)) == 50, f"a search without _count returned {len(ids(default))} matches; the default is 50"
    assert default.get("total") == 1001, f"the searchset says total={default.get('total')!r}; 1001 match"
    capped = fhir_client.get("Basic", params={"identifier": scope(unique), "_count": "5000"})
    assert capped.status_code == 200, f"_count=5000 answered {shown(capped)}; a larger _count is reduced, not refused"
    assert len(ids(body_of(capped, "search"))) == 1000, (
        f"_count=5000 returned {len(ids(body_of(capped, 'search')))} matches; the server maximum is 1000"
    )


@pytest.mark.requirement("fhir@33")
def test_summary_count_gives_only_the_total(fhir_client: EvidenceClient, unique: str) -> None:
    """_summary=count answers the total and no entries"""
    _patients(fhir_client, unique, 3)
    bundle = search(fhir_client, "Patient", {"identifier": scope(unique), "_summary": "count"})
    assert bundle.get("total") == 3, f"_summary=count says total={bundle.get('total')!r}; 3 match"
    assert entries(bundle) == [], f"_summary=count returned {len(entries(bundle))} entries; expected none"


def _walk(fhir_client: EvidenceClient, first: Resource) -> tuple[list[str], list[str]]:
    """Follow next links from ``first``: (every match id in order, every paging link seen)."""
    found: list[str] = []
    links: list[str] = []
    for bundle in pages(fhir_client, first, "the Patient search"):
        links += [item["url"] for item in bundle.get("link") or [] if isinstance(item, dict) and "url" in item]
        found += ids(bundle)
    return found, links


@pytest.mark.requirement("fhir@36")
def test_next_links_walk_every_result_once(fhir_client: EvidenceClient, unique: str) -> None:
    """following next walks every result exactly once"""
    made = _patients(fhir_client, unique, 7)
    first = search(fhir_client, "Patient", {"identifier": scope(unique), "_count": "3"})
    assert link(first, "next"), "the first page of 3 out of 7 matches has no next link"
    found, _ = _walk(fhir_client, first)
    assert sorted(found) == sorted(made) and len(found) == len(made), (
        f"walking the next links returned {len(found)} matches ({len(set(found))} distinct); expected the 7 created"
    )


@pytest.mark.requirement("fhir@36")
def test_paging_links_are_absolute_on_the_called_host(fhir_client: EvidenceClient, unique: str) -> None:
    """paging links are absolute URLs on the host the client called"""
    _patients(fhir_client, unique, 3)
    first = search(fhir_client, "Patient", {"identifier": scope(unique), "_count": "1"})
    _, links = _walk(fhir_client, first)
    base = str(fhir_client.base_url)
    called = urlsplit(base)
    assert links, "the searchset has no links"
    for url in links:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == (called.scheme, called.netloc) and url.startswith(base), (
            f"the paging link {url!r} is not an absolute URL under the base the client called ({base})"
        )


@pytest.mark.requirement("fhir@37")
def test_unknown_parameter_is_ignored(fhir_client: EvidenceClient, unique: str) -> None:
    """an unknown search parameter is ignored and left out of the self link"""
    made = _patients(fhir_client, unique, 2)
    bundle = search(fhir_client, "Patient", {"identifier": scope(unique), "eqlab-unknown-param": "1"})
    assert sorted(ids(bundle)) == sorted(made), f"adding an unknown parameter changed the result to {ids(bundle)}"
    self_link = link(bundle, "self") or ""
    names = [k for k, _ in parse_qsl(urlsplit(self_link).query, keep_blank_values=True)]
    assert "eqlab-unknown-param" not in names, f"the self link {self_link!r} lists the ignored parameter"


@pytest.mark.requirement("fhir@37")
def test_unknown_parameter_under_strict_handling_is_400(fhir_client: EvidenceClient, unique: str) -> None:
    """an unknown search parameter under Prefer handling=strict answers 400"""
    response = fhir_client.get(
        "Patient",
        params={"identifier": scope(unique), "eqlab-unknown-param": "1"},
        headers={"Prefer": "handling=strict"},
    )
    assert response.status_code == 400, (
        f"an unknown parameter with Prefer handling=strict answered {shown(response)}; expected 400"
    )
    lenient = fhir_client.get(
        "Patient",
        params={"identifier": scope(unique), "eqlab-unknown-param": "1"},
        headers={"Prefer": "handling=lenient"},
    )
    assert lenient.status_code == 200, f"the same search with handling=lenient answered {shown(lenient)}"


INVALID_VALUES = [
    ("Patient", "_count", "abc"),
    ("Patient", "_count", "-1"),
    ("Patient", "_count", "1.5"),
    ("Patient", "birthdate", "not-a-date"),
    ("Patient", "birthdate", "2020-02-30"),
    ("Patient", "birthdate", "2020-13"),
    ("Patient", "_lastUpdated", "yesterday"),
    ("Patient", "_summary", "everything"),
    ("Patient", "active:missing", "maybe"),
    ("Observation", "value-quantity", "abc"),
    ("Observation", "date", "gt2020-01-01T25:00:00Z"),
    ("Patient", "birthdate", "1970-01-01T00:00:00+99:00"),  # no such time zone: the same value in a body is a 400
    ("Observation", "performer", "Practitioner/" + "a" * 65),  # a FHIR id has at most 64 characters
    ("RiskAssessment", "probability", "ten"),
]


@pytest.mark.requirement("fhir@38")
def test_invalid_parameter_values_are_400(fhir_client: EvidenceClient, unique: str) -> None:
    """an invalid value of a known parameter answers 400"""
    wrong = []
    for path, name, value in INVALID_VALUES:
        response = fhir_client.get(path, params=[("identifier", scope(unique)), (name, value)])
        if response.status_code != 400:
            wrong.append(f"{path}?{name}={value} answered {response.status_code}")
    assert not wrong, "an invalid value of a known parameter must answer 400: " + "; ".join(wrong)


@pytest.mark.requirement("fhir@10")
def test_post_search_combines_url_and_body_parameters(fhir_client: EvidenceClient, unique: str) -> None:
    """POST _search combines parameters in the URL and in the body"""
    made = create(fhir_client, patient(unique, "Combined", gender="female"))
    create(fhir_client, patient(unique, "Combined", gender="male"))
    response = fhir_client.post(
        "Patient/_search",
        params={"identifier": scope(unique)},
        content=urlencode({"gender": "female"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, f"POST Patient/_search answered {shown(response)}; expected 200"
    found = ids(body_of(response, "POST _search"))
    assert found == [made["id"]], f"identifier in the URL and gender in the body found {found}; expected [{made['id']}]"


@pytest.mark.requirement("fhir@33")
def test_summary_count_with_criteria_and_no_match(fhir_client: EvidenceClient, unique: str) -> None:
    """_summary=count counts the matches of the criteria, zero included"""
    _patients(fhir_client, unique, 2)
    cases = [("Patient", {"gender": "female"}, 0), ("Patient", {"family": "page"}, 2), ("Observation", {}, 0)]
    for path, criteria, expected in cases:
        bundle = search(fhir_client, path, {"identifier": scope(unique), "_summary": "count", **criteria})
        assert bundle.get("total") == expected and entries(bundle) == [], (
            f"{path}?_summary=count with {criteria} says total={bundle.get('total')!r} with "
            f"{len(entries(bundle))} entries; expected total={expected} and no entries"
        )


@pytest.mark.requirement("fhir@38")
def test_invalid_history_parameters_are_400(fhir_client: EvidenceClient, unique: str) -> None:
    """invalid paging and time parameters of a history answer 400"""
    created = create(fhir_client, patient(unique))
    wrong = []
    for name, value in (("_count", "abc"), ("_count", "-2"), ("_since", "yesterday"), ("_at", "2020-13-01")):
        response = fhir_client.get(f"Patient/{created['id']}/_history", params={name: value})
        if response.status_code != 400:
            wrong.append(f"_history?{name}={value} answered {response.status_code}")
    assert not wrong, "an invalid value of a history parameter must answer 400: " + "; ".join(wrong)
