"""How well and how fast does the patient index match? ``$match`` (ITI-119) on a population with known duplicates.

Generates ``--patients`` people (Luxembourgish, German, French and Portuguese names, valid matricules
for most, twins among them: same family, birth date, address and phone, another given name and
matricule), loads them into a reference server (a separate process, as the other benchmarks run it)
in transaction Bundles, then sends ``--probes`` probes to ``POST Patient/$match`` over HTTP, one at a
time, with a system token. A probe is a stored person's record as another institution would enter it:
exact with the matricule (expected certain), or without identifiers and with one of the usual errors
(a typo in a name, given and family swapped, day and month transposed, a birth date digit off, accents
or fields left out: expected probable); a twin with the twin's own matricule (the other twin must not
be certain or probable); a person carrying someone else's matricule (that someone must not be
certain); and people the index does not hold (nothing may be certain or probable).

Printed: precision per grade (the share of entries of that grade that are the probe's person), recall
(the share of probes expecting a grade whose person came back at that grade or better), recall of
certain+probable over every probe of a stored person, and the p50/p95 time of a $match call.

    python benchmarks/mpi_match.py [--patients 10000] [--probes 1000] [--db sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from stdnum import luhn, verhoeff

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.servers import demo_system_headers, postgres_schema, reference_server

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
NATIONAL_ID = "urn:oid:1.3.182.4.4"
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
GRADES = ("certain", "probable", "possible")
FAMILIES = (  # noqa: SIM905 (names read better as prose)
    "Schmit Schmitz Muller Weber Wagner Hoffmann Thill Kremer Reuter Kieffer Hansen Klein Schroeder Becker "
    "Meyer Majerus Feller Wagener Welter Weis Ries Jacoby Kayser Lentz Goerens Steichen Schiltz Theisen Frisch "
    "Wirtz Berchem Konsbruck Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon "
    "Laurent Lefèvre Michel Garcia François Silva Santos Ferreira Pereira Rodrigues Gonçalves Fernandes Lopes "
    "Marques Almeida Ribeiro Carvalho Teixeira Sousa Gomes Martins Conceição Müller Schneider Fischer Schäfer "
    "Koch Bauer Richter Wolf Schröder Neumann Schwarz Zimmermann Krüger Hartmann Lange"
).split()
FEMALE = (  # noqa: SIM905 (names read better as prose)
    "Marie Anne Sophie Claire Julie Léa Emma Sarah Laura Nathalie Sandra Carole Martine Monique Josiane "
    "Christiane Françoise Ana Maria Sofia Beatriz Inês Joana Catarina Mariana Chantal Danielle Isabelle Nicole "
    "Sylvie Petra Sabine Heike Ursula Birgit Maddy Lena Mia Hélène Gaby"
).split()
MALE = (  # noqa: SIM905 (names read better as prose)
    "Jean Pierre Paul Marc Luc Tom Jos Fernand Guy Romain Claude Henri Nico Yves Patrick Laurent Michel "
    "Georges João José Pedro Rui Tiago Nuno Carlos Miguel André Thomas Lucas Max Felix Jonas Lukas Stefan "
    "Jürgen Klaus Dieter Frank Gilles Mathis"
).split()
PLACES = (
    ("1931", "Luxembourg"), ("4041", "Esch-sur-Alzette"), ("3510", "Dudelange"), ("9012", "Ettelbruck"),
    ("9170", "Mertzig"), ("8001", "Strassen"), ("7201", "Walferdange"), ("6401", "Echternach"),
    ("9501", "Wiltz"), ("4501", "Differdange"), ("3401", "Dudelange"), ("5201", "Sandweiler"),
)  # fmt: skip
TWIN_SHARE = 0.02  # of the people: one more record, their twin


@dataclass
class Probe:
    kind: str
    resource: dict[str, Any]
    person: int | None  # index of the stored person the probe is, None for someone the index does not hold
    expected: str | None  # the grade the person should come back at (at least)
    not_likely: int | None = None  # a stored person who must not come back certain or probable


class Matricules:
    """Valid matricules, never the same twice: a sequence number per birth date (from ``first`` on)."""

    def __init__(self, first: int = 0) -> None:
        self.used: Counter[date] = Counter()
        self.first = first

    def __call__(self, born: date) -> str:
        self.used[born] += 1
        body = f"{born:%Y%m%d}{self.first + self.used[born]:03d}"
        return f"{body}{luhn.calc_check_digit(body)}{verhoeff.calc_check_digit(body)}"


def person(rng: random.Random, matricule: Matricules) -> dict[str, Any]:
    gender = rng.choice(("female", "male"))
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 90 * 365))
    postal, city = rng.choice(PLACES)
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": rng.choice(FAMILIES), "given": [rng.choice(FEMALE if gender == "female" else MALE)]}],
        "gender": gender,
        "birthDate": born.isoformat(),
        "address": [{"line": [f"{rng.randrange(1, 200)}, rue Neuve"], "postalCode": postal, "city": city}],
        "telecom": [{"system": "phone", "value": f"+352 6{rng.randrange(10**7, 10**8)}"}],
    }  # fmt: skip
    if rng.random() < 0.85:
        patient["identifier"] = [{"system": NATIONAL_ID, "value": matricule(born)}]
    return patient


def twin_of(rng: random.Random, patient: dict[str, Any], matricule: Matricules) -> dict[str, Any]:
    """Same family, birth date, address and phone; a clearly different given name and another matricule."""
    twin: dict[str, Any] = orjson.loads(orjson.dumps(patient))
    names = FEMALE if patient["gender"] == "female" else MALE
    given = patient["name"][0]["given"][0]
    twin["name"][0]["given"] = [rng.choice([n for n in names if n[0] != given[0] and not set(n) >= set(given)])]
    twin["identifier"] = [{"system": NATIONAL_ID, "value": matricule(date.fromisoformat(patient["birthDate"]))}]
    return twin


def population(rng: random.Random, size: int) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """``size`` records, and for each twin the index of the other."""
    people: list[dict[str, Any]] = []
    twins: dict[int, int] = {}
    matricule = Matricules()
    while len(people) < size:
        people.append(person(rng, matricule))
        if rng.random() < TWIN_SHARE and len(people) < size:
            twins[len(people) - 1], twins[len(people)] = len(people), len(people) - 1
            if "identifier" not in people[-1]:  # twins are told apart by their matricules
                born = date.fromisoformat(people[-1]["birthDate"])
                people[-1]["identifier"] = [{"system": NATIONAL_ID, "value": matricule(born)}]
            people.append(twin_of(rng, people[-1], matricule))
    return people, twins


def typo(rng: random.Random, word: str) -> str:
    at = rng.randrange(1, len(word)) if len(word) > 1 else 0
    letter = rng.choice("aeiourstnlm")
    return rng.choice((word[:at] + word[at + 1 :], word[:at] + letter + word[at:], word[:at] + letter + word[at + 1 :]))


def digit_off(rng: random.Random, born: date) -> str:
    """``born`` (YYYY-MM-DD) with one of its digits changed, still a valid day."""
    text = born.isoformat()
    while True:
        at = rng.choice((2, 3, 5, 6, 8, 9))
        changed = text[:at] + rng.choice("0123456789".replace(text[at], "")) + text[at + 1 :]
        try:
            date.fromisoformat(changed)
        except ValueError:
            continue
        return changed


def without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def variant(rng: random.Random, patient: dict[str, Any], kind: str) -> dict[str, Any]:
    """``patient`` as another institution entered it: ``kind`` says which error."""
    probe: dict[str, Any] = orjson.loads(orjson.dumps(patient))
    probe.pop("id", None)
    probe.pop("meta", None)
    name = probe["name"][0]
    if kind != "exact with matricule":
        probe.pop("identifier", None)
    born = date.fromisoformat(probe["birthDate"])
    if kind == "family typo":
        name["family"] = typo(rng, name["family"])
    elif kind == "given typo":
        name["given"] = [typo(rng, name["given"][0])]
    elif kind == "names swapped":
        probe["name"] = [{"family": name["given"][0], "given": [name["family"]]}]
    elif kind == "day and month transposed":
        probe["birthDate"] = f"{born.year:04d}-{born.day:02d}-{born.month:02d}"
    elif kind == "birth date digit off":
        probe["birthDate"] = digit_off(rng, born)
    elif kind == "accents and case":
        family, given = without_accents(name["family"]).upper(), without_accents(name["given"][0]).lower()
        probe["name"] = [{"family": family, "given": [given]}]
    elif kind == "no birth date":
        del probe["birthDate"]
    elif kind == "no address, gender or phone":
        for field in ("address", "gender", "telecom"):
            probe.pop(field, None)
    return probe


ERRORS = (
    "exact",
    "family typo",
    "given typo",
    "names swapped",
    "day and month transposed",
    "birth date digit off",
    "accents and case",
    "no birth date",
    "no address, gender or phone",
)


def probes(rng: random.Random, people: list[dict[str, Any]], twins: dict[int, int], count: int) -> list[Probe]:
    made: list[Probe] = []
    with_matricule = [i for i, p in enumerate(people) if "identifier" in p]
    twin_list = sorted(twins)
    strangers = Matricules(first=900)  # sequences the population never reaches: nobody's matricule
    for n in range(count):
        slot = n % 14
        if slot == 0:
            i = rng.choice(with_matricule)
            made.append(Probe("exact with matricule", variant(rng, people[i], "exact with matricule"), i, "certain"))
        elif slot == 1 and twin_list:
            i = rng.choice(twin_list)
            made.append(Probe("twin", variant(rng, people[i], "exact with matricule"), i, "certain", twins[i]))
        elif slot == 2:
            i, other = rng.sample(with_matricule, 2)
            probe = variant(rng, people[i], "exact")
            probe["identifier"] = people[other]["identifier"]
            made.append(Probe("someone else's matricule", probe, i, "probable", other))
        elif slot == 3:
            made.append(Probe("not in the index", person(rng, strangers), None, None))
        else:
            kind = ERRORS[(slot - 4) % len(ERRORS)]
            if kind == "day and month transposed":
                i = rng.choice([i for i, p in enumerate(people) if transposable(p["birthDate"])])
            else:
                i = rng.randrange(len(people))
            made.append(Probe(kind, variant(rng, people[i], kind), i, "probable"))
    return made


def transposable(day: str) -> bool:
    """Whether swapping day and month gives another valid day."""
    return int(day[8:]) <= 12 and day[5:7] != day[8:]


def load(base: str, people: list[dict[str, Any]]) -> list[str]:
    ids = []
    with httpx.Client(timeout=600, headers=demo_system_headers(base)) as client:
        for start in range(0, len(people), 500):
            entries = [
                {"resource": p, "request": {"method": "POST", "url": "Patient"}} for p in people[start : start + 500]
            ]
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            response = client.post(base, content=orjson.dumps(bundle), headers=FHIR_JSON)
            response.raise_for_status()
            ids += [
                e["response"]["location"].split("Patient/", 1)[1].split("/", 1)[0] for e in response.json()["entry"]
            ]
    return ids


def run_probes(base: str, made: list[Probe]) -> tuple[list[list[tuple[str, str]]], list[float]]:
    answers, seconds = [], []
    with httpx.Client(timeout=60, headers=demo_system_headers(base)) as client:
        for probe in made:
            parameters = [{"name": "resource", "resource": probe.resource}]
            body = orjson.dumps({"resourceType": "Parameters", "parameter": parameters})
            started = time.perf_counter()
            response = client.post(f"{base}/Patient/$match", content=body, headers=FHIR_JSON)
            seconds.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"$match answered {response.status_code}: {response.text[:500]}")
            answers.append(
                [
                    (e["resource"]["id"], ext["valueCode"])
                    for e in response.json().get("entry", [])
                    for ext in e["search"].get("extension", [])
                    if ext["url"] == MATCH_GRADE
                ]
            )
    return answers, seconds


def report(made: list[Probe], answers: list[list[tuple[str, str]]], ids: list[str], seconds: list[float]) -> None:
    right, graded = Counter[str](), Counter[str]()
    expected, found_at = Counter[str](), Counter[str]()
    stored_probes = likely_found = wrongly_likely = 0
    for probe, answer in zip(made, answers, strict=True):
        truth = ids[probe.person] if probe.person is not None else None
        forbidden = ids[probe.not_likely] if probe.not_likely is not None else None
        for res_id, grade in answer:
            graded[grade] += 1
            right[grade] += res_id == truth
            wrongly_likely += grade in ("certain", "probable") and (res_id == forbidden or truth is None)
        grade_of_truth = next((g for r, g in answer if r == truth), None)
        if probe.expected is not None:
            expected[probe.expected] += 1
            rank = GRADES.index(grade_of_truth) if grade_of_truth else len(GRADES)
            found_at[probe.expected] += rank <= GRADES.index(probe.expected)
        if truth is not None:
            stored_probes += 1
            likely_found += grade_of_truth in ("certain", "probable")
    for grade in GRADES:
        precision = right[grade] / graded[grade] if graded[grade] else float("nan")
        line = f"  {grade:<9} precision {precision:.3f} ({right[grade]}/{graded[grade]})"
        if expected[grade]:
            line += f"   recall {found_at[grade] / expected[grade]:.3f} ({found_at[grade]}/{expected[grade]})"
        print(line)
    print(
        f"  certain+probable recall {likely_found / stored_probes:.3f} "
        f"({likely_found}/{stored_probes} probes of stored people)"
    )
    print(f"  twins, holders of a borrowed matricule and unknown people graded certain or probable: {wrongly_likely}")
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(f"$match time: p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms ({len(ms)} calls)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=1_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=119)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    people, twins = population(rng, args.patients)
    made = probes(rng, people, twins, args.probes)
    with tempfile.TemporaryDirectory() as tmp:
        if args.db == "sqlite":
            measure(f"sqlite:///{Path(tmp) / 'match.db'}", people, twins, made)
        else:
            with postgres_schema() as url:
                measure(url, people, twins, made)


def measure(db_url: str, people: list[dict[str, Any]], twins: dict[int, int], made: list[Probe]) -> None:
    with reference_server(db_url) as base:
        started = time.perf_counter()
        ids = load(base, people)
        loaded = time.perf_counter() - started
        print(f"population: {len(people):,} patients ({len(twins) // 2} twin pairs), loaded in {loaded:.1f} s")
        answers, seconds = run_probes(base, made)
    kinds = Counter(p.kind for p in made)
    print(f"probes: {len(made):,} ({', '.join(f'{n} {k}' for k, n in kinds.items())})")
    report(made, answers, ids, seconds)


if __name__ == "__main__":
    main()
