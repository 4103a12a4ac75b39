"""The catalogue and report commands, and the plugin's refusal of untraced or unknown requirements."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eqlab import yamlsource
from eqlab.catalogue import Catalogue
from eqlab.signing import LabKey, verify_run
from reference_impl.embedded import serve_in_thread
from tests.eqlab.runner.test_runs import run
from tests.fixtures.lab.fixture_server import app
from tests.support.paths import FIXTURES, REPO

LAB = FIXTURES / "lab"


def eqlab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eqlab.cli", *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )


def test_catalogue_list_and_show() -> None:
    listed = eqlab("catalogue", "list", "--service", "fhir")
    assert listed.returncode == 0
    fhir = [rid for rid in Catalogue.load(REPO / "suites" / "requirements").requirements if rid.startswith("fhir@")]
    assert listed.stdout.count("\n") == len(fhir) and "fhir@17    SHALL" in listed.stdout
    shown = eqlab("catalogue", "show", "fhir@20")
    assert shown.returncode == 0
    assert "Reading a deleted resource answers 410 Gone." in shown.stdout
    assert "suites/contract/fhir/" in shown.stdout  # the checks that verify it
    assert eqlab("catalogue", "show", "fhir@999").returncode != 0


def test_catalogue_coverage_counts_checks_per_requirement() -> None:
    done = eqlab("catalogue", "coverage")
    assert done.returncode == 0
    line = next(row for row in done.stdout.splitlines() if row.startswith("fhir@49 "))
    assert int(line.split()[2]) >= 2
    attested = next(row for row in done.stdout.splitlines() if row.startswith("auth@27 "))
    assert attested.endswith("by attestation")
    assert "requirements checked by tests have checks; 0 have none; 2 verified by attestation" in done.stdout


def test_an_attested_requirement_must_say_why_no_check_can_verify_it(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text(
        "service: demo\ntitle: Demo\nrequirements:\n"
        "  - {id: demo@1, level: SHALL, actor: server, source: SPEC, text: The server does it.,"
        " verification: attestation}\n"
    )
    with pytest.raises(yamlsource.SourceError) as caught:
        Catalogue.load(tmp_path)
    assert "why_attested is required" in caught.value.problems[0].message


def test_duplicate_requirement_ids_are_refused_with_both_places(tmp_path: Path) -> None:
    shutil.copy(LAB / "suites" / "requirements" / "demo.yaml", tmp_path / "a.yaml")
    text = (LAB / "suites" / "requirements" / "demo.yaml").read_text()
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(yamlsource.SourceError) as caught:
        Catalogue.load(tmp_path)
    first = caught.value.problems[0]
    assert first.file.endswith("b.yaml") and first.line == 4
    assert "duplicate requirement ID demo@1, first defined at" in first.message and "a.yaml:4" in first.message


def test_a_check_naming_an_unknown_or_no_requirement_stops_the_run(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_bad.py").write_text(
        "import pytest\n\n@pytest.mark.requirement('demo@99')\ndef test_unknown(): pass\n\ndef test_untraced(): pass\n"
    )
    catalogue = LAB / "suites" / "requirements"
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(suite),
        "-p",
        "no:cacheprovider",
        "--eqlab-target",
        "http://127.0.0.1:9/fhir",
        "--eqlab-catalogue",
        str(catalogue),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 4  # a usage error: nothing ran
    assert "test_unknown: unknown requirement ID(s) demo@99" in done.stderr + done.stdout
    assert "test_untraced: not traced to any requirement" in done.stderr + done.stdout


def test_report_rerenders_identical_reports_and_signs_again(tmp_path: Path) -> None:
    key = LabKey.load_or_create(tmp_path / "lab.pem")
    catalogue = Catalogue.load(LAB / "suites" / "requirements")
    with serve_in_thread(app) as base:
        outcome = run("golden.yaml", catalogue, key, tmp_path, target=base)
    before = {p.name: p.read_bytes() for p in outcome.run_dir.glob("*.html")}
    for page in outcome.run_dir.glob("*.html"):
        page.write_text("tampered")
    assert not verify_run(outcome.run_dir, key.public_path).ok
    done = eqlab("report", str(outcome.run_dir), "--key", str(key.path))
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in outcome.run_dir.glob("*.html")} == before
    assert verify_run(outcome.run_dir, key.public_path).ok
    assert eqlab("verify", str(outcome.run_dir), "--pubkey", str(key.public_path)).returncode == 0
