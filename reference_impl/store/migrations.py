"""Versioned schema migrations, applied on start in one transaction.

Each migration has a number and runs once; ``schema_migrations`` records what ran. A migration
is frozen once released: changes to an existing table get a new migration rather than an edit
of an old one. Concurrent starts are safe (PostgreSQL advisory lock; SQLite's single writer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, inspect, select, text
from sqlalchemy.schema import CreateIndex

from reference_impl.fhir.dates import now_instant
from reference_impl.store import schema
from reference_impl.store.database import Database

MIGRATION_LOCK_KEY = 7_202_611  # arbitrary, fixed: identifies eqlab's migration lock

_bookkeeping = MetaData()
schema_migrations = Table(
    "schema_migrations",
    _bookkeeping,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", BigInteger, nullable=False),
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _core_store(conn: Connection) -> None:
    tables = [schema.resources, schema.history, *schema.INDEX_TABLES.values()]
    schema.metadata.create_all(conn, tables=tables)


def _sealed_documents(conn: Connection) -> None:
    # Migration 1 creates the tables as schema.py defines them now, ``sealed`` included: only a store
    # made before this migration lacks the column.
    for table in (schema.resources, schema.history):
        if "sealed" not in {c["name"] for c in inspect(conn).get_columns(table.name)}:
            conn.execute(
                text(f"ALTER TABLE {table.name} ADD COLUMN sealed {table.c.sealed.type.compile(conn.dialect)}")
            )
    schema.metadata.create_all(conn, tables=[schema.document_keys])


# Index rows' type, parameter and value are far from independent (a DocumentReference's ``status`` row
# says ``current`` 9 times in 10, no Patient row does): PostgreSQL, multiplying their frequencies,
# guessed 5 times too few ``status=current`` documents and gathered every match to cut a page of 50.
# Their most common combinations, gathered by ANALYZE, put its estimates within a few percent.
EXTENDED_STATISTICS = {
    "idx_token": ("res_type", "param", "code"),
    "idx_string": ("res_type", "param", "value_norm"),
    "idx_reference": ("res_type", "param", "target_type"),
    "idx_date": ("res_type", "param"),
    "idx_uri": ("res_type", "param", "value"),
}


def _search_plans_at_scale(conn: Connection) -> None:
    # The index of a type's resources by last update gains the id that breaks ties: a search's pages,
    # in that order, are read off it rather than sorted (search_sql.SearchSql.order_by).
    # So do history pages, newest first, off the history's indexes read backwards. The index tables'
    # lookup indexes gain the id: a criterion's matches come off the index alone.
    index_tables = schema.INDEX_TABLES.values()
    replaced = ["ix_resources_type_updated", "ix_history_type_updated", "ix_history_updated"]
    replaced += [f"ix_{table.name}_lookup" for table in index_tables]
    for name in replaced:
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    for table in [schema.resources, schema.history, *index_tables]:
        _create_indexes(conn, table)
    if conn.dialect.name == "postgresql":
        for name, columns in EXTENDED_STATISTICS.items():
            conn.execute(text(f"CREATE STATISTICS IF NOT EXISTS st_{name} (mcv) ON {', '.join(columns)} FROM {name}"))


# PostgreSQL estimates a range of indexed strings (a name's prefix: ``value_norm >= 'celine' AND
# value_norm < 'celinf'``) from the most common values and a histogram of all the strings the index holds,
# every parameter's together. With the default 100 of each, a common given name was "one row" for 463 at
# 100,000 patients, and PDQm's plan read the resource of each before checking the family name and the
# birth date: 3-63 ms a search, 174 searches/s, p95 174 ms. With 300, the birth date leads: 0.1-0.3 ms,
# for 0.2 ms more planning (600: 0.5 ms more; 1,000: 0.7 ms). The extended statistics of the same
# column (``st_idx_string``) follow the column's target (until migration 7 holds them at 100).
STRING_STATISTICS_TARGET = 300


def _string_estimates(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        table, column = schema.idx_string.name, schema.idx_string.c.value_norm.name
        conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS {STRING_STATISTICS_TARGET}"))
        conn.execute(text(f"ANALYZE {table}"))


# PostgreSQL's autovacuum refreshes a table's statistics once a tenth of its rows changed. In a national
# store of millions of resources that is a million AuditEvents away, and until then the statistics say a
# type that was rare at the last ANALYZE still is: at 1,000,000 patients, 52,000 AuditEvents written after
# the load were "one row", and the access log (``AuditEvent?patient=``) walked every AuditEvent and, for
# each, every AuditEvent's index rows (searches still running 24 minutes on; 2.7 ms once analyzed). A
# fixed count of changed rows instead: autovacuum's next round (every minute by default) refreshes the
# statistics of a table once this many of its rows changed, whatever its size. ANALYZE reads a sample
# of fixed size (300 rows per unit of statistics target), so a round costs about the same at any size.
ROWS_CHANGED_BEFORE_ANALYZE = 10_000
GROWING_TABLES = ("resources", "resource_history", *(table.name for table in schema.INDEX_TABLES.values()))


def _fresh_statistics(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        for table in GROWING_TABLES:
            conn.execute(
                text(
                    f"ALTER TABLE {table} SET (autovacuum_analyze_scale_factor = 0, "
                    f"autovacuum_analyze_threshold = {ROWS_CHANGED_BEFORE_ANALYZE})"
                )
            )


# Planning a search reads every statistic of its index tables again, many times over (the table's size, then
# each index's path): for PDQm (family + given + birth date) 1.0-1.1 ms of planning against 0.3-0.4 ms of
# execution, at 200,000 patients. Two of migration 4's extended statistics cost more than they gave:
# - ``st_idx_date`` (type, parameter) made a recent birth date common: its type and parameter counted
#   exactly, then multiplied by the share of *all* dates in that day, mostly documents' and audit events'
#   of recent years. A birth date of last February was 125 patients for 4, PDQm's plan led with the
#   family name instead, and read the resource of each patient with that name: up to 11 ms.
# - ``st_idx_string`` followed the column's target (300 combinations), evaluated by every estimate.
# Without the first and with 100 combinations for the second, over the same 200 PDQm searches: planning
# 1.0-1.1 -> 0.63-0.77 ms, execution at p99 5.2-7.6 -> 1.3-2.0 ms, worst 6.8-10.2 -> 1.7-2.4 ms. The other
# flows of ``benchmarks/query_plans.py`` (20,000 patients) kept their times.
COMBINATIONS_OF_STRING_ROWS = 100


def _cheaper_search_planning(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP STATISTICS IF EXISTS st_idx_date"))
        conn.execute(text(f"ALTER STATISTICS st_idx_string SET STATISTICS {COMBINATIONS_OF_STRING_ROWS}"))
        conn.execute(text(f"ANALYZE {schema.idx_string.name}, {schema.idx_date.name}"))


def _owner_indexes_cover_lookup(conn: Connection) -> None:
    # ``schema.OWNER_COVERS_LOOKUP``: the owner indexes of these tables gain the parameter and the values.
    for kind in schema.OWNER_COVERS_LOOKUP:
        table = schema.INDEX_TABLES[kind]
        conn.execute(text(f"DROP INDEX IF EXISTS ix_{table.name}_owner"))
        _create_indexes(conn, table)


def _references_in_update_order(conn: Connection) -> None:
    # ``schema.STAMPED``: idx_reference's rows gain their resource's last update, and its lookup index holds
    # a value's rows in that order. Migration 1 makes the column in a new store; an older store's rows are
    # stamped from their resources (an index row exists only for a current, undeleted version).
    table = schema.INDEX_TABLES[schema.STAMPED]
    if "last_updated" not in {c["name"] for c in inspect(conn).get_columns(table.name)}:
        # NOT NULL needs a default for the rows already there; every one is then stamped.
        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN last_updated BIGINT NOT NULL DEFAULT 0"))
        conn.execute(
            text(
                f"UPDATE {table.name} SET last_updated = (SELECT r.last_updated FROM resources r"
                f" WHERE r.res_type = {table.name}.res_type AND r.res_id = {table.name}.res_id)"
            )
        )
        if conn.dialect.name == "postgresql":  # SQLite cannot drop a default: its writers always give a value
            conn.execute(text(f"ALTER TABLE {table.name} ALTER COLUMN last_updated DROP DEFAULT"))
    conn.execute(text(f"DROP INDEX IF EXISTS ix_{table.name}_lookup_id"))
    _create_indexes(conn, table)


def _binary_urls_by_their_ending(conn: Connection) -> None:
    # ``schema.URI_REVERSED``, on PostgreSQL (a new store has it from migration 1).
    _create_indexes(conn, schema.idx_uri)


def _create_indexes(conn: Connection, table: Table) -> None:
    """The indexes schema.py gives ``table`` that it lacks, of the columns it has: a migration of a store made
    before a later one added a column leaves that column's indexes to the later one."""
    present = {c["name"] for c in inspect(conn).get_columns(table.name)}
    for index in table.indexes:
        if index.name in schema.POSTGRESQL_ONLY_INDEXES and conn.dialect.name != "postgresql":
            continue
        if {c.name for c in index.columns} <= present:
            # IF NOT EXISTS, not SQLAlchemy's checkfirst: that reflects the table's indexes for each one,
            # half of a new PostgreSQL store's migration (0.15 of 0.3 s; the test suite makes hundreds).
            conn.execute(CreateIndex(index, if_not_exists=True))


STORE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core FHIR store: resources, history, search index", _core_store),
    Migration(3, "sealed documents: their bodies, and a key per document wrapped by the master key", _sealed_documents),
    Migration(4, "search plans at scale: pages in index order, statistics of index rows", _search_plans_at_scale),
    Migration(5, "estimates of string searches: more statistics of the indexed strings", _string_estimates),
    Migration(
        6, "fresh statistics: analyzed after a fixed count of changed rows, not a tenth of the table", _fresh_statistics
    ),
    Migration(7, "cheaper search planning: fewer extended statistics of index rows", _cheaper_search_planning),
    Migration(8, "a candidate's names and dates checked off the index alone", _owner_indexes_cover_lookup),
    Migration(9, "references' index rows in the order of their resources' last update", _references_in_update_order),
    Migration(10, "a Binary's document found by its absolute URL's ending on an index", _binary_urls_by_their_ending),
)


def migrate(db: Database, migrations: tuple[Migration, ...]) -> list[int]:
    """Apply the pending ``migrations`` (the platform's are ``reference_impl.platform.migrations()``);
    returns the versions applied now."""
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version: {sorted(v for v in set(versions) if versions.count(v) > 1)}")

    def work(conn: Connection) -> list[int]:
        db.lift_time_limit(conn)  # a migration of a national store rewrites millions of rows
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            if db.schema:  # the name was checked against a strict pattern when the URL was read
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"'))
        _bookkeeping.create_all(conn)
        done = set((conn.execute(select(schema_migrations.c.version))).scalars())
        applied = []
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            migration.apply(conn)
            conn.execute(
                schema_migrations.insert().values(
                    version=migration.version, name=migration.name, applied_at=now_instant()[0]
                )
            )
            applied.append(migration.version)
        return applied

    # Read committed: after waiting for the lock, each statement sees what a concurrent start applied.
    return db.run(work, write=True)


def current_version(db: Database) -> int:
    with db.transaction(write=False) as conn:
        versions = (conn.execute(select(schema_migrations.c.version))).scalars().all()
    return max(versions, default=0)
