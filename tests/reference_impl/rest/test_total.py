"""``_total`` over real HTTP: none leaves the total out, accurate and estimate give it, anything else is a 400;
the next link does not depend on the total; every page of a search or a history totals what a count gives."""

from __future__ import annotations

import httpx
import pytest

from tests.reference_impl.rest.helpers import assert_outcome, create, patient, search

pytestmark = pytest.mark.parametrize("fhir", ["http"], indirect=True)


@pytest.fixture
def three(fhir: httpx.Client) -> list[str]:
    return [create(fhir, patient("Totalcount", birthDate=f"198{n}-01-01"))["id"] for n in range(3)]


def test_none_leaves_the_total_out_and_still_links_the_next_page(fhir: httpx.Client, three: list[str]) -> None:
    first = search(fhir, "Patient?family=totalcount&_total=none&_count=2")
    assert "total" not in first and len(first["entry"]) == 2
    relations = {link["relation"]: link["url"] for link in first["link"]}
    assert "_total=none" in relations["next"]
    last = fhir.get(relations["next"]).json()
    assert "total" not in last and len(last["entry"]) == 1
    assert "next" not in {link["relation"] for link in last["link"]}


def test_accurate_and_estimate_count_what_matches(fhir: httpx.Client, three: list[str]) -> None:
    assert search(fhir, "Patient?family=totalcount&_total=accurate&_count=1")["total"] == 3
    assert search(fhir, "Patient?family=totalcount&_total=estimate&_count=1")["total"] == 3  # exact below the bound
    assert search(fhir, "Patient?family=totalcount&_count=1")["total"] == 3


def test_summary_count_counts_whatever_total_says(fhir: httpx.Client, three: list[str]) -> None:
    counted = search(fhir, "Patient?family=totalcount&_summary=count&_total=none")
    assert counted["total"] == 3 and "entry" not in counted


@pytest.mark.parametrize("handling", ["lenient", "strict"])
def test_an_unknown_total_mode_is_a_400_naming_it(fhir: httpx.Client, handling: str) -> None:
    answer = fhir.get("Patient", params={"_total": "exact"}, headers={"Prefer": f"handling={handling}"})
    outcome = assert_outcome(answer, 400, "invalid")
    assert "_total" in outcome["issue"][0]["diagnostics"] and "exact" in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize("mode", ["accurate", "estimate"])
def test_every_page_totals_what_a_count_gives(fhir: httpx.Client, three: list[str], mode: str) -> None:
    # The last page knows the total from its own rows (no count); the others, and a page past the end, count.
    for count, offset in [(5, 0), (3, 0), (2, 0), (2, 2), (1, 2), (1, 1), (2, 3), (2, 4)]:
        page = search(fhir, f"Patient?family=totalcount&_total={mode}&_count={count}&_offset={offset}")
        assert page["total"] == 3, f"_count={count}&_offset={offset}"
        assert len(page.get("entry", [])) == max(0, min(count, 3 - offset))


def test_every_history_page_totals_its_versions(fhir: httpx.Client) -> None:
    created = create(fhir, patient("Historytotal"))
    for version in range(2, 4):
        updated = fhir.put(f"Patient/{created['id']}", json={**created, "birthDate": f"199{version}-01-01"})
        assert updated.status_code == 200, updated.text
    for count, offset in [(5, 0), (3, 0), (2, 0), (2, 2), (1, 1), (2, 3), (2, 4)]:
        page = fhir.get(f"Patient/{created['id']}/_history", params={"_count": count, "_offset": offset}).json()
        assert page["total"] == 3, f"_count={count}&_offset={offset}"
        assert len(page.get("entry", [])) == max(0, min(count, 3 - offset))
