"""A migrated store for a benchmark to measure on, gone afterwards: a SQLite file in a temporary directory,
or a schema of its own on the test database (``EQLAB_TEST_PG_URL``), dropped at the end."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reference_impl.platform import migrate_platform
from reference_impl.store.database import Database
from tests.support.postgres import drop_schema, new_schema_url


@contextmanager
def scratch_store(postgresql: bool) -> Iterator[Database]:
    with tempfile.TemporaryDirectory() as directory:
        url, schema = new_schema_url() if postgresql else (f"sqlite:///{Path(directory) / 'store.db'}", None)
        db = Database(url)
        try:
            migrate_platform(db)
            yield db
        finally:
            db.dispose()
            if schema is not None:
                drop_schema(schema)
