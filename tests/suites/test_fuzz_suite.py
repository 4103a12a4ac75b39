"""The fuzz suite through the engine, as `eqlab run --suites fuzz` does it: quiet on the clean server,
and it catches a server whose errors are not OperationOutcomes (fhir@24) from generated requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eqlab.commands.detection import detect

pytestmark = pytest.mark.slow
FUZZ_NAME = "Generated requests never cause a server error, and every error is an OperationOutcome."


def fuzz_items(run_dir: Path) -> list[dict[str, object]]:
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    items: list[dict[str, object]] = [i for i in results["items"] if i["suite"] == "fuzz"]
    return items


def test_the_clean_server_passes_the_fuzz_suite(tmp_path: Path) -> None:
    found = detect(frozenset(), out=tmp_path, key_path=tmp_path / "lab.pem", suites=("fuzz",))
    items = fuzz_items(found.run_dir)
    assert items and all(i["outcome"] == "pass" for i in items), items
    assert {i["name"] for i in items} == {FUZZ_NAME}, "the check's own docstring names it, not hypothesis's"
    assert not found.failed


def test_the_fuzz_suite_catches_errors_that_are_not_operation_outcomes(tmp_path: Path) -> None:
    found = detect(frozenset({"plain-text-errors"}), out=tmp_path, key_path=tmp_path / "lab.pem", suites=("fuzz",))
    assert found.verdict == "refused" and "fhir@24" in found.failed, (found.verdict, found.failed)
    failing = [i for i in fuzz_items(found.run_dir) if i["outcome"] == "fail"]
    assert failing and "is not an OperationOutcome" in str(failing[0]["message"]), failing
    assert failing[0]["exchanges"], "the generated request that proved it is in the evidence"
