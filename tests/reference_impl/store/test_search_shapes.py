"""A search's SQL is compiled once per shape and reused with other values: the reused SQL must find what
SQL built for those very values finds, on both backends, shape after shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection

from reference_impl.fhir.query import QueryParser, SearchRequest
from reference_impl.fhir.searchparams import registry
from reference_impl.platform import migrate_platform
from reference_impl.store import resources as store
from reference_impl.store.bounded_searches import few_matches, planned_once, within_one_record
from reference_impl.store.compiled_shapes import CompiledShapes, as_select
from reference_impl.store.counting import Counting, CountOfStatement
from reference_impl.store.database import Database
from reference_impl.store.schema import resources
from reference_impl.store.search_run import run_search
from reference_impl.store.search_sql import PAGE_COLUMNS, SearchSql
from reference_impl.store.sql_shapes import (
    Bound,
    Node,
    all_of,
    column,
    compare,
    count_of,
    page,
    plus,
)
from reference_impl.store.update_order import in_update_order
from tests.support.visibility import OwnRecord

P1_OBSERVATIONS = OwnRecord("p1", ("Observation",), via=("subject", "patient"))  # patient p1's own token
P1_ACCESS_LOG = OwnRecord("p1", ("AuditEvent",))

# Searches in the order run: each shape first with values that find something, then again with values
# that find something else (the SQL compiled for the first must not keep the first one's values), and
# shapes that differ only in a prefix, a modifier or an absent value (each must get SQL of its own).
SEARCHES: list[tuple[str | None, list[tuple[str, str]]]] = [
    ("Patient", [("family", "muller")]),
    ("Patient", [("family", "weber")]),
    ("Patient", [("family", " ")]),  # nothing left once normalised: every family
    ("Patient", [("family:exact", "Muller")]),
    ("Patient", [("family:exact", "Mullerova")]),
    ("Patient", [("family:contains", "ler")]),
    ("Patient", [("family:contains", "b_r")]),
    ("Patient", [("family", "muller"), ("given", "anne"), ("birthdate", "1970-03-01")]),
    ("Patient", [("family", "weber"), ("given", "luc"), ("birthdate", "1985-07-14")]),
    ("Patient", [("birthdate", "ge1980")]),
    ("Patient", [("birthdate", "lt1980")]),
    ("Patient", [("birthdate", "ap1970-03")]),
    ("Patient", [("birthdate", "ne1970-03-01")]),
    ("Patient", [("birthdate", "sa1975"), ("birthdate", "eb1990")]),
    ("Patient", [("gender", "female")]),
    ("Patient", [("gender", "male")]),
    ("Patient", [("gender:not", "male")]),
    ("Patient", [("identifier", "urn:oid:1.3.182.4.4|1970030112345")]),
    ("Patient", [("identifier", "urn:oid:1.3.182.4.4|1985071412345")]),
    ("Patient", [("identifier", "|1985071412345")]),
    ("Patient", [("identifier", "1970030112345")]),
    ("Patient", [("identifier", "urn:oid:1.3.182.4.4|")]),
    ("Patient", [("name:missing", "true")]),
    ("Patient", [("name:missing", "false")]),
    ("Patient", [("_id", "p1,p2")]),
    ("Patient", [("_id", "p3,p4")]),
    ("Patient", [("_id", "p3")]),
    ("Patient", [("_id:not", "p3")]),
    ("Patient", [("family", "muller,weber"), ("_sort", "birthdate")]),
    ("Patient", [("family", "muller,weber"), ("_sort", "-birthdate")]),
    ("Patient", [("_sort", "-_lastUpdated"), ("_count", "2")]),
    ("Patient", [("_sort", "_id"), ("_count", "2"), ("_offset", "2")]),
    ("Patient", [("_has:Observation:subject:code", "http://loinc.org|8867-4")]),
    ("Patient", [("_has:Observation:subject:code", "http://loinc.org|29463-7")]),
    ("Observation", [("subject", "Patient/p1")]),
    ("Observation", [("subject", "Patient/p2")]),
    ("Observation", [("subject", "p2")]),
    ("Observation", [("subject.family", "muller")]),
    ("Observation", [("subject.family", "weber")]),
    ("Observation", [("subject:Patient.birthdate", "lt1980")]),
    ("Observation", [("value-quantity", "gt70")]),
    ("Observation", [("value-quantity", "le70")]),
    ("Observation", [("value-quantity", "72|http://unitsofmeasure.org|kg")]),
    ("Observation", [("value-quantity", "72||kg")]),
    ("Observation", [("value-quantity", "ap80")]),
    ("Observation", [("code", "http://loinc.org|8867-4"), ("date", "ge2020-01-01")]),
    ("Observation", [("code", "http://loinc.org|29463-7"), ("date", "lt2020-01-01")]),
    ("Observation", [("code:text", "heart")]),
    ("Observation", [("code:text", "body")]),
    ("Observation", [("_lastUpdated", "gt2000-01-01")]),
    ("Observation", [("_lastUpdated", "lt2000-01-01")]),
    (None, [("_type", "Patient,Observation"), ("_id", "p1,o1")]),
    (None, [("_type", "Observation"), ("_id", "p1,o1")]),
]

PATIENTS = [
    ("p1", "Muller", "Anne", "1970-03-01", "female", "1970030112345"),
    ("p2", "Weber", "Luc", "1985-07-14", "male", "1985071412345"),
    ("p3", "Mullerova", "Anne", "1992-11-30", "female", "1992113012345"),
    ("p4", "Web_r", "Tom", "1970-03-15", "male", "1970031512345"),
]
OBSERVATIONS = [
    ("o1", "p1", "8867-4", "Heart rate", 72, "2021-05-01"),
    ("o2", "p2", "29463-7", "Body weight", 81.5, "2019-02-01"),
    ("o3", "p3", "29463-7", "Body weight", 64, "2022-08-09"),
]


def _load(conn: Connection) -> None:
    for pid, family, given, birth, gender, matricule in PATIENTS:
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.3.182.4.4", "value": matricule}],
            "name": [{"family": family, "given": [given]}],
            "gender": gender,
            "birthDate": birth,
        }
        store.save(conn, registry(), patient, pid, None, "PUT")
    store.save(conn, registry(), {"resourceType": "Patient", "gender": "unknown"}, "p5", None, "PUT")
    for oid, pid, code, text, kilos, date in OBSERVATIONS:
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": text},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": date,
            "valueQuantity": {"value": kilos, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        }
        store.save(conn, registry(), observation, oid, None, "PUT")


def _tree(type_name: str | None, params: list[tuple[str, str]]) -> Node:
    request = QueryParser(registry(), 50, 1000).parse(type_name, params, strict=True)
    sql = SearchSql()
    where = sql.where(type_name, request)
    return page(PAGE_COLUMNS, where, sql.order_by(request), request.count + 1, request.offset)


def _ids(rows: list[Any]) -> list[str]:
    return [f"{row[0]}/{row[1]}" for row in rows]


def test_sql_compiled_for_a_shape_finds_what_sql_built_for_the_values_finds(platform_db: Database) -> None:
    platform_db.run(_load, write=True)
    shapes, counts = CompiledShapes(), CompiledShapes()
    found: list[list[str]] = []
    with platform_db.transaction(write=False) as conn:
        for type_name, params in SEARCHES:
            tree = _tree(type_name, params)
            expected = _ids(list(conn.execute(as_select(tree)).all()))
            assert _ids(shapes.rows(conn, tree)) == expected, (type_name, params)
            found.append(expected)
            statement = CountOfStatement(as_select(tree))
            for up_to in (None, 1):
                counted = counts.rows(conn, count_of(tree, up_to))[0][0]
                assert counted == statement.count(conn, up_to), (type_name, params, up_to)
    assert all(found[:2]) and found[0] != found[1], "the corpus tells values of one shape apart"
    assert sum(map(bool, found)) > len(SEARCHES) // 2, "most searches find something"
    assert len(shapes) < len(SEARCHES), "searches of one shape share their SQL"
    assert len(counts) < 2 * len(SEARCHES)


# Searches planned once, each with criteria tested on each match of the one that picks few.
PLANNED_ONCE = [
    ("Observation", [("subject", "Patient/p1"), ("code", "http://loinc.org|8867-4")]),
    ("Observation", [("subject", "Patient/p2"), ("code", "http://loinc.org|8867-4")]),
    ("Observation", [("subject", "Patient/p2"), ("code:not", "http://loinc.org|8867-4")]),
    ("Observation", [("patient", "p3"), ("date", "ge2020"), ("value-quantity", "lt70")]),
    ("Observation", [("patient", "p1"), ("code:missing", "true")]),
    ("Observation", [("patient", "p1"), ("code:missing", "false"), ("code:text", "heart")]),
    ("Patient", [("identifier", "urn:oid:1.3.182.4.4|1970030112345"), ("gender:not", "male")]),
    ("Patient", [("identifier", "1985071412345"), ("gender", "female")]),
    ("Patient", [("_id", "p1,p2,p3"), ("family", "muller"), ("_sort", "-birthdate"), ("_count", "1")]),
    ("Patient", [("identifier", "urn:oid:1.3.182.4.4|1970030112345,1992113012345"), ("given", "anne,tom")]),
    ("Patient", [("family", "muller"), ("given", "anne"), ("birthdate", "1970-03-01")]),
    ("Patient", [("family", "weber"), ("birthdate", "1985-07-14,1970-03-01")]),
    ("Patient", [("gender", "male"), ("birthdate", "1992-11-30")]),
    # Two lookups that pick few: the tests ride in the first (the identifier), the birth date stays a lookup.
    ("Patient", [("identifier", "1985071412345"), ("family", "weber"), ("birthdate", "1985-07-14")]),
    ("Patient", [("identifier", "1985071412345"), ("family", "muller"), ("birthdate", "1985-07-14")]),
    # Ids carry no tests: the next lookup that picks few does.
    ("Patient", [("_id", "p1,p2,p3"), ("identifier", "1970030112345"), ("gender", "female")]),
]


def test_a_search_planned_once_finds_what_the_search_planned_for_its_values_finds(platform_db: Database) -> None:
    """The same matches and total whether the other criteria are sub-queries a plan may lead with or
    tests on each match (on PostgreSQL, its one generic plan, forced from the first run)."""
    platform_db.run(_load, write=True)
    query, sql = QueryParser(registry(), 50, 1000), SearchSql()
    found = []
    with platform_db.transaction(write=False) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        for type_name, params in PLANNED_ONCE:
            request = query.parse(type_name, params, strict=True)
            assert planned_once(request), params
            for_its_values = page(PAGE_COLUMNS, sql.where(type_name, request), sql.order_by(request), 50, 0)
            expected = _ids(list(conn.execute(as_select(for_its_values)).all()))
            searched = run_search(conn, request, counting=Counting.ACCURATE)
            assert [f"{m.type_name}/{m.id}" for m in searched.matches] == expected[: request.count], params
            assert searched.total == len(expected), params
            found.append(expected)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("RESET plan_cache_mode")
    assert sum(map(bool, found)) >= len(PLANNED_ONCE) // 2 and not all(found), "some find something, some nothing"


def test_shapes_differ_in_their_operators_and_absent_values_not_in_their_values() -> None:
    assert _tree("Patient", [("family", "muller")]) == _tree("Patient", [("family", "weber")])
    assert _tree("Patient", [("birthdate", "ge1980")]) == _tree("Patient", [("birthdate", "ge1990-02-03")])
    different = [
        [("family", "muller")],
        [("family", " ")],  # nothing left once normalised: no range at all
        [("family:exact", "muller")],
        [("given", "muller")],  # another parameter: its code is a value, but its table is the same
        [("birthdate", "ge1980")],
        [("birthdate", "lt1980")],
        [("identifier", "urn:oid:1.3.182.4.4|1")],
        [("identifier", "|1")],
        [("identifier", "1")],
        [("_id", "p1,p2")],
        [("_id", "p1")],
    ]
    trees = [_tree("Patient", params) for params in different]
    assert len({tree for tree in trees}) == len(trees) - 1  # family and given share one shape
    assert trees[0] == trees[3]


def test_the_least_recently_used_shape_goes_first_when_the_store_of_shapes_is_full(platform_db: Database) -> None:
    platform_db.run(_load, write=True)
    shapes = CompiledShapes(size=2)
    family, birthdate, gender = (
        ("Patient", [("family", "muller")]),
        ("Patient", [("birthdate", "lt1980")]),
        ("Patient", [("gender", "male")]),
    )
    with platform_db.transaction(write=False) as conn:
        for type_name, params in (family, birthdate, family, gender, family):
            tree = _tree(type_name, params)
            assert _ids(shapes.rows(conn, tree)) == _ids(list(conn.execute(as_select(tree)).all()))
    assert len(shapes) == 2
    kept = {tree for _, tree in shapes.shapes()}
    assert kept == {_tree(*family), _tree(*gender)}


def test_a_value_shared_by_two_places_of_a_shape_is_refused() -> None:
    shared = Bound("Patient")
    where = all_of(
        ("cmp", "eq", column(resources, "res_type"), shared), ("cmp", "ne", column(resources, "res_id"), shared)
    )
    with pytest.raises(ValueError, match="appears twice"):
        as_select(page(PAGE_COLUMNS, where, [], 1, 0))
    assert compare(column(resources, "res_id"), "eq", "a") == compare(column(resources, "res_id"), "eq", "b")


@pytest.mark.postgres
def test_one_shape_has_sql_of_its_own_for_each_backend(sqlite_db_url: str, postgres_url: str) -> None:
    shapes = CompiledShapes()  # as a process serving two stores would hold it
    tree = _tree("Patient", [("family", "muller")])
    for url in (sqlite_db_url, postgres_url, sqlite_db_url):
        db = Database(url)
        try:
            migrate_platform(db)
            if not db.run(_loaded, write=False):  # the second time on SQLite: the same file
                db.run(_load, write=True)
            assert db.run(lambda conn: _ids(shapes.rows(conn, tree)), write=False) == ["Patient/p1", "Patient/p3"]
        finally:
            db.dispose()
    assert len(shapes) == 2


def _loaded(conn: Connection) -> bool:
    return store.current(conn, "Patient", "p1") is not None


@pytest.mark.parametrize(
    ("type_name", "params", "within"),
    [
        ("Observation", [("subject", "Patient/p1")], True),
        ("Observation", [("subject:Patient", "p1"), ("code", "http://loinc.org|8867-4")], True),
        ("Observation", [("patient", "p1")], True),  # a parameter named patient names only Patients
        ("Observation", [("subject", "p1")], False),  # a subject may be a Group, a Device...
        ("Observation", [("patient", "p1,p2")], False),  # two records
        ("Observation", [("subject:Patient.family", "muller")], False),  # a chain: any number of records
        ("Observation", [("patient:missing", "false")], False),
        ("Observation", [("subject", "http://elsewhere.example/fhir/Patient/p1")], False),
        ("Observation", [("code", "http://loinc.org|8867-4")], False),
        (None, [("_type", "Observation"), ("_id", "o1")], False),  # the whole server: no one type
    ],
)
def test_a_search_within_one_record_sorts_its_matches_instead_of_walking_the_type_in_time_order(
    type_name: str | None, params: list[tuple[str, str]], within: bool
) -> None:
    request = QueryParser(registry(), 50, 1000).parse(type_name, params, strict=True)
    assert within_one_record(request) is within
    sorted_keys = [key[1] for key in SearchSql().order_by(request)]
    assert (plus(column(resources, "last_updated"), 0) in sorted_keys) is within
    assert (column(resources, "last_updated") in sorted_keys) is not within


# few: gathered then sorted; once: planned once; checked: some criterion tested on each match of the others.
@pytest.mark.parametrize(
    ("type_name", "params", "few", "once", "checked"),
    [
        ("Patient", [("identifier", "urn:oid:1.3.182.4.4|1960040303711")], True, True, False),
        ("Patient", [("identifier", "1960040303711")], True, True, False),  # a value without its system: still few
        (
            "Patient",
            [("identifier", "urn:oid:1.3.182.4.4|a"), ("identifier", "urn:oid:1.3.182.4.4|b")],
            True,
            True,
            False,
        ),
        ("DocumentReference", [("identifier", "urn:ietf:rfc:3986|urn:uuid:1")], True, True, False),  # masterIdentifier
        ("Patient", [("_id", "p1,p2")], True, True, False),
        ("Observation", [("patient", "p1")], True, True, False),
        ("Patient", [("identifier", "urn:oid:1.3.182.4.4|")], False, False, False),  # every identifier of a system
        ("Patient", [("identifier:not", "urn:oid:1.3.182.4.4|1")], False, False, False),
        ("Patient", [("identifier:missing", "true")], False, False, False),
        ("Patient", [("_id:not", "p1")], False, False, False),
        ("Patient", [("gender", "female")], False, False, False),  # a token, not an identifier: half the people
        ("Patient", [("family", "muller")], False, False, False),
        ("Patient", [("birthdate", "1970-03")], False, False, False),  # a month's births: not few in a country
        ("Patient", [("birthdate", "ge1970-03-01")], False, False, False),
        ("Patient", [("birthdate", "1970-03-01,1970")], False, False, False),
        ("Observation", [("code", "http://loinc.org|8867-4")], False, False, False),
        ("Observation", [("subject:Patient.identifier", "urn:oid:1.3.182.4.4|1")], False, False, False),  # a chain
        # Few matches, each tested for the other criteria, which may match most of the type for one value.
        ("Patient", [("identifier", "urn:oid:1.3.182.4.4|1"), ("active:not", "false")], True, True, True),
        # PDQm: the people born on one day, each tested for the names (which alone may match thousands).
        ("Patient", [("family", "muller"), ("given", "anne"), ("birthdate", "1970-03-01")], True, True, True),
        ("Patient", [("birthdate", "1970-03-01T10:00:00+01:00")], True, True, False),
        ("Observation", [("patient", "p1"), ("code", "http://loinc.org|8867-4")], True, True, True),
        ("Observation", [("patient", "p1"), ("date", "ge2020"), ("_sort", "-date")], True, True, True),
        ("Observation", [("patient", "p1"), ("code:missing", "true")], True, True, True),
        # ... unless a criterion is not the resource's own index rows: planned for their values each time.
        ("Observation", [("patient", "p1"), ("performer:Practitioner.name", "muller")], True, False, False),
        ("Observation", [("patient", "p1"), ("performer", "Practitioner/d1")], True, False, False),  # a reference
        (
            "Patient",
            [("identifier", "urn:oid:1.3.182.4.4|1"), ("_has:Observation:patient:code", "1234")],
            True,
            False,
            False,
        ),
        ("Patient", [("identifier", "urn:oid:1.3.182.4.4|1"), ("_lastUpdated", "ge2020")], True, False, False),
        (None, [("_type", "Patient"), ("_id", "p1")], False, False, False),  # the whole server: no one type
    ],
)
def test_a_search_of_few_matches_is_planned_once(
    type_name: str | None, params: list[tuple[str, str]], few: bool, once: bool, checked: bool
) -> None:
    """Few matches are gathered, then sorted (no walk of the type in time order to choose). A search with a
    criterion that picks few, the others tested on each of its matches, runs on one plan for any values (a
    prepared statement on PostgreSQL): no sub-query of those others could lead that plan."""
    request = QueryParser(registry(), 50, 1000).parse(type_name, params, strict=True)
    assert few_matches(request) is few
    assert planned_once(request) is once
    sorted_keys = [key[1] for key in SearchSql().order_by(request)]
    assert (plus(column(resources, "last_updated"), 0) in sorted_keys) is few
    kinds = set(_kinds(SearchSql().where(type_name, request, once)))
    # Tested on each match, through the owner's rows only: the parameter unindexed (no lookup index).
    assert ("exists_for_each_row" in kinds) is checked and ("unindexed" in kinds) is checked


def _kinds(node: object) -> Iterator[str]:
    if isinstance(node, tuple):
        if node and isinstance(node[0], str):
            yield node[0]
        for item in node:
            yield from _kinds(item)


def test_a_patients_own_reach_is_planned_once() -> None:
    """A patient's token: their searches pick few (their record), whatever else they ask."""
    for params, once in (([], True), ([("_id", "o1")], True), ([("code", "http://loinc.org|8867-4")], True)):
        request = QueryParser(registry(), 50, 1000).parse("Observation", params, strict=True)
        request.visibility = P1_OBSERVATIONS
        assert planned_once(request) is once
        assert few_matches(request)


def test_a_patients_own_reach_is_one_record(platform_db: Database) -> None:
    """A patient's token: every search of theirs is within their record, in the same order as the type's."""
    platform_db.run(_load, write=True)
    for when, oid in (("2023-01-01", "o4"), ("2024-01-01", "o5")):
        later = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": f"checked {when}"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": when,
        }
        platform_db.run(lambda conn, r=later, i=oid: store.save(conn, registry(), r, i, None, "PUT"), write=True)
    for order, expected in (("_lastUpdated", ["o1", "o4", "o5"]), ("-_lastUpdated", ["o5", "o4", "o1"])):
        request = QueryParser(registry(), 50, 1000).parse("Observation", [("_sort", order)], strict=True)
        request.visibility = P1_OBSERVATIONS
        assert within_one_record(request)
        with platform_db.transaction(write=False) as conn:
            assert [m.id for m in run_search(conn, request).matches] == expected


def _access(patient: str, named_twice: bool = False) -> dict[str, Any]:
    """An AuditEvent of an access to ``patient``'s record; ``named_twice``: the patient is its agent too, one of
    the references with an identifier, so that it has two index rows of ``patient`` for that patient."""
    who = {"reference": "Practitioner/d1"}
    if named_twice:
        who = {"reference": f"Patient/{patient}", "identifier": {"system": "urn:oid:1.3.182.4.4", "value": "1"}}
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "recorded": "2026-12-01T10:00:00Z",
        "agent": [{"who": who, "requestor": True}],
        "entity": [{"what": {"reference": f"Patient/{patient}"}}],
    }


def _access_logs(conn: Connection) -> None:
    """Accesses to p1's and p2's records: one at a time, some in one group (one last update for all, ties broken
    by id), some naming the patient twice; then one updated (the latest now) and one deleted."""
    for n in range(6):
        store.save(conn, registry(), _access("p1", named_twice=n % 3 == 0), f"a{n}", None, "PUT")
        store.save(conn, registry(), _access("p2"), f"b{n}", None, "PUT")
    store.create_all(conn, registry(), [(_access("p1", named_twice=n == 2), f"g{n}") for n in range(5)])
    first = store.current(conn, "AuditEvent", "a0")
    assert first is not None
    store.save(conn, registry(), {**_access("p1"), "outcome": "4"}, "a0", first, "PUT")
    deleted = store.current(conn, "AuditEvent", "a1")
    assert deleted is not None
    store.mark_deleted(conn, deleted)


P1_ACCESSES = [f"AuditEvent/{i}" for i in ("a0", "a2", "a3", "a4", "a5", "g0", "g1", "g2", "g3", "g4")]
P2_ACCESSES = [f"AuditEvent/b{n}" for n in range(6)]


@pytest.mark.parametrize(
    ("params", "own", "found"),
    [
        ([("patient", "p1")], False, P1_ACCESSES),
        ([("patient", "p1"), ("_sort", "_lastUpdated")], False, P1_ACCESSES),
        ([("patient", "p1"), ("_sort", "-_lastUpdated")], False, P1_ACCESSES),
        ([("entity", "Patient/p1"), ("_sort", "-_lastUpdated")], False, P1_ACCESSES),
        ([("patient", "p1,p2")], False, sorted(P1_ACCESSES + P2_ACCESSES)),
        ([("patient", "Patient/p2"), ("_sort", "-_lastUpdated")], False, P2_ACCESSES),
        ([("patient", "p9")], False, []),
        ([("patient", "p1")], True, P1_ACCESSES),  # the patient's own access log
        ([("patient", "Patient/p1"), ("_sort", "-_lastUpdated")], True, P1_ACCESSES),
        ([], True, P1_ACCESSES),  # every AuditEvent the patient may see
        ([("_sort", "-_lastUpdated")], True, P1_ACCESSES),
    ],
)
def test_a_page_read_off_the_references_index_is_the_page_of_every_match_sorted(
    platform_db: Database, params: list[tuple[str, str]], own: bool, found: list[str]
) -> None:
    """A search by one reference alone (or by none, within a patient's record), in update order, reads its pages
    off the index rows of the reference (``update_order.UpdateOrderedLookup``): every page and total are those of
    the search's matches found and sorted, a resource with two rows for the value once (a0, a3 and g2 name p1
    twice), an updated one in its new place (a0), a deleted one gone (a1)."""
    platform_db.run(_access_logs, write=True)
    query, sql = QueryParser(registry(), 50, 1000), SearchSql()

    def parsed(*more: tuple[str, str]) -> SearchRequest:
        request = query.parse("AuditEvent", [*params, *more], strict=True)
        if own:
            request.visibility = P1_ACCESS_LOG
        return request

    request = parsed()
    assert in_update_order(request) is not None
    every = page(PAGE_COLUMNS, sql.where("AuditEvent", request), sql.order_by(request), 100, 0)
    with platform_db.transaction(write=False) as conn:
        expected = _ids(list(conn.execute(as_select(every)).all()))
        for count in (1, 2, 5, 50):
            for offset in range(0, max(len(expected), 1), count):
                paged = parsed(("_count", str(count)), ("_offset", str(offset)))
                for counting in (Counting.ESTIMATE, Counting.ACCURATE):
                    matches = run_search(conn, paged, counting=counting)
                    assert _ids([(m.type_name, m.id) for m in matches.matches]) == expected[offset : offset + count]
                    assert (matches.total, matches.more) == (len(expected), offset + count < len(expected))
        assert run_search(conn, parsed(("_summary", "count"))).total == len(expected)
    assert sorted(expected) == found


@pytest.mark.parametrize(
    "params",
    [
        [("patient", "p1"), ("_sort", "date")],  # another order
        [("patient", "p1"), ("type", "rest")],  # another criterion
        [("patient:missing", "false")],
        [("patient.family", "muller")],  # a chain
        [("_id", "a1")],
        [("patient:identifier", "urn:oid:1.3.182.4.4|1")],  # identifiers do not lead the index
        [("patient", "http://elsewhere.example/fhir/Patient/p1")],  # nor do other servers' URLs
        [],  # the whole type: read off its time index
    ],
)
def test_other_searches_are_not_read_off_the_references_index(params: list[tuple[str, str]]) -> None:
    request = QueryParser(registry(), 50, 1000).parse("AuditEvent", params, strict=True)
    assert in_update_order(request) is None


def test_a_patients_own_record_of_patients_is_the_patient_not_read_off_the_references_index() -> None:
    request = QueryParser(registry(), 50, 1000).parse("Patient", [("link", "Patient/p2")], strict=True)
    assert in_update_order(request) is not None
    request.visibility = P1_OBSERVATIONS
    assert in_update_order(request) is None


@pytest.mark.parametrize(
    "params",
    [
        [("patient", "p2")],  # another patient's record: none of it within reach
        [("patient", "p1,p2")],
        [("agent", "Patient/p1")],  # the patient, but not by a parameter that puts an event in their record
    ],
)
def test_a_search_beyond_the_record_a_patient_sees_is_not_read_off_the_references_index(
    params: list[tuple[str, str]],
) -> None:
    """The caller's reach is a condition of its own on those matches: the index rows of the reference alone
    cannot say which are within it."""
    request = QueryParser(registry(), 50, 1000).parse("AuditEvent", params, strict=True)
    assert in_update_order(request) is not None
    request.visibility = P1_ACCESS_LOG
    assert in_update_order(request) is None
