"""Who signed a run folder: `eqlab verify` trusts the lab's published key or the auditor's list, never
the key copied into the folder; report and verify refuse incomplete folders in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eqlab.catalogue import Catalogue
from eqlab.signing import LabKey
from reference_impl.embedded import serve_in_thread
from tests.eqlab.runner.test_runs import LAB, run
from tests.fixtures.lab.fixture_server import app
from tests.support.runs import eqlab_cli


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LabKey]:
    folder = tmp_path_factory.mktemp("signed")
    key = LabKey.load_or_create(folder / "lab.pem")
    with serve_in_thread(app) as base:
        outcome = run("golden.yaml", Catalogue.load(LAB / "suites" / "requirements"), key, folder, target=base)
    return outcome.run_dir, key


@pytest.fixture
def run_dir(signed_run: tuple[Path, LabKey], tmp_path: Path) -> Path:
    return Path(shutil.copytree(signed_run[0], tmp_path / "run"))


@pytest.fixture
def lab_key(signed_run: tuple[Path, LabKey]) -> LabKey:
    return signed_run[1]


def test_plain_verify_trusts_the_labs_published_key(run_dir: Path, lab_key: LabKey) -> None:
    done = eqlab_cli("verify", str(run_dir), env={"EQLAB_LAB_KEY": str(lab_key.path)})
    assert done.exit_code == 0, done.printed
    assert f"key: {lab_key.fingerprint}" in done.printed


def test_a_folder_resigned_with_another_key_is_untrusted(run_dir: Path, lab_key: LabKey, tmp_path: Path) -> None:
    other = LabKey.load_or_create(tmp_path / "other.pem")
    assert eqlab_cli("report", str(run_dir), "--key", str(other.path)).exit_code == 0
    done = eqlab_cli("verify", str(run_dir), env={"EQLAB_LAB_KEY": str(lab_key.path)})
    assert done.exit_code == 3, done.printed
    assert f"signed by an unknown key {other.fingerprint}" in done.printed
    pinned = eqlab_cli("verify", str(run_dir), "--pubkey", str(lab_key.public_path))
    assert pinned.exit_code == 3 and other.fingerprint in pinned.printed
    # the report names the key that signed it
    assert json.loads((run_dir / "results.json").read_text())["signing_key"] == other.fingerprint


def test_a_trust_list_names_every_accepted_key(run_dir: Path, lab_key: LabKey, tmp_path: Path) -> None:
    other = LabKey.load_or_create(tmp_path / "other.pem")
    trust_list = tmp_path / "trusted.pem"
    trust_list.write_bytes(other.public_pem() + lab_key.public_pem())
    done = eqlab_cli("verify", str(run_dir), "--trust", str(trust_list))
    assert done.exit_code == 0, done.printed
    only_other = eqlab_cli("verify", str(run_dir), "--trust", str(other.public_path))
    assert only_other.exit_code == 3 and f"signed by an unknown key {lab_key.fingerprint}" in only_other.printed
    not_a_key = tmp_path / "nothing.pem"
    not_a_key.write_text("hello\n")
    refused = eqlab_cli("verify", str(run_dir), "--trust", str(not_a_key))
    assert refused.exit_code == 2 and "holds no PEM public key" in refused.printed


def test_tampering_is_still_exit_1_whatever_the_trust(run_dir: Path, lab_key: LabKey) -> None:
    (run_dir / "summary.html").write_text("changed")
    done = eqlab_cli("verify", str(run_dir), "--trust", str(lab_key.public_path))
    assert done.exit_code == 1 and "TAMPERED: summary.html: changed" in done.printed


def test_key_public_prints_its_fingerprint(lab_key: LabKey) -> None:
    done = eqlab_cli("key", "public", "--fingerprint", "--key", str(lab_key.path))
    assert done.exit_code == 0 and done.printed.strip() == lab_key.fingerprint


def _one_line_error(done_printed: str) -> str:
    lines = done_printed.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done_printed, done_printed
    return lines[0]


@pytest.mark.parametrize("command", ["report", "verify"])
def test_an_interrupted_runs_folder_is_named_incomplete(command: str, tmp_path: Path, lab_key: LabKey) -> None:
    folder = tmp_path / "interrupted"
    (folder / "evidence").mkdir(parents=True)
    (folder / "events.jsonl").write_text('{"event": "started"}\n')
    done = eqlab_cli(command, str(folder), "--key", str(lab_key.path))
    assert done.exit_code == 2
    missing = "results.json missing" if command == "report" else "manifest.json, manifest.sig missing"
    assert _one_line_error(done.printed) == f"error: {folder} is not a complete run folder: {missing}"


@pytest.mark.parametrize("command", ["report", "verify"])
def test_a_random_folder_is_refused_in_one_line(command: str, tmp_path: Path, lab_key: LabKey) -> None:
    done = eqlab_cli(command, str(tmp_path), "--key", str(lab_key.path))
    assert done.exit_code == 2
    assert "is not a complete run folder" in _one_line_error(done.printed)


def test_results_that_are_not_a_runs_are_refused_in_one_line(run_dir: Path, lab_key: LabKey) -> None:
    (run_dir / "results.json").write_text('{"verdict": "granted"}')
    done = eqlab_cli("report", str(run_dir), "--key", str(lab_key.path))
    assert done.exit_code == 2
    assert "results.json is not a run's results" in _one_line_error(done.printed)
