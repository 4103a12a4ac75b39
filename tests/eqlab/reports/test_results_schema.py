"""The committed JSON Schema of results.json matches the RunResults model."""

from __future__ import annotations

import json
import subprocess
import sys

from eqlab.reports import schema
from eqlab.results import RunResults


def test_committed_schema_matches_the_model() -> None:
    committed = schema.SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == schema.schema_text(), "run `python -m eqlab.reports.schema` and commit the result"
    assert json.loads(committed) == RunResults.model_json_schema()


def test_schema_check_entry_point_agrees() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "eqlab.reports.schema", "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
