"""``eqlab seed``: one-line errors, its progress display, and a load killed mid-way that the same command
finishes without a duplicate."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from eqlab.cli import main
from eqlab.commands.seeding import ProgressLine
from reference_impl.seed.national import NationalPlan, NationalSource
from reference_impl.store.bulk import Progress
from reference_impl.store.bulk_rows import RowMaker
from reference_impl.vault import MasterKey
from tests.support.postgres import PG_URL, drop_schema, new_schema_url, query

MASTER_TEXT = base64.b64encode(b"eqlab-seed-command-tests-key-32b").decode()


def seed(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["seed", *args], env={"EQLAB_MASTER_KEY": MASTER_TEXT})
    return result.exit_code, result.output


def test_bad_arguments_and_unusable_stores_are_one_line_errors(tmp_path: Path) -> None:
    code, output = seed("--patients", "0", "--db", f"sqlite:///{tmp_path / 's.sqlite3'}")
    assert code == 2 and "Error: Invalid value for '--patients'" in output
    code, output = seed("--patients", "5", "--db", "mysql://somewhere/db")
    assert (code, output) == (
        1,
        "Error: unsupported database URL 'mysql://somewhere/db': use sqlite:///FILE or postgresql://HOST/DB\n",
    )
    code, output = seed("--patients", "5", "--db", "postgresql://postgres@127.0.0.1:1/test")
    assert code == 1 and output.startswith("Error: cannot use the store postgresql://postgres@127.0.0.1:1/test: ")
    assert output.count("\n") == 1


def test_a_store_seeded_with_other_parameters_is_refused_in_one_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.sqlite3'}"
    code, output = seed("--patients", "3", "--documents-per-patient", "1", "--db", store, "--no-progress")
    assert code == 0 and output.startswith("seeded 3 patients into ")
    code, output = seed("--patients", "3", "--documents-per-patient", "1", "--db", store, "--no-progress")
    assert code == 0 and "0 resources in" in output  # all there: nothing loaded twice
    code, output = seed("--patients", "4", "--documents-per-patient", "1", "--db", store)
    assert (
        code == 1
        and output.startswith("Error: this store holds a national load made with ")
        and output.count("\n") == 1
    )


def progress(chunks_done: int) -> Progress:
    return Progress(chunks_done, 10, chunks_done, chunks_done * 1000, chunks_done * 1000, float(chunks_done))


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    live = io.StringIO()
    bar = ProgressLine(live, enabled=True)
    bar(progress(4))
    bar.close()
    assert live.getvalue() == "\r[############------------------]  40.0%  4,000 resources  1,000/s  ETA 0m06s\x1b[K\n"
    logged = io.StringIO()
    lines = ProgressLine(logged, enabled=None)  # not a terminal: a plain line now and then, and the last
    for done in range(1, 11):
        lines(progress(done))
    assert logged.getvalue().splitlines() == [
        "seeding: 1/10 chunks,  10.0%  1,000 resources  1,000/s  ETA 0m09s",
        "seeding: 10/10 chunks, 100.0%  10,000 resources  1,000/s  ETA 0m00s",
    ]
    quiet = io.StringIO()
    ProgressLine(quiet, enabled=False)(progress(3))
    assert quiet.getvalue() == ""


@pytest.mark.postgres
def test_a_load_killed_mid_way_is_finished_by_the_same_command(postgres_unavailable: str | None) -> None:
    if postgres_unavailable:
        pytest.skip(postgres_unavailable)
    url, schema = new_schema_url()
    command = [sys.executable, "-m", "eqlab.cli", "seed", "--patients", "600", "--db", url, "--workers", "2"]
    environment = {**os.environ, "EQLAB_MASTER_KEY": MASTER_TEXT}
    try:
        loading = subprocess.Popen([*command, "--no-progress"], env=environment, start_new_session=True)
        deadline = time.monotonic() + 120
        while not _committed_chunks(schema) and loading.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(loading.pid, signal.SIGKILL)  # the command and its loading processes, as a power cut would
        loading.wait(timeout=30)
        assert 0 < _committed_chunks(schema) < 3, "the load was to be killed after some chunks, before the end"
        finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, check=False)
        assert finished.returncode == 0, finished.stderr
        as_of = date.fromisoformat(str(query(f"SELECT parameters::json->>'as_of' FROM {schema}.bulk_plan")))
        plan = NationalPlan(600, as_of=as_of)
        expected = RowMaker(MasterKey.from_text(MASTER_TEXT)).rows(
            r for n in range(NationalSource(plan).chunk_count) for r in NationalSource(plan).chunk(n)
        )
        assert query(f"SELECT count(*) FROM {schema}.resources") == expected.count
        assert query(f"SELECT count(*) FROM {schema}.resource_history") == expected.count
        assert query(f"SELECT count(*) FROM {schema}.idx_token") == len(expected.index["token"])
        assert query(f"SELECT count(*) FROM {schema}.idx_reference") == len(expected.index["reference"])
        assert query(f"SELECT count(*) FROM {schema}.document_keys") == len(expected.keys)
        assert query(f"SELECT dropped_indexes FROM {schema}.bulk_plan") == "[]"  # built again at the end
        assert query(f"SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'idx_token'")
    finally:
        drop_schema(schema)


def _committed_chunks(schema: str) -> int:
    try:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            row = conn.execute(f"SELECT count(*) FROM {schema}.bulk_progress").fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0
