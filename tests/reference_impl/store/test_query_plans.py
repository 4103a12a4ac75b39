"""The national flows' searches run on indexes on PostgreSQL at 10,000 patients, and a page counts no
further than the bound.

Each flow's statements are those ``run_search`` executes (captured as they run), then planned again
with ``EXPLAIN (ANALYZE, FORMAT JSON)``: no sequential scan over the store's big tables, an index
used. A statement run prepared (``bounded_searches.planned_once``) is explained as the generic plan PostgreSQL
runs it on from its sixth run, made for no values in particular. The store: 10,000 patients, 80,000
DocumentReferences, 100,000 AuditEvents and 20,000 MedicationRequests (``tests/support/plan_dataset.py``),
loaded once for the module.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from unittest.mock import patch

import orjson
import pytest
from psycopg import sql
from sqlalchemy import Connection, event, inspect, text

from reference_impl.fhir.query import QueryParser, SearchRequest
from reference_impl.fhir.searchparams import registry
from reference_impl.naming import NATIONAL_ID
from reference_impl.platform import migrate_platform
from reference_impl.seed.national import NationalPlan, NationalSource
from reference_impl.services.dsp import controls
from reference_impl.services.dsp.access import binary_owners
from reference_impl.store import bulk, compiled_shapes
from reference_impl.store.counting import EXACT_UP_TO, Counting
from reference_impl.store.database import Database
from reference_impl.store.driver import run_prepared
from reference_impl.store.migrations import (
    COMBINATIONS_OF_STRING_ROWS,
    EXTENDED_STATISTICS,
    GROWING_TABLES,
    ROWS_CHANGED_BEFORE_ANALYZE,
    STORE_MIGRATIONS,
    STRING_STATISTICS_TARGET,
    migrate,
)
from reference_impl.store.resources import create_all, history_page, new_id
from reference_impl.store.schema import INDEX_TABLES, INDEX_VALUE_COLUMNS
from reference_impl.store.search_run import SearchPage, run_search
from reference_impl.vault import MasterKey
from tests.support.plan_dataset import DOCTYPES, PRESCRIPTION_ID, Sizes, load, settle
from tests.support.postgres import drop_schema, new_schema_url
from tests.support.visibility import OwnRecord

T = TypeVar("T")

SIZES = Sizes(patients=10_000)
BIG_TABLES = frozenset({"resources", "resource_history", *(t.name for t in INDEX_TABLES.values())})
INDEX_NODES = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})
# Searches matching tens of thousands: their pages (and bounded counts) are read in order off an index.
READ_IN_ORDER = frozenset({"documents, latest first", "current documents (broad)", "current documents, page 101"})
# Searches with a criterion that picks a few resources (an identifier, ids, one patient's record, a birth
# date), their other criteria tested on each of those: one plan for any values (bounded_searches.planned_once).
PLANNED_ONCE = frozenset(
    {
        "PDQm family+given+birthdate",
        "PDQm identifier",
        "PIXm linked records",
        "PIXm replaced-by",
        "ITI-67 patient+status+type",
        "prescription by identifier",
        "access log, newest first",
    }
)


@contextmanager
def _platform_schema(postgres_unavailable: str | None) -> Iterator[tuple[str, str, Database]]:
    """A migrated store in a schema of its own on PostgreSQL (URL, schema, store), dropped afterwards."""
    if postgres_unavailable:
        pytest.skip(postgres_unavailable)
    url, schema = new_schema_url()
    db = Database(url)
    try:
        migrate_platform(db)
        yield url, schema, db
    finally:
        db.dispose()
        drop_schema(schema)


@pytest.fixture(scope="module")
def store(postgres_unavailable: str | None) -> Iterator[Database]:
    with _platform_schema(postgres_unavailable) as (_, schema, db):
        with db.transaction(write=True) as conn:
            load(conn, SIZES)
        settle(schema)
        yield db


@dataclass(frozen=True)
class Person:
    """A patient with the most common family name (the broadest PDQm search) and one of their documents."""

    id: str
    family: str
    given: str
    birth_date: str
    matricule: str
    document_type: str
    prescription: str


@pytest.fixture(scope="module")
def person(store: Database) -> Person:
    with store.transaction(write=False) as conn:
        content = conn.execute(
            text(
                "SELECT r.content FROM resources r JOIN idx_string s ON s.res_type = 'Patient' "
                "AND s.res_id = r.res_id AND s.param = 'family' AND s.value_norm = 'schmit' "
                "WHERE r.res_type = 'Patient' ORDER BY r.res_id LIMIT 1"
            )
        ).scalar_one()
        patient = orjson.loads(content)
        document = orjson.loads(_first_of(conn, "DocumentReference", patient["id"]))
        prescription = orjson.loads(_first_of(conn, "MedicationRequest", patient["id"]))
    return Person(
        patient["id"],
        patient["name"][0]["family"],
        patient["name"][0]["given"][0],
        patient["birthDate"],
        patient["identifier"][0]["value"],
        document["type"]["coding"][0]["code"],
        prescription["identifier"][0]["value"],
    )


def _first_of(conn: Connection, type_name: str, patient_id: str) -> str:
    return str(
        conn.execute(
            text(
                "SELECT r.content FROM resources r JOIN idx_reference x ON x.res_type = r.res_type "
                "AND x.res_id = r.res_id AND x.param = 'patient' AND x.target_id = :patient "
                "WHERE r.res_type = :type ORDER BY r.res_id LIMIT 1"
            ),
            {"patient": patient_id, "type": type_name},
        ).scalar_one()
    )


def flows(p: Person) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """The searches of the national flows (PIXm's are those ``services/mpi/pix.py`` runs)."""
    matricule = f"{NATIONAL_ID}|{p.matricule}"
    return {
        "PDQm family+given+birthdate": (
            "Patient",
            [("family", p.family), ("given", p.given), ("birthdate", p.birth_date)],
        ),
        "PDQm family (broad)": ("Patient", [("family", p.family)]),
        "PDQm identifier": ("Patient", [("identifier", matricule)]),
        "PIXm linked records": ("Patient", [("identifier", matricule), ("active:not", "false")]),
        "PIXm replaced-by": ("Patient", [("_id", p.id)]),
        "ITI-67 patient+status+type": (
            "DocumentReference",
            [("patient", p.id), ("status", "current"), ("type", f"{DOCTYPES}|{p.document_type}")],
        ),
        "prescription by identifier": ("MedicationRequest", [("identifier", f"{PRESCRIPTION_ID}|{p.prescription}")]),
        "prescription by matricule+status": (
            "MedicationRequest",
            [("subject:Patient.identifier", matricule), ("status", "active")],
        ),
        "prescription by patient.identifier": ("MedicationRequest", [("patient.identifier", matricule)]),
        "access log, newest first": ("AuditEvent", [("patient", p.id), ("date", "ge2020-01-01"), ("_sort", "-date")]),
        "documents, latest first": ("DocumentReference", [("_sort", "-_lastUpdated"), ("_count", "10")]),
        "current documents (broad)": ("DocumentReference", [("status", "current")]),
        "current documents, page 101": ("DocumentReference", [("status", "current"), ("_offset", "5000")]),
    }


def _parse(type_name: str, params: list[tuple[str, str]]) -> SearchRequest:
    return QueryParser(registry(), 50, 1000).parse(type_name, params, strict=True)


@dataclass(frozen=True)
class Ran:
    """A statement a search ran: its SQL and parameters, and whether it ran prepared, on one plan made for
    any values (``bounded_searches.planned_once``) rather than planned for its own."""

    sql: str
    parameters: Any
    prepared: bool = False


def _search(conn: Connection, request: SearchRequest, counting: Counting) -> tuple[SearchPage, list[Ran]]:
    """The page, and the statements that made it."""
    return _with_statements(conn, lambda: run_search(conn, request, counting=counting))


def _with_statements(conn: Connection, work: Callable[[], T]) -> tuple[T, list[Ran]]:
    """What ``work`` returns, and the statements it ran on ``conn``: through SQLAlchemy, or prepared."""
    statements: list[Ran] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if not statement.startswith("EXPLAIN"):
            statements.append(Ran(statement, parameters))

    def record_prepared(on: Connection, statement: str, parameters: Any, first_only: bool = False) -> Any:
        statements.append(Ran(statement, parameters, prepared=True))
        return run_prepared(on, statement, parameters, first_only)

    event.listen(conn, "before_cursor_execute", record)
    try:
        with patch.object(compiled_shapes, "run_prepared", record_prepared):
            result = work()
    finally:
        event.remove(conn, "before_cursor_execute", record)
    return result, statements


def _plan(conn: Connection, ran: Ran) -> dict[str, Any]:
    """The plan the statement ran on, run again with ``EXPLAIN ANALYZE``: for a prepared one, the plan
    PostgreSQL makes once for any values (its generic plan, which it uses after five runs)."""
    if not ran.prepared:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + ran.sql, ran.parameters).scalar_one()
        root: dict[str, Any] = plan[0]["Plan"]
        return root
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", ran.sql)))  # psycopg's placeholders, as $1, $2...
    numbered = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", ran.sql)
    driver: Any = conn.connection.driver_connection
    values = ", ".join(sql.Literal(ran.parameters[name]).as_string(driver) for name in names)
    conn.exec_driver_sql(f"PREPARE probed AS {numbered}")
    conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
    try:
        plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probed({values})").scalar_one()
    finally:
        conn.exec_driver_sql("RESET plan_cache_mode")
        conn.exec_driver_sql("DEALLOCATE probed")
    generic: dict[str, Any] = plan[0]["Plan"]
    return generic


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _master() -> MasterKey:
    return MasterKey.from_text(base64.b64encode(b"query-plans-tests-master-key-32b").decode())


NATIONAL_AS_OF = date(2026, 12, 4)
# The people searched for: 40 of any age, and 40 born in the years of the documents and audit events.
PEOPLE_OF_ANY_AGE = "SELECT content FROM resources WHERE res_type = 'Patient' ORDER BY res_id LIMIT 40 OFFSET 500"
RECENT_YEARS_US = int(datetime(NATIONAL_AS_OF.year - 3, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
PEOPLE_BORN_RECENTLY = (
    "SELECT r.content FROM resources r JOIN idx_date d ON d.res_type = r.res_type AND d.res_id = r.res_id "
    f"AND d.param = 'birthdate' AND d.low >= {RECENT_YEARS_US} "
    "WHERE r.res_type = 'Patient' ORDER BY r.res_id LIMIT 40"
)


@pytest.fixture(scope="module")
def national_patients(postgres_unavailable: str | None) -> Iterator[Database]:
    """10,000 people of the national dataset (names with their real frequencies), 2 documents each: dated
    in the last 8 years, with the audit events and prescriptions of recent years, they outnumber the birth
    dates among the index's dates, as in a national store."""
    with _platform_schema(postgres_unavailable) as (url, _, db):
        plan = NationalPlan(10_000, documents_per_patient=2, as_of=NATIONAL_AS_OF)
        assert bulk.load(url, NationalSource(plan), _master, workers=2).complete
        yield db


@pytest.mark.parametrize("people_sql", [PEOPLE_OF_ANY_AGE, PEOPLE_BORN_RECENTLY], ids=["any age", "born recently"])
def test_a_pdqm_search_reads_the_resources_of_its_matches_only(national_patients: Database, people_sql: str) -> None:
    # Family, given name and birth date each match many people alone and few together: the plan
    # intersects them on the index and reads the resources of the few. PostgreSQL, estimating a common
    # name's prefix at one row from too few statistics of the indexed strings, read the resource of every
    # patient with that given name first (migrations._string_estimates). For a birth date of the last
    # years, the extended statistics of the dates' type and parameter made the day common (most dates are
    # the documents' and audit events' of recent years) and the plan led with the name
    # (migrations._cheaper_search_planning).
    with national_patients.transaction(write=False) as conn:
        people = [orjson.loads(content) for content in conn.execute(text(people_sql)).scalars()]
        assert len(people) == 40
        read_for_matches = []
        checks = []  # (search, index) of each criterion checked once per candidate
        for person in people:
            name = person["name"][0]
            params = [("family", name["family"]), ("given", name["given"][0]), ("birthdate", person["birthDate"])]
            page, statements = _search(conn, _parse("Patient", params), Counting.ESTIMATE)
            plan = _plan(conn, statements[0])
            scans = [node for node in _nodes(plan) if node.get("Relation Name") == "resources"]
            read = sum(node["Actual Rows"] * node["Actual Loops"] for node in scans)
            read_for_matches.append((params, read, len(page.matches)))
            checks.extend(
                (params, node["Index Name"])
                for node in _nodes(plan)
                if node.get("Relation Name", "").startswith("idx_") and node["Actual Loops"] > 1
            )
    assert all(matches >= 1 for _, _, matches in read_for_matches)  # each finds the person searched for
    # Led by the birth date, a plan checks the names of the few people born that day (1-3 here; about 30 at
    # 1,000,000) on the index and reads the resources of the matches only; led by a common name, it read
    # 25-91 (with the default statistics), and 22-42 for 2 of those born recently (with the extended
    # statistics of the dates); with the names checked on each resource found, every one born that day.
    too_many = [found for found in read_for_matches if found[1] > found[2]]
    assert not too_many, f"resources read, matches: {too_many}"
    # Each candidate's names are checked on its own index rows (schema.OWNER_COVERS_LOOKUP), never by walking
    # every row of the name in the lookup index once per candidate.
    walked = [(params, index) for params, index in checks if "_owner" not in index]
    assert not walked, f"criteria checked per candidate by walking a lookup index: {walked}"


@pytest.mark.parametrize(
    "flow",
    [
        "PDQm family+given+birthdate",
        "PDQm family (broad)",
        "PDQm identifier",
        "PIXm linked records",
        "PIXm replaced-by",
        "ITI-67 patient+status+type",
        "prescription by identifier",
        "prescription by matricule+status",
        "prescription by patient.identifier",
        "access log, newest first",
        "documents, latest first",
        "current documents (broad)",
        "current documents, page 101",
    ],
)
def test_each_national_flow_runs_on_indexes(store: Database, person: Person, flow: str) -> None:
    type_name, params = flows(person)[flow]
    with store.transaction(write=False) as conn:
        page, statements = _search(conn, _parse(type_name, params), Counting.ESTIMATE)
        plans = [_plan(conn, ran) for ran in statements]
    assert page.matches, f"{flow}: the dataset should hold a match"
    assert len(plans) == (2 if page.more else 1)  # the page, and the bounded count unless it is the last page
    # A search led by a criterion that picks a few resources runs on one plan made for any values; the
    # others are planned for their own values (bounded_searches.planned_once).
    assert {ran.prepared for ran in statements} == {flow in PLANNED_ONCE}, f"{flow}: prepared or not"
    for plan in plans:
        nodes = list(_nodes(plan))
        scanned = [
            n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan" and n["Relation Name"] in BIG_TABLES
        ]
        assert not scanned, f"{flow}: sequential scan of {scanned}"
        assert INDEX_NODES & {n["Node Type"] for n in nodes}, f"{flow}: no index used"
        if flow in READ_IN_ORDER:
            assert not {"Sort", "Incremental Sort"} & {n["Node Type"] for n in nodes}, f"{flow}: matches sorted"
        if flow in PLANNED_ONCE:  # led by the few: no step reads the thousands a status or a date matches
            most = max(nodes, key=lambda n: n["Actual Rows"])
            assert most["Actual Rows"] < 100, f"{flow}: {most['Node Type']} {most.get('Index Name')} read many"
            # ... and each of the few is tested on its own index rows, found by the owner's index: a lookup
            # index walked once per match reads every row of a common value (a status) each time.
            per_match = {n.get("Index Name") for n in nodes if n.get("Relation Name", "").startswith("idx_")}
            per_match -= {n.get("Index Name") for n in nodes if n.get("Actual Loops") == 1}
            assert all("_owner" in str(index) for index in per_match), f"{flow}: tested through {per_match}"
            # ... before its resource is read: the resources' scan tests nothing (the tests sit in the lookup
            # of the few), so a candidate that fails one costs no read of a resource, often from disk at scale.
            late = [
                n["Filter"] for n in nodes if n.get("Relation Name") == "resources" and "SubPlan" in n.get("Filter", "")
            ]
            assert not late, f"{flow}: tested on each resource read: {late}"


LONG_LOG = 10_000  # one patient's accesses, all later than the store's 100,000 other AuditEvents


@pytest.mark.parametrize(
    ("params", "own"),
    [([], False), ([("_sort", "_lastUpdated")], False), ([("_sort", "-_lastUpdated")], False), ([], True)],
    ids=["default", "oldest", "newest", "the patient's own token"],
)
def test_a_long_access_log_is_paged_from_the_patients_events_not_from_every_event(
    store: Database, person: Person, params: list[tuple[str, str]], own: bool
) -> None:
    """A patient whose accesses are many and recent: their access log's page and its bounded count are
    made from that patient's events, not by walking every AuditEvent of the store in time order until the
    page is full. The planner chose that walk here (100,041 rows, 306 ms against 92 sorted): the patient's
    share of the events looked large, and it believes them spread evenly over time. The page is read off
    the first of the patient's index rows, in the pages' order (``update_order.UpdateOrderedLookup``): no step
    reads or sorts more rows than the page holds; the count reads the index rows alone, in no order. The
    events are added in a savepoint, analysed, and rolled back: the module's store stays as loaded."""
    event = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "action": "R",
        "recorded": "2026-12-01T10:00:00Z",
        "agent": [{"who": {"reference": "Practitioner/prac-1"}, "requestor": True}],
        "entity": [{"what": {"reference": f"Patient/{person.id}"}}],
    }
    with store.transaction(write=True) as conn:
        added = conn.begin_nested()
        create_all(conn, registry(), [(event, new_id()) for _ in range(LONG_LOG)])
        conn.execute(text("ANALYZE resources"))
        conn.execute(text("ANALYZE idx_reference"))
        request = _parse("AuditEvent", [("patient", person.id), *params])
        if own:
            request.visibility = OwnRecord(person.id, ("AuditEvent",))
        page, statements = _search(conn, request, Counting.ESTIMATE)
        plans = [list(_nodes(_plan(conn, ran))) for ran in statements]
        added.rollback()
    assert len(page.matches) == 50 and page.total is not None and page.total > EXACT_UP_TO
    page_plan, count_plan = plans  # the page and its bounded count
    sorted_by_time = [n for n in count_plan if "last_updated" in str(n.get("Sort Key"))]
    assert not sorted_by_time, "sorted in the pages' order only to be counted"
    most = max(page_plan, key=lambda n: n["Actual Rows"] * n["Actual Loops"])
    assert most["Actual Rows"] * most["Actual Loops"] <= 51, f"the page read {most['Node Type']}: {most}"
    assert not [n for n in count_plan if n.get("Relation Name") == "resources"], "counted from the resources"
    for nodes in (page_plan, count_plan):
        walked = [n for n in nodes if n.get("Index Name") == "ix_resources_type_updated_id"]
        assert not walked, f"every AuditEvent walked in time order: {walked[0]['Actual Rows']} rows"
        assert "ix_idx_reference_lookup_updated_id" in {n.get("Index Name") for n in nodes}, "the events looked up"


def test_a_search_planned_once_is_planned_by_postgresql_once_for_any_values(store: Database) -> None:
    """Prescriptions by identifier, ten of them on one connection: PostgreSQL plans the first five for
    their values, then runs its one generic plan (its own counters of the connection's prepared
    statements say so); a PDQm search by names alone (without a birth date) is prepared on no connection."""

    def plans(conn: Connection) -> tuple[int, int]:
        generic, custom = conn.execute(
            text(
                "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) FROM pg_prepared_statements "
                "WHERE statement LIKE :searched"
            ),
            {"searched": "%idx_token.system%"},
        ).one()
        return int(generic), int(custom)

    with store.transaction(write=False) as conn:
        before = plans(conn)
        for n in range(1, 11):
            request = _parse("MedicationRequest", [("identifier", f"{PRESCRIPTION_ID}|RX{n:010d}")])
            assert len(run_search(conn, request).matches) == 1
        generic, custom = (after - earlier for after, earlier in zip(plans(conn), before, strict=True))
        run_search(conn, _parse("Patient", [("family", "Schmit"), ("given", "Sofia")]))
        by_name = conn.execute(
            text(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%idx_string%' "
                "AND statement NOT LIKE '%idx_date%'"  # a search with a birth date to the day is planned once
            )
        ).scalar_one()
    assert generic + custom == 10 and generic >= 5, f"generic plans {generic}, custom plans {custom}"
    assert by_name == 0


@pytest.mark.parametrize(("type_name", "params"), [("CareTeam", ("subject", "patient")), ("Consent", ("patient",))])
def test_a_professionals_access_to_a_record_runs_on_indexes(
    store: Database, person: Person, type_name: str, params: tuple[str, ...]
) -> None:
    """Every access of a professional to a record finds its care relationships and consents: one query
    each (``controls.REFERENCING``, on the driver), the patient's rows found on the search index, then
    the resources' key. (The store holds a CareTeam per patient and a Consent for 1 in 20: with none, a
    plan walking every CareTeam costs nothing and the planner may choose it, as it did in CI when the
    visibility map was empty.)"""
    with store.transaction(write=False) as conn:
        values = controls.referencing_values(type_name, params, person.id)
        plan = _plan(conn, Ran(controls.REFERENCING.text(conn), values))
    nodes = list(_nodes(plan))
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], "no sequential scan"
    assert {"ix_idx_reference_lookup_updated_id", "resources_pkey"} <= {n.get("Index Name") for n in nodes}
    lookup = next(n for n in nodes if n.get("Index Name") == "ix_idx_reference_lookup_updated_id")
    assert person.id in lookup["Index Cond"], "the patient's rows found by the index, not filtered"


@pytest.mark.parametrize(
    ("binary", "owner"),
    [("bin-7", "pat-8"), ("bin-8", "pat-9"), ("bin-none", None)],
    ids=["named by a relative URL", "named by an absolute URL", "named by no document"],
)
def test_a_binarys_document_is_found_on_indexes(store: Database, binary: str, owner: str | None) -> None:
    """ITI-68: whoever reads a Binary, its patient is the subject of the document naming it by its attachment
    URL (``access.binary_owners``), found on an index among 80,000 documents' URLs, half of them absolute:
    an absolute URL by its reversed ending (``schema.URI_REVERSED``), not by a scan of every URL."""
    with store.transaction(write=False) as conn:
        found, statements = _with_statements(
            conn, lambda: binary_owners(conn, {"resourceType": "Binary", "id": binary})
        )
        plans = [_plan(conn, ran) for ran in statements if "idx_uri" in ran.sql]
    assert found == ({f"Patient/{owner}"} if owner else set())
    assert len(plans) == (1 if binary == "bin-7" else 2)  # by the relative URL, then (if none) by the ending
    for plan in plans:
        nodes = list(_nodes(plan))
        assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], "no sequential scan"
        most = max(nodes, key=lambda n: n["Actual Rows"])
        assert most["Actual Rows"] <= 1, f"{most['Node Type']} {most.get('Index Name')} read many"
    if len(plans) == 2:
        assert "ix_idx_uri_reversed" in {n.get("Index Name") for n in _nodes(plans[1])}


@pytest.mark.parametrize(("type_name", "hidden"), [("DocumentReference", ()), (None, ("AuditEvent",))])
def test_history_pages_run_on_indexes_and_count_to_the_bound(
    store: Database, type_name: str | None, hidden: tuple[str, ...]
) -> None:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if not statement.startswith("EXPLAIN"):
            statements.append((statement, parameters))

    with store.transaction(write=False) as conn:
        event.listen(conn, "before_cursor_execute", record)
        page = history_page(conn, type_name, None, None, None, 50, 0, hidden)
        event.remove(conn, "before_cursor_execute", record)
        page_plan, count_plan = (list(_nodes(_plan(conn, Ran(*statement)))) for statement in statements)
    assert len(page.versions) == 50 and page.more and page.total is not None and page.total > EXACT_UP_TO
    assert [n["Actual Rows"] for n in count_plan if n["Node Type"] == "Limit"] == [EXACT_UP_TO + 1]
    for nodes in (count_plan, page_plan):
        assert {n["Node Type"] for n in nodes} & INDEX_NODES and "Seq Scan" not in {n["Node Type"] for n in nodes}
        assert "Sort" not in {n["Node Type"] for n in nodes}  # read in order off the index (ties aside)
    if type_name is not None:
        assert "Incremental Sort" not in {n["Node Type"] for n in page_plan}  # ties too


def test_a_broad_search_counts_no_further_than_the_bound(store: Database) -> None:
    request = _parse("DocumentReference", [("status", "current")])
    current = SIZES.documents - SIZES.documents // 10
    with store.transaction(write=False) as conn:
        estimated, statements = _search(conn, request, Counting.ESTIMATE)  # the page, then the count
        counted_rows = [
            node["Actual Rows"] for node in _nodes(_plan(conn, statements[1])) if node["Node Type"] == "Limit"
        ]
        accurate, _ = _search(conn, request, Counting.ACCURATE)
        omitted, _ = _search(conn, request, Counting.NONE)
    assert counted_rows == [EXACT_UP_TO + 1]  # the count stopped at the bound
    assert estimated.total is not None and estimated.total > EXACT_UP_TO  # then the planner's estimate
    assert accurate.total == current
    assert omitted.total is None and omitted.more and len(omitted.matches) == 50


def test_summary_count_is_exact_beyond_the_bound(store: Database) -> None:
    request = _parse("DocumentReference", [("status", "superseded"), ("_summary", "count")])
    with store.transaction(write=False) as conn:
        page, _ = _search(conn, request, Counting.NONE)
    assert page.total == SIZES.documents // 10 and not page.matches


def test_the_loader_writes_the_index_rows_of_the_indexer(store: Database) -> None:
    """The generated store is one ``resources.save`` would have made: each sampled resource's index rows
    are those the registry derives from its content."""
    with store.transaction(write=False) as conn:
        for type_name, res_id in [
            ("Patient", "pat-17"),
            ("DocumentReference", "doc-30"),
            ("AuditEvent", "ae-4"),
            ("MedicationRequest", "rx-3"),
            ("CareTeam", "ct-5"),
            ("Consent", "co-40"),
        ]:
            content = conn.execute(
                text("SELECT content FROM resources WHERE res_type = :t AND res_id = :i"), {"t": type_name, "i": res_id}
            ).scalar_one()
            expected = {
                (kind, code, row)
                for kind, rows in registry().index_rows(orjson.loads(content)).items()
                for code, row in rows
            }
            stored = set()
            for kind, table in INDEX_TABLES.items():
                columns = [table.c.param, *(table.c[c] for c in INDEX_VALUE_COLUMNS[kind])]
                query = (
                    table.select()
                    .with_only_columns(*columns)
                    .where(table.c.res_type == type_name, table.c.res_id == res_id)
                )
                stored |= {(kind, row[0], tuple(row[1:])) for row in conn.execute(query)}
            assert stored == expected, type_name


def _indexes_after(db: Database, version: int, older: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """The names of the indexes of ``older``'s tables after migration ``version``, on a store migrated to the
    one before whose indexes of those tables were ``older``'s (name: columns)."""
    migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version < version))
    with db.transaction(write=True) as conn:
        for table, indexes in older.items():
            for index in inspect(conn).get_indexes(table):
                conn.execute(text(f'DROP INDEX "{index["name"]}"'))
            for name, columns in indexes.items():
                conn.execute(text(f"CREATE INDEX {name} ON {table} ({columns})"))
    assert migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version <= version)) == [version]
    with db.transaction(write=False) as conn:
        return {table: {i["name"] for i in inspect(conn).get_indexes(table)} for table in older}


def test_a_store_made_before_gains_the_indexes_of_search_at_scale(db_url: str) -> None:
    """Migration 4 on a store whose indexes are those of migration 1 as first released."""
    older = {
        "resources": {"ix_resources_type_updated": "res_type, last_updated"},
        "resource_history": {"ix_history_type_updated": "res_type, last_updated", "ix_history_updated": "last_updated"},
        "idx_token": {"ix_idx_token_lookup": "res_type, param, code, system"},
    }
    db = Database(db_url)
    try:
        names = _indexes_after(db, 4, older)
    finally:
        db.dispose()
    assert names["resources"] == {"ix_resources_type_updated_id"}
    assert names["resource_history"] == {"ix_history_type_updated_id", "ix_history_server_updated"}
    assert names["idx_token"] == {"ix_idx_token_lookup_id", "ix_idx_token_owner"}


def test_a_store_made_before_gains_the_statistics_of_string_searches(db_url: str) -> None:
    """Migration 5 on a store migrated to 4: PostgreSQL keeps more statistics of the indexed strings."""
    db = Database(db_url)
    try:
        migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version <= 4))
        assert migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version <= 5)) == [5]
        with db.transaction(write=False) as conn:
            target = (
                conn.execute(
                    text(
                        "SELECT attstattarget FROM pg_attribute "
                        "WHERE attrelid = 'idx_string'::regclass AND attname = 'value_norm'"
                    )
                ).scalar_one()
                if db.dialect == "postgresql"
                else None
            )
    finally:
        db.dispose()
    assert target == (STRING_STATISTICS_TARGET if db.dialect == "postgresql" else None)


def test_a_store_made_before_has_its_statistics_refreshed_after_a_fixed_count_of_changes(db_url: str) -> None:
    """Migration 6 on a store migrated to 5: on PostgreSQL, autovacuum analyzes each growing table once
    ``ROWS_CHANGED_BEFORE_ANALYZE`` of its rows changed, not a tenth of the table (a million rows at
    national scale, while a type new since the last ANALYZE is planned as one row)."""
    db = Database(db_url)
    try:
        migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version <= 5))
        assert migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version <= 6)) == [6]
        with db.transaction(write=False) as conn:
            options = (
                dict(
                    conn.execute(
                        text("SELECT relname, reloptions FROM pg_class WHERE oid = ANY(CAST(:tables AS regclass[]))"),
                        {"tables": list(GROWING_TABLES)},
                    ).all()
                )
                if db.dialect == "postgresql"
                else {}
            )
    finally:
        db.dispose()
    if db.dialect == "postgresql":
        wanted = ["autovacuum_analyze_scale_factor=0", f"autovacuum_analyze_threshold={ROWS_CHANGED_BEFORE_ANALYZE}"]
        assert options == {table: wanted for table in GROWING_TABLES}
    else:
        assert options == {}  # SQLite's statistics are refreshed by the store itself (Database)


def test_a_store_made_before_plans_its_searches_with_fewer_extended_statistics(db_url: str) -> None:
    """Migration 7 on a store migrated to 6: on PostgreSQL, no extended statistics of the dates' type and
    parameter, and fewer combinations of the strings' (``test_a_pdqm_search_reads_the_resources_of_its_matches_only``
    shows what the first did to a search)."""
    db = Database(db_url)
    try:
        migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version <= 6))
        statistics_sql = (
            "SELECT stxname, stxstattarget FROM pg_statistic_ext WHERE stxrelid = ANY(CAST(:t AS regclass[]))"
        )
        tables = {"t": list(EXTENDED_STATISTICS)}
        with db.transaction(write=False) as conn:
            before = dict(conn.execute(text(statistics_sql), tables).all()) if db.dialect == "postgresql" else {}
        assert migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version <= 7)) == [7]
        with db.transaction(write=False) as conn:
            after = dict(conn.execute(text(statistics_sql), tables).all()) if db.dialect == "postgresql" else {}
    finally:
        db.dispose()
    if db.dialect == "postgresql":
        assert set(before) == {f"st_{table}" for table in EXTENDED_STATISTICS}
        assert after == {
            **{name: target for name, target in before.items() if name != "st_idx_date"},
            "st_idx_string": COMBINATIONS_OF_STRING_ROWS,
        }
    else:
        assert before == after == {}


def test_a_store_made_before_checks_a_candidates_names_and_dates_off_the_index(db_url: str) -> None:
    """Migration 8 on a store whose owner indexes of strings and dates are (type, id) alone: they gain the
    parameter and the values (``test_a_pdqm_search_reads_the_resources_of_its_matches_only`` shows why)."""
    older = {
        table: {f"ix_{table}_lookup_id": f"res_type, param, {columns}, res_id", f"ix_{table}_owner": "res_type, res_id"}
        for table, columns in (("idx_string", "value_norm"), ("idx_date", "low, high"))
    }
    db = Database(db_url)
    try:
        names = _indexes_after(db, 8, older)
    finally:
        db.dispose()
    assert names == {table: {f"ix_{table}_lookup_id", f"ix_{table}_owner_lookup"} for table in older}


def test_a_store_made_before_stamps_its_references_index_rows_with_their_resources_last_update(db_url: str) -> None:
    """Migration 9 on a store whose idx_reference rows have no last update and whose lookup index is (type,
    parameter, target id, target type, id): each row gains its resource's last update, the lookup index
    holds a value's rows in that order, and the access log's page is read off it."""
    db = Database(db_url)
    event = {"resourceType": "AuditEvent", "entity": [{"what": {"reference": "Patient/p1"}}]}
    try:
        migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version < 9))
        with db.transaction(write=True) as conn:
            conn.execute(text("DROP INDEX ix_idx_reference_lookup_updated_id"))
            conn.execute(text("ALTER TABLE idx_reference DROP COLUMN last_updated"))
            conn.execute(
                text(
                    "CREATE INDEX ix_idx_reference_lookup_id "
                    "ON idx_reference (res_type, param, target_id, target_type, res_id)"
                )
            )
            for n, when in enumerate((1_700_000_000_000_000, 1_600_000_000_000_000)):
                body = orjson.dumps({**event, "id": f"e{n}", "meta": {"versionId": "1"}}).decode()
                conn.execute(
                    text("INSERT INTO resources VALUES ('AuditEvent', :id, 1, :when, :deleted, :body, NULL)"),
                    {"id": f"e{n}", "when": when, "deleted": False, "body": body},
                )
                conn.execute(
                    text(
                        "INSERT INTO idx_reference (res_type, res_id, param, target_type, target_id, url) "
                        "VALUES ('AuditEvent', :id, 'patient', 'Patient', 'p1', 'Patient/p1')"
                    ),
                    {"id": f"e{n}"},
                )
        assert migrate(db, tuple(m for m in STORE_MIGRATIONS if m.version <= 9)) == [9]
        with db.transaction(write=False) as conn:
            stamped = conn.execute(text("SELECT res_id, last_updated FROM idx_reference ORDER BY res_id")).all()
            names = {i["name"] for i in inspect(conn).get_indexes("idx_reference")}
            newest_first = _parse("AuditEvent", [("patient", "p1"), ("_sort", "-_lastUpdated"), ("_count", "1")])
            page = run_search(conn, newest_first)
    finally:
        db.dispose()
    assert stamped == [("e0", 1_700_000_000_000_000), ("e1", 1_600_000_000_000_000)]
    assert names == {"ix_idx_reference_lookup_updated_id", "ix_idx_reference_owner", "ix_idx_reference_target"}
    assert ([m.id for m in page.matches], page.total) == (["e0"], 2)


def test_a_store_made_before_finds_a_binarys_document_by_its_absolute_url_on_an_index(db_url: str) -> None:
    """Migration 10 on a store whose URLs are indexed as written only: on PostgreSQL, their reversals are
    indexed too (``schema.URI_REVERSED``); SQLite, which has no ``reverse``, keeps its indexes."""
    as_written = {"ix_idx_uri_lookup_id": "res_type, param, value, res_id", "ix_idx_uri_owner": "res_type, res_id"}
    older = {"idx_uri": as_written}
    db = Database(db_url)
    try:
        names = _indexes_after(db, 10, older)
    finally:
        db.dispose()
    reversed_urls = {"ix_idx_uri_reversed"} if db_url.startswith("postgresql") else set()
    assert names == {"idx_uri": {"ix_idx_uri_lookup_id", "ix_idx_uri_owner", *reversed_urls}}
