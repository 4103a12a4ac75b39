"""PostgreSQL for tests: one throw-away schema per test in the configured database."""

from __future__ import annotations

import os
import uuid

import psycopg

PG_URL = os.environ.get("EQLAB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable_reason() -> str | None:
    """None when PostgreSQL answers, else why not (shown as the skip reason)."""
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"no PostgreSQL answers at {PG_URL}: {exc}"


def new_schema_url() -> tuple[str, str]:
    schema = f"eqlab_t_{uuid.uuid4().hex[:12]}"
    return f"{PG_URL}?schema={schema}", schema


def query(sql: str, *params: object) -> object:
    """The first column of the first row of ``sql`` (autocommit)."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]
