"""PDQm on the demo people (the generic Patient search: modifiers, postal code, telecom, active) and the
demo data's promises (one platform id for Maddy's three records, Maggy and the twins apart, valid matricules)."""

from __future__ import annotations

import pytest

from reference_impl.naming import NATIONAL_ID, PLATFORM_ID
from reference_impl.services.mpi import matricule
from reference_impl.services.mpi.demo import demo_patients, platform_id
from tests.reference_impl.services.mpi.conftest import Platform, values


def found(platform: Platform, **params: str) -> set[str]:
    bundle = platform.client.get("Patient", params={**params, "_count": "200"}).json()
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["resource"]["id"].startswith("mpi-")}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"family": "schmitt"}, {"mpi-maddy-chl", "mpi-maddy-hrs", "mpi-maddy-chem", "mpi-maggy-chdn"}),
        ({"family:exact": "Schmitt", "given": "mag"}, {"mpi-maggy-chdn"}),
        ({"family:exact": "schmitt"}, set()),
        ({"family:exact": "Schmit"}, set()),
        ({"given:contains": "AGG"}, {"mpi-maggy-chdn"}),
        ({"family:contains": "offma"}, {"mpi-luc-hoffmann", "mpi-tom-hoffmann"}),
        ({"given": "lea"}, {"mpi-lea-thill"}),
        ({"given:exact": "Lea"}, set()),
        ({"birthdate": "2012-05-14", "gender": "male"}, {"mpi-luc-hoffmann", "mpi-tom-hoffmann"}),
        ({"address-postalcode": "9170"}, {"mpi-luc-hoffmann", "mpi-tom-hoffmann"}),
        ({"telecom": "+352 661 904 218"}, {"mpi-jean-weber"}),
        ({"identifier": f"{NATIONAL_ID}|2012051469331"}, {"mpi-luc-hoffmann"}),
        ({"family": "Hoffmann", "active": "false"}, set()),
        ({"family": "Hoffmann", "active": "true"}, {"mpi-luc-hoffmann", "mpi-tom-hoffmann"}),
    ],
)
def test_demographics_queries(platform: Platform, params: dict[str, str], expected: set[str]) -> None:
    assert found(platform, **params) == expected


def test_the_demo_people_are_linked_as_promised(platform: Platform) -> None:
    stored = {p["id"]: platform.client.get(f"Patient/{p['id']}").json() for p in demo_patients()}
    maddy = {values(stored[i], PLATFORM_ID)[0] for i in ("mpi-maddy-chl", "mpi-maddy-hrs", "mpi-maddy-chem")}
    assert maddy == {platform_id("maddy-schmitt")}
    assert values(stored["mpi-maggy-chdn"], PLATFORM_ID) == [platform_id("maggy-schmitt")]
    assert values(stored["mpi-luc-hoffmann"], PLATFORM_ID) != values(stored["mpi-tom-hoffmann"], PLATFORM_ID)
    luc, tom = stored["mpi-luc-hoffmann"], stored["mpi-tom-hoffmann"]
    assert (luc["birthDate"], luc["address"], luc["name"][0]["family"]) == (
        tom["birthDate"],
        tom["address"],
        tom["name"][0]["family"],
    )
    for patient in stored.values():
        [value] = values(patient, NATIONAL_ID)
        assert matricule.problem(value) is None, value
    maggy, maddy_record = stored["mpi-maggy-chdn"], stored["mpi-maddy-chl"]
    assert maggy["birthDate"] == maddy_record["birthDate"] and maggy["name"][0]["given"] == ["Maggy"]
