"""Patient matching, $match (IHE ITI-119), mpi@40-50: grades, twins, near-duplicates, options and errors.

Each check makes the people it matches: a family name of its own (a real name plus letters drawn from
the check's unique value), a random birth date and matricules built with the standard Luhn and
Verhoeff digits, so nobody else's records come near its probes.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from eqlab.checks import EvidenceClient, LabTokens
from suites.contract.fhir_toolkit import FHIR_JSON, Resource, body_of, create, shown, tag
from suites.contract.mpi.support import NATIONAL_ID, assert_error, matricule, national

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
GRADES = ("certain", "probable", "possible")
LIKELY = ("certain", "probable")


def _surname(unique: str, family: str) -> str:
    """``family`` made this check's own: "Schmitt-Kbdaefgh" (letters from the unique value)."""
    return f"{family}-{''.join(chr(ord('a') + int(c, 16)) for c in unique[-8:]).capitalize()}"


def _birth_date() -> date:
    """A random day whose day and month can be swapped (day 1-12, not equal to the month)."""
    rng = random.SystemRandom()
    while True:
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 90 * 365))
        if born.day <= 12 and born.day != born.month:
            return born


def _person(
    unique: str,
    given: str,
    family: str,
    born: date | str,
    gender: str = "female",
    address: tuple[str, str] = ("3510", "Dudelange"),
    identifier: list[dict[str, str]] | None = None,
) -> Resource:
    postal, city = address
    return {
        "resourceType": "Patient",
        "identifier": [tag(unique), *(identifier or [])],
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
        "birthDate": born if isinstance(born, str) else born.isoformat(),
        "address": [{"line": ["1, rue Principale"], "postalCode": postal, "city": city, "country": "LU"}],
    }


def _probe(patient: Resource) -> Resource:
    """``patient`` as a probe: without the check's tag (a matcher must not find people by it)."""
    probe = {k: v for k, v in patient.items() if k not in ("id", "meta")}
    probe["identifier"] = [i for i in patient.get("identifier", []) if i.get("system") == NATIONAL_ID]
    if not probe["identifier"]:
        del probe["identifier"]
    return probe


def _match(client: EvidenceClient, probe: Resource | None, **options: Any) -> httpx.Response:
    parameters: list[dict[str, Any]] = [] if probe is None else [{"name": "resource", "resource": probe}]
    for name, value in options.items():
        kind = "valueBoolean" if isinstance(value, bool) else "valueInteger"
        parameters.append({"name": name, kind: value})
    body = {"resourceType": "Parameters", "parameter": parameters}
    return client.post("Patient/$match", json=body, headers={"Content-Type": FHIR_JSON})


def _entries(response: httpx.Response, what: str) -> list[tuple[str, float, str]]:
    """(Patient id, score, grade) of each entry of a 200 searchset, checking the shape ITI-119 gives it."""
    assert response.status_code == 200, f"{what} answered {shown(response)}; expected 200 with a searchset Bundle"
    bundle = body_of(response, what)
    assert bundle.get("resourceType") == "Bundle" and bundle.get("type") == "searchset", (
        f"{what} answered a {bundle.get('resourceType')} of type {bundle.get('type')}; expected a searchset Bundle"
    )
    found = []
    for n, entry in enumerate(bundle.get("entry") or []):
        resource, search = entry.get("resource") or {}, entry.get("search") or {}
        where = f"{what}: entry {n} (Patient/{resource.get('id')})"
        assert resource.get("resourceType") == "Patient", f"{where} holds a {resource.get('resourceType')}"
        assert search.get("mode") == "match", f"{where} has search.mode {search.get('mode')!r}; expected 'match'"
        score = search.get("score")
        assert isinstance(score, (int, float)) and 0 <= score <= 1, f"{where} has search.score {score!r}; expected 0..1"
        grades = [x.get("valueCode") for x in search.get("extension") or [] if x.get("url") == MATCH_GRADE]
        assert len(grades) == 1 and grades[0] in GRADES, (
            f"{where} carries match-grade {grades or 'nowhere'} on search; expected one extension {MATCH_GRADE} "
            "with valueCode certain, probable or possible"
        )
        found.append((str(resource.get("id")), float(score), str(grades[0])))
    scores = [score for _, score, _ in found]
    assert scores == sorted(scores, reverse=True), f"{what} is not ordered best first: scores {scores}"
    return found


def _grade_of(entries: list[tuple[str, float, str]], patient: Resource) -> str | None:
    return next((grade for res_id, _, grade in entries if res_id == patient["id"]), None)


@pytest.mark.requirement("mpi@40", "mpi@41")
def test_the_holder_of_the_matricule_is_first_and_certain(fhir_client: EvidenceClient, unique: str) -> None:
    """$match answers a graded searchset, the record holding the probe's matricule first and certain"""
    family, born = _surname(unique, "Kieffer"), _birth_date()
    anne = create(fhir_client, _person(unique, "Anne", family, born, identifier=[national(matricule(born))]))
    create(fhir_client, _person(unique, "Anna", family, born))  # a near-duplicate without matricule
    entries = _entries(_match(fhir_client, _probe(anne)), f"$match of {family}'s record")
    assert entries, (
        f"$match of a stored Patient's own demographics and matricule answered no entry (Patient/{anne['id']})"
    )
    first_id, _, grade = entries[0]
    assert (first_id, grade) == (anne["id"], "certain"), (
        f"$match with Patient/{anne['id']}'s matricule and demographics answered Patient/{first_id} graded "
        f"{grade} first; expected Patient/{anne['id']} graded certain"
    )


@pytest.mark.requirement("mpi@42")
def test_equal_demographics_without_an_identifier_are_not_certain(fhir_client: EvidenceClient, unique: str) -> None:
    """names, birth date, gender and address alike, but no agreeing matricule: found, never certain"""
    family, born = _surname(unique, "Weber"), _birth_date()
    jean = create(fhir_client, _person(unique, "Jean", family, born, "male", identifier=[national(matricule(born))]))
    probe = _probe(jean)
    del probe["identifier"]
    grade = _grade_of(_entries(_match(fhir_client, probe), "$match without identifier"), jean)
    assert grade in ("probable", "possible"), (
        f"$match of Patient/{jean['id']}'s demographics without any identifier graded it {grade or 'not at all'}; "
        "expected probable (certain needs an agreeing matricule or platform id; a match this close is found)"
    )


@pytest.mark.requirement("mpi@42")
def test_a_matricule_on_someone_else_is_not_certain(fhir_client: EvidenceClient, unique: str) -> None:
    """an agreeing matricule with another given name and birth date is a data error, not a certain match"""
    family, born = _surname(unique, "Thill"), _birth_date()
    value = matricule(born)
    lea = create(fhir_client, _person(unique, "Léa", family, born, identifier=[national(value)]))
    other_born = born.replace(year=born.year - 17)
    probe = _probe(_person(unique, "Roger", family, other_born, "male", identifier=[national(value)]))
    grade = _grade_of(_entries(_match(fhir_client, probe), "$match of a probe carrying Léa's matricule"), lea)
    assert grade != "certain", (
        f"$match of Roger, born {other_born}, carrying the matricule of Léa (Patient/{lea['id']}, born {born}) graded "
        "Léa's record certain; an identifier whose demographics contradict it is not a certain match"
    )


@pytest.mark.requirement("mpi@43")
def test_twins_are_two_people(fhir_client: EvidenceClient, unique: str) -> None:
    """twins (same family, birth date and address; other given name and matricule): neither certain nor probable"""
    family, born = _surname(unique, "Hoffmann"), _birth_date()
    home = ("9170", "Mertzig")
    luc = create(fhir_client, _person(unique, "Luc", family, born, "male", home, [national(matricule(born))]))
    tom = create(fhir_client, _person(unique, "Tom", family, born, "male", home, [national(matricule(born))]))
    entries = _entries(_match(fhir_client, _probe(luc)), "$match of Luc (a twin)")
    assert _grade_of(entries, luc) == "certain", f"$match of Luc's own record did not grade it certain: {entries}"
    grade = _grade_of(entries, tom)
    assert grade not in LIKELY, (
        f"$match of Luc graded his twin Tom (Patient/{tom['id']}: same family, birth date and address, another "
        f"given name and matricule) {grade}; twins are two people: at most a possible match"
    )


@pytest.mark.requirement("mpi@44")
@pytest.mark.parametrize("with_matricule", [True, False], ids=["with-matricule", "without-matricule"])
def test_maddy_and_maggy_are_a_probable_match(fhir_client: EvidenceClient, unique: str, with_matricule: bool) -> None:
    """a given name two letters off with the same family and birth date ("Maddy" / "Maggy") is probable"""
    family, born = _surname(unique, "Schmitt"), _birth_date()
    maddy = create(fhir_client, _person(unique, "Maddy", family, born, identifier=[national(matricule(born))]))
    own = [national(matricule(born))] if with_matricule else []
    maggy = _person(unique, "Maggy", family, born, address=("9012", "Ettelbruck"), identifier=own)
    grade = _grade_of(_entries(_match(fhir_client, _probe(maggy)), "$match of Maggy"), maddy)
    assert grade == "probable", (
        f"$match of Maggy {family}, born {born}{' with a matricule of her own' if own else ''}, graded Maddy "
        f"{family} (Patient/{maddy['id']}, same birth date) {grade or 'not at all'}; expected probable (SPEC section 3)"
    )


@pytest.mark.requirement("mpi@45")
def test_only_certain_matches_one_per_person(fhir_client: EvidenceClient, unique: str) -> None:
    """onlyCertainMatches=true: certain matches only, one record per person"""
    family, born = _surname(unique, "Reuter"), _birth_date()
    value = matricule(born)
    first = create(fhir_client, _person(unique, "Paul", family, born, "male", identifier=[national(value)]))
    second = create(fhir_client, _person(unique, "Paul", family, born, "male", identifier=[national(value)]))
    create(fhir_client, _person(unique, "Pol", family, born, "male"))  # a probable match, not a certain one
    entries = _entries(_match(fhir_client, _probe(first), onlyCertainMatches=True), "$match onlyCertainMatches")
    assert [grade for _, _, grade in entries] == ["certain"], (
        f"$match with onlyCertainMatches=true of a person with two records (Patient/{first['id']}, "
        f"Patient/{second['id']}) answered {entries}; expected exactly one entry, graded certain"
    )
    assert entries[0][0] in (first["id"], second["id"]), f"the one certain match is not the person: {entries}"


@pytest.mark.requirement("mpi@46")
def test_count_limits_the_answer(fhir_client: EvidenceClient, unique: str) -> None:
    """count=1 answers one entry, the best"""
    family, born = _surname(unique, "Kremer"), _birth_date()
    marc = create(fhir_client, _person(unique, "Marc", family, born, "male", identifier=[national(matricule(born))]))
    create(fhir_client, _person(unique, "Marc", family, born, "male"))
    entries = _entries(_match(fhir_client, _probe(marc), count=1), "$match with count=1")
    assert [res_id for res_id, _, _ in entries] == [marc["id"]], (
        f"$match with count=1 answered {entries}; expected one entry, Patient/{marc['id']} (the certain match)"
    )


@pytest.mark.requirement("mpi@47")
@pytest.mark.parametrize(
    "case", ["no resource", "an Observation", "count 0", "count -3", "count 2.5", "count as text", "not Parameters"]
)
def test_bad_requests_are_refused(fhir_client: EvidenceClient, unique: str, case: str) -> None:
    """$match without a Patient or with a count that is no positive integer: 400 with an OperationOutcome"""
    patient = _probe(_person(unique, "Anne", _surname(unique, "Muller"), _birth_date()))
    counts: dict[str, dict[str, Any]] = {
        "count 0": {"valueInteger": 0},
        "count -3": {"valueInteger": -3},
        "count 2.5": {"valueDecimal": 2.5},
        "count as text": {"valueString": "ten"},
    }
    if case == "no resource":
        body: Resource = {"resourceType": "Parameters", "parameter": [{"name": "count", "valueInteger": 5}]}
    elif case == "an Observation":
        observation = {"resourceType": "Observation", "status": "final", "code": {"text": "Heart rate"}}
        body = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": observation}]}
    elif case == "not Parameters":
        body = patient
    else:
        parameters = [{"name": "resource", "resource": patient}, {"name": "count", **counts[case]}]
        body = {"resourceType": "Parameters", "parameter": parameters}
    response = fhir_client.post("Patient/$match", json=body, headers={"Content-Type": FHIR_JSON})
    assert_error(response, 400, f"$match with {case}")


@pytest.mark.requirement("mpi@48")
def test_a_merged_away_record_is_never_answered(fhir_client: EvidenceClient, unique: str) -> None:
    """after $merge, $match answers the survivor and never the retired source"""
    family, born = _surname(unique, "Wagner"), _birth_date()
    source = create(fhir_client, _person(unique, "Carine", family, born))
    target = create(fhir_client, _person(unique, "Carine", family, born))
    merge = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{source['id']}"}},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{target['id']}"}},
        ],
    }
    merged = fhir_client.post("Patient/$merge", json=merge, headers={"Content-Type": FHIR_JSON})
    assert merged.status_code == 200, f"merging two records (data this check needs) answered {shown(merged)}"
    entries = _entries(_match(fhir_client, _probe(source)), "$match after a merge")
    ids = [res_id for res_id, _, _ in entries]
    assert source["id"] not in ids, f"$match answered the merged-away Patient/{source['id']} (active=false): {entries}"
    assert target["id"] in ids, f"$match did not answer the surviving Patient/{target['id']}: {entries}"


@pytest.mark.requirement("mpi@49")
def test_a_patient_token_cannot_match(tokens: LabTokens, unique: str) -> None:
    """$match with a patient's token is refused with 403"""
    probe = _probe(_person(unique, "Anne", _surname(unique, "Muller"), _birth_date()))
    with tokens.client_for("patient") as client:
        response = _match(client, probe)
    assert response.status_code == 403, (
        f"$match with a patient's token answered {shown(response)}; expected 403 (a patient must not search "
        "other people's records by demographics)"
    )


def _misspelt(family: str) -> str:
    return family.replace("tt", "t", 1)


@pytest.mark.requirement("mpi@50")
@pytest.mark.parametrize("error", ["family misspelt", "names swapped", "day and month swapped", "accents left out"])
def test_usual_entry_errors_are_tolerated(fhir_client: EvidenceClient, unique: str, error: str) -> None:
    """a probe with a usual entry error still finds the record, graded probable or certain"""
    family, born = _surname(unique, "Schmitt"), _birth_date()
    stored = create(fhir_client, _person(unique, "Hélène", family, born))
    probe = _probe(stored)
    if error == "family misspelt":
        probe["name"] = [{"family": _misspelt(family), "given": ["Hélène"]}]
    elif error == "names swapped":
        probe["name"] = [{"family": "Hélène", "given": [family]}]
    elif error == "day and month swapped":
        probe["birthDate"] = f"{born.year:04d}-{born.day:02d}-{born.month:02d}"
    else:
        probe["name"] = [{"family": family, "given": ["Helene"]}]
    grade = _grade_of(_entries(_match(fhir_client, probe), f"$match with {error}"), stored)
    assert grade in LIKELY, (
        f"$match of Hélène {family} (Patient/{stored['id']}) with the {error} graded the record "
        f"{grade or 'not at all'}; expected probable or certain"
    )
