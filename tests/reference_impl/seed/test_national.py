"""The national dataset: deterministic, valid, in the published proportions, and loaded in bulk so that
the platform serves it exactly as if every resource had been written over HTTP."""

from __future__ import annotations

import base64
import gc
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, func, select

from reference_impl.app import create_app
from reference_impl.fhir import index_row_memo
from reference_impl.fhir.searchparams import registry
from reference_impl.naming import NATIONAL_ID, PLATFORM_ID
from reference_impl.platform import migrate_platform
from reference_impl.seed import national
from reference_impl.seed.national import NationalPlan, NationalSource
from reference_impl.services.dsp.demo import PUBLISHED_COUNTS
from reference_impl.services.mpi import matricule
from reference_impl.settings import Settings
from reference_impl.store import bulk, bulk_rows
from reference_impl.store.database import Database
from reference_impl.store.schema import INDEX_TABLES, INDEX_VALUE_COLUMNS, STAMPED, history, resources
from reference_impl.vault import MasterKey
from tests.conftest import BACKENDS
from tests.support.postgres import drop_schema, new_schema_url, query
from tests.support.servers import sqlite_url, threaded_server
from tests.support.tokens import mint

MASTER_TEXT = base64.b64encode(b"national-dataset-tests-key-32byt").decode()
AS_OF = date(2026, 12, 4)
# The directory and 4 chunks of people, dated today: its care relationships are current whenever the tests run.
SMALL = NationalPlan(200, as_of=datetime.now(UTC).date(), chunk_persons=50)


def master() -> MasterKey:
    return MasterKey.from_text(MASTER_TEXT)


def resources_of(plan: NationalPlan) -> Iterator[dict[str, Any]]:
    source = NationalSource(plan)
    for number in range(source.chunk_count):
        yield from source.chunk(number)


@pytest.fixture(scope="module")
def population() -> list[dict[str, Any]]:
    """2,000 people and their records, generated once for the module's tests of the generator."""
    return list(resources_of(NationalPlan(2000, as_of=AS_OF)))


def test_a_seed_always_makes_the_same_dataset_and_another_seed_another() -> None:
    plan = NationalPlan(200, as_of=AS_OF, chunk_persons=50)
    assert list(resources_of(plan)) == list(resources_of(NationalPlan(200, as_of=AS_OF, chunk_persons=50)))
    other = NationalPlan(200, seed=7, as_of=AS_OF, chunk_persons=50)
    assert list(NationalSource(other).chunk(2)) != list(NationalSource(plan).chunk(2))


def test_a_chunk_is_the_same_whichever_chunks_were_made_before_it() -> None:
    alone = list(NationalSource(SMALL).chunk(3))
    after_others = [list(NationalSource(SMALL).chunk(n)) for n in (1, 2, 3)][-1]
    assert alone == after_others


def test_every_person_has_a_valid_matricule_of_their_own(population: list[dict[str, Any]]) -> None:
    by_person: dict[str, set[str]] = {}
    for patient in (r for r in population if r["resourceType"] == "Patient"):
        values = [i["value"] for i in patient["identifier"] if i["system"] == NATIONAL_ID]
        for value in values:
            assert matricule.problem(value) is None, value
            assert value.startswith(patient["birthDate"].replace("-", ""))
            by_person.setdefault(value, set()).add(patient["id"][:12])  # nat-p0000001, whatever the record
    assert len(by_person) == 2000
    assert all(len(people) == 1 for people in by_person.values())


def test_some_people_have_two_records_linked_and_near_duplicates_left_apart(population: list[dict[str, Any]]) -> None:
    patients = {r["id"]: r for r in population if r["resourceType"] == "Patient"}

    def platform_id(patient: dict[str, Any]) -> str:
        return str(next(i["value"] for i in patient["identifier"] if i["system"] == PLATFORM_ID))

    second = [p for i, p in patients.items() if i.endswith("-b")]
    near = [p for i, p in patients.items() if i.endswith("-x")]
    assert 100 < len(second) < 230 and 15 < len(near) < 75  # 8% and 2% of 2,000
    for record in second:
        first = patients[record["id"][:-2]]
        assert platform_id(record) == platform_id(first) and record["identifier"][0] != first["identifier"][0]
    for record in near:
        first = patients[record["id"][:-2]]
        assert platform_id(record) != platform_id(first)
        assert not any(i["system"] == NATIONAL_ID for i in record["identifier"])
        assert record["birthDate"] == first["birthDate"] and record["name"] != first["name"]


def test_documents_follow_the_agencys_proportions(population: list[dict[str, Any]]) -> None:
    documents = [r for r in population if r["resourceType"] == "DocumentReference"]
    with_documents = {d["subject"]["reference"] for d in documents}
    assert len(documents) / 2000 == pytest.approx(8.0, rel=0.1)
    assert len(with_documents) / 2000 == pytest.approx(national.ACTIVE_SHARE, abs=0.04)
    types = Counter(d["type"]["coding"][0]["code"] for d in documents)
    published = sum(PUBLISHED_COUNTS.values())
    for code in ("PATSUMMARY", "CERTIFICATE", "DIAGREP", "PREVREP", "IMAGING", "LABRESULT"):
        assert types[code] / len(documents) == pytest.approx(PUBLISHED_COUNTS[code] / published, abs=0.015), code
    assert set(types) <= set(PUBLISHED_COUNTS)
    assert all(d["status"] == "current" and d["content"][0]["attachment"]["data"] for d in documents)


@pytest.mark.parametrize("trial", [index_row_memo.TRIAL, 100])
def test_the_index_rows_it_remembers_are_those_of_the_registry(population: list[dict[str, Any]], trial: int) -> None:
    memo = index_row_memo.IndexRowMemo(registry(), trial=trial)
    for resource in population[:6_000]:
        remembered = Counter((t, row) for t, rows in memo.rows(resource) for row in rows)
        expected = Counter(
            (t, (code, *row)) for t, rows in registry().index_rows(resource).items() for code, row in rows
        )
        assert remembered == expected, resource["id"]
    # Every way was taken: groups remembered by their top-level elements (a status, the patient), by the
    # values their paths select (a document's content type: its attachment holds its own data), and
    # with the shorter trial, groups whose values never came back (an identifier) evaluated every time.
    groups = [group for plan in memo._plans.values() for group in plan]
    assert any(group.remembered and not group.by_leaves and group.found for group in groups)
    assert any(group.remembered and group.by_leaves and group.found for group in groups)
    assert any(not group.remembered and group.keys is not None for group in groups) == (trial == 100)


def test_a_group_whose_elements_never_repeat_is_remembered_by_the_values_its_paths_select() -> None:
    memo = index_row_memo.IndexRowMemo(registry(), trial=50)
    evaluated: list[str] = []
    evaluate = memo._evaluate

    def counted(params: list[Any], resource: dict[str, Any]) -> Any:
        evaluated.extend(p.code for p in params if p.code == "contenttype")
        return evaluate(params, resource)

    memo._evaluate = counted  # type: ignore[method-assign]
    for n in range(400):
        content = {"attachment": {"contentType": "text/plain", "data": base64.b64encode(b"%d" % n).decode()}}
        document = {"resourceType": "DocumentReference", "id": f"d{n}", "status": "current", "content": [content]}
        rows = [row for _, typed in memo.rows(document) for row in typed]
        assert ("contenttype", None, "text/plain", None) in rows, rows
    # 50 evaluated during the trial keyed by the whole attachment, then 1 once keyed by the content type.
    assert len(evaluated) == 51, len(evaluated)


# --- loaded into a store ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A store holding SMALL, loaded in bulk (PostgreSQL: in two processes), on each backend."""
    unavailable = request.getfixturevalue("postgres_unavailable") if request.param == "postgresql" else None
    with empty_store(request.param, tmp_path_factory.mktemp("national"), unavailable) as url:
        result = bulk.load(url, NationalSource(SMALL), master, workers=2)
        assert result.complete and result.resources == sum(1 for _ in resources_of(SMALL))
        yield url


@contextmanager
def empty_store(backend: str, folder: Path, postgres_unavailable: str | None) -> Iterator[str]:
    """A migrated, empty store on ``backend`` (its URL: SQLite in ``folder``, PostgreSQL in a schema of its
    own, dropped afterwards)."""
    schema = None
    if backend == "sqlite":
        url = sqlite_url(folder)
    else:
        if postgres_unavailable:
            pytest.skip(postgres_unavailable)
        url, schema = new_schema_url()
    try:
        db = Database(url)
        migrate_platform(db)
        db.dispose()
        yield url
    finally:
        if schema is not None:
            drop_schema(schema)


def counts(url: str) -> tuple[int, int, dict[str, int]]:
    """(current rows, history rows, index rows per table) of a store."""
    db = Database(url)
    try:

        def work(conn: Connection) -> tuple[int, int, dict[str, int]]:
            current = conn.execute(select(func.count()).select_from(resources)).scalar_one()
            versions = conn.execute(select(func.count()).select_from(history)).scalar_one()
            index = {n: conn.execute(select(func.count()).select_from(t)).scalar_one() for n, t in INDEX_TABLES.items()}
            return current, versions, index

        return db.run(work, write=False)
    finally:
        db.dispose()


def expected_counts(plan: NationalPlan) -> tuple[int, int, dict[str, int]]:
    rows = bulk_rows.RowMaker(master()).rows(resources_of(plan))
    return rows.count, rows.count, {name: len(found) for name, found in rows.index.items()}


def test_every_row_a_save_writes_is_there_once(store_url: str) -> None:
    assert counts(store_url) == expected_counts(SMALL)


def test_a_load_leaves_its_tables_analysed_and_on_postgresql_vacuumed(store_url: str) -> None:
    if not store_url.startswith("postgresql"):  # SQLite has no visibility maps: its planner's statistics
        with closing(sqlite3.connect(store_url.removeprefix("sqlite:///"))) as conn:
            analysed = {row[0] for row in conn.execute("SELECT tbl FROM sqlite_stat1")}
        assert {"resources", "resource_history", "idx_token", "idx_reference"} <= analysed
        return
    schema = store_url.rsplit("schema=", 1)[1]
    # VACUUM fills the visibility map that index-only scans need: each table was vacuumed once the load
    # ended. (How many pages it could mark all-visible depends on other sessions' open snapshots, which
    # the tests running beside this one hold: not a fact about the load.)
    vacuumed = query(
        "SELECT min(vacuum_count) FROM pg_stat_user_tables "
        "WHERE schemaname = %s AND relname IN ('resources', 'resource_history')",
        schema,
    )
    assert isinstance(vacuumed, int) and vacuumed > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_load_stopped_after_some_chunks_continues_where_it_stopped(
    backend: str, tmp_path: Path, postgres_unavailable: str | None
) -> None:
    with empty_store(backend, tmp_path, postgres_unavailable) as url:
        source = NationalSource(SMALL)
        first = bulk.load(url, source, master, stop_after=2)
        assert (first.chunks_loaded, first.complete) == (2, False)
        rest = bulk.load(url, source, master)
        assert rest.chunks_loaded == source.chunk_count - 2 and rest.complete
        assert counts(url) == expected_counts(SMALL)
        again = bulk.load(url, source, master)  # nothing left: loads nothing, duplicates nothing
        assert again.chunks_loaded == 0 and counts(url) == expected_counts(SMALL)
        with pytest.raises(bulk.LoadRefused):
            bulk.load(url, NationalSource(NationalPlan(300, as_of=SMALL.as_of, chunk_persons=50)), master)


@pytest.fixture(scope="module")
def platform(store_url: str) -> Iterator[tuple[httpx.Client, Any, str]]:
    """The demo platform (``--seed demo``) started on the nationally seeded store, over real HTTP."""
    app = create_app(Settings(db_url=store_url, seed="demo", master_key=MASTER_TEXT))
    with threaded_server(app) as base, httpx.Client(base_url=base + "/", timeout=30) as client:
        origin = base.removesuffix("/fhir")
        client.headers.update({"Authorization": f"Bearer {mint(app, origin)}", "Accept": "application/fhir+json"})
        yield client, app, origin


def one_of_each_type() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for resource in resources_of(SMALL):
        if resource["resourceType"] != "AuditEvent":  # the platform alone writes those (405 over HTTP)
            found.setdefault(resource["resourceType"], resource)
    return found


def index_rows_of(url: str, type_name: str, res_id: str) -> Counter[tuple[Any, ...]]:
    db = Database(url)
    try:

        def work(conn: Connection) -> Counter[tuple[Any, ...]]:
            """The rows' parameters and values; their resource's last update, where they carry it, checked."""
            found: Counter[tuple[Any, ...]] = Counter()
            key = (resources.c.res_type == type_name, resources.c.res_id == res_id)
            last_updated = conn.execute(select(resources.c.last_updated).where(*key)).scalar_one()
            for name, table in INDEX_TABLES.items():
                query = select(table).where(table.c.res_type == type_name, table.c.res_id == res_id)
                for row in conn.execute(query).mappings():
                    if name == STAMPED:
                        assert row["last_updated"] == last_updated
                    found[(name, *(row[c] for c in ("param", *INDEX_VALUE_COLUMNS[name])))] += 1
            return found

        return db.run(work, write=False)
    finally:
        db.dispose()


def test_a_loaded_resource_is_stored_as_the_same_resource_written_over_http(
    platform: tuple[httpx.Client, Any, str], store_url: str
) -> None:
    """Each type's first resource, written again over HTTP under another id (the platform's rules run on
    it), is served alike and has the same index rows as the loaded one."""
    client, _, _ = platform
    for type_name, resource in one_of_each_type().items():
        twin_id = f"twin-{resource['id']}"
        written = client.put(f"{type_name}/{twin_id}", json={**resource, "id": twin_id})
        assert written.status_code == 201, written.text
        loaded, twin = client.get(f"{type_name}/{resource['id']}").json(), client.get(f"{type_name}/{twin_id}").json()
        for served in (loaded, twin):
            served.pop("id"), served.pop("meta")
        assert loaded == twin == {k: v for k, v in resource.items() if k != "id"}, type_name
        assert index_rows_of(store_url, type_name, resource["id"]) == index_rows_of(store_url, type_name, twin_id)


def test_the_national_flows_find_the_loaded_data(platform: tuple[httpx.Client, Any, str]) -> None:
    client, _, _ = platform
    population = list(resources_of(SMALL))
    patient = next(r for r in population if r["id"] == "nat-p0000003")
    name = patient["name"][0]
    pdqm = client.get(
        "Patient", params={"family": name["family"], "given": name["given"][0], "birthdate": patient["birthDate"]}
    ).json()
    assert patient["id"] in [e["resource"]["id"] for e in pdqm["entry"]]
    own = sorted(
        r["id"]
        for r in population
        if r["resourceType"] == "DocumentReference" and r["subject"] == {"reference": f"Patient/{patient['id']}"}
    )
    found = client.get(
        "DocumentReference", params={"patient": patient["id"], "status": "current", "_count": 200}
    ).json()
    assert sorted(e["resource"]["id"] for e in found.get("entry", [])) == own
    matricule_value = next(i["value"] for i in patient["identifier"] if i["system"] == NATIONAL_ID)
    pix = client.get("Patient/$ihe-pix", params={"sourceIdentifier": f"{NATIONAL_ID}|{matricule_value}"}).json()
    assert {"reference": f"Patient/{patient['id']}"} in [p.get("valueReference") for p in pix["parameter"]]
    prescription = [r for r in population if r["resourceType"] == "MedicationRequest"][-1]  # the first has a twin
    identifier = prescription["identifier"][0]
    by_number = client.get("MedicationRequest", params={"identifier": f"{identifier['system']}|{identifier['value']}"})
    assert [e["resource"]["id"] for e in by_number.json()["entry"]] == [prescription["id"]]
    log = client.get("AuditEvent", params={"patient": patient["id"]}).json()
    assert log["entry"]  # the reads above are in the patient's access log


def test_a_professional_reads_the_records_of_their_patients_only(platform: tuple[httpx.Client, Any, str]) -> None:
    client, app, origin = platform
    population = list(resources_of(SMALL))
    treating = next(r for r in population if r["resourceType"] == "CareTeam" and r["id"].startswith("nat-care-"))
    role = treating["participant"][0]["member"]["reference"]
    patient = treating["subject"]["reference"].removeprefix("Patient/")
    claims = {"sub": role, "client_id": "eqlab-demo-webapp", "subject_role": "doctor", "purpose_of_use": "TREAT"}
    token = mint(app, origin, **claims, scope="user/*.cruds", fhirUser=role)
    headers = {"Authorization": f"Bearer {token}"}
    mine = client.get("DocumentReference", params={"patient": patient, "status": "current"}, headers=headers)
    assert mine.status_code == 200
    has_documents = any(
        r["resourceType"] == "DocumentReference" and r["subject"] == treating["subject"] for r in population
    )
    assert bool(mine.json().get("entry")) == has_documents
    practitioner = role.replace("PractitionerRole/nat-role-", "Practitioner/nat-prac-")
    teams = {
        r["subject"]["reference"]
        for r in population
        if r["resourceType"] == "CareTeam" and r["participant"][0]["member"]["reference"] in (role, practitioner)
    }
    stranger = next(r["id"] for r in population if r["resourceType"] == "Patient" and f"Patient/{r['id']}" not in teams)
    refused = client.get("DocumentReference", params={"patient": stranger, "status": "current"}, headers=headers)
    assert refused.status_code == 403


class WatchedSource:
    """``SMALL``'s chunks, noting whether the cyclic garbage collector was on as each resource was made."""

    def __init__(self) -> None:
        self.inner = NationalSource(SMALL)
        self.name = self.inner.name
        self.chunk_count = self.inner.chunk_count
        self.collector_on: list[bool] = []

    def parameters(self) -> dict[str, Any]:
        return self.inner.parameters()

    def chunk(self, number: int) -> Iterator[dict[str, Any]]:
        for resource in self.inner.chunk(number):
            self.collector_on.append(gc.isenabled())
            yield resource


@pytest.mark.parametrize("enabled_before", [True, False])
def test_a_chunk_is_made_without_cyclic_garbage_collection_and_the_collector_is_left_as_it_was(
    tmp_path: Path, enabled_before: bool
) -> None:
    source = WatchedSource()
    with empty_store("sqlite", tmp_path, None) as url:
        was = gc.isenabled()
        (gc.enable if enabled_before else gc.disable)()
        try:
            result = bulk.load(url, source, master)
            assert gc.isenabled() is enabled_before
        finally:
            (gc.enable if was else gc.disable)()
        assert result.complete and len(source.collector_on) == result.resources
        assert not any(source.collector_on)
        assert counts(url) == expected_counts(SMALL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_loading_a_chunk_leaves_no_reference_cycles(
    backend: str, tmp_path: Path, postgres_unavailable: str | None
) -> None:
    """A loading process runs without the cyclic garbage collector (``bulk._worker``): what a chunk
    makes must all go by reference counting."""
    with empty_store(backend, tmp_path, postgres_unavailable) as url:
        db = Database(url)
        source = NationalSource(SMALL)
        pending = bulk.prepare(db, source)
        bulk.load_chunks(db, source, master(), pending[:1])  # the first chunk opens the pool's connection
        gc.collect()
        was = gc.isenabled()
        gc.disable()
        try:
            bulk.load_chunks(db, source, master(), pending[1:3])
            assert gc.collect() == 0
        finally:
            (gc.enable if was else gc.disable)()
            db.dispose()
