"""Signed results: any changed byte of any artefact is found and named."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from eqlab.signing import MANIFEST, SIGNATURE, LabKey, sign_run, verify_run


@pytest.fixture
def key(tmp_path: Path) -> LabKey:
    return LabKey.load_or_create(tmp_path / "keys" / "lab.pem")


@pytest.fixture
def run_dir(tmp_path: Path, key: LabKey) -> Path:
    folder = tmp_path / "run"
    (folder / "evidence").mkdir(parents=True)
    (folder / "results.json").write_text('{"verdict": "granted"}\n')
    (folder / "summary.html").write_text("<html>granted</html>\n")
    (folder / "evidence" / "abc.bin").write_bytes(bytes(range(256)) * 10)
    sign_run(folder, key, {"run_id": "r1", "verdict": "granted"})
    return folder


def test_key_is_made_once_private_and_exported(tmp_path: Path, key: LabKey) -> None:
    mode = stat.S_IMODE(key.path.stat().st_mode)
    assert mode == 0o600
    assert key.public_path.read_bytes() == key.public_pem()
    assert LabKey.load_or_create(key.path).public_pem() == key.public_pem()


def test_untouched_run_verifies(run_dir: Path, key: LabKey) -> None:
    result = verify_run(run_dir, key.public_path)
    assert result.ok and result.problems == []
    assert result.checked == 4  # results, summary, evidence file, public key copy


@pytest.mark.parametrize("name", ["results.json", "summary.html", "evidence/abc.bin", "lab-public-key.pem"])
def test_every_byte_of_every_artefact_is_covered(run_dir: Path, key: LabKey, name: str) -> None:
    path = run_dir / name
    original = path.read_bytes()
    for position in (0, len(original) // 2, len(original) - 1):
        changed = bytearray(original)
        changed[position] ^= 0x01
        path.write_bytes(bytes(changed))
        result = verify_run(run_dir, key.public_path)
        assert not result.ok
        assert result.problems[0].startswith(f"{name}: changed")
    path.write_bytes(original)
    assert verify_run(run_dir, key.public_path).ok


def test_changed_manifest_or_signature_fails(run_dir: Path, key: LabKey) -> None:
    manifest = run_dir / MANIFEST
    manifest.write_text(manifest.read_text().replace("granted", "refused"))
    assert "signature does not match" in verify_run(run_dir, key.public_path).problems[0]


def test_added_and_removed_files_are_found(run_dir: Path, key: LabKey) -> None:
    (run_dir / "extra.html").write_text("x")
    assert verify_run(run_dir, key.public_path).problems == [
        "extra.html: not covered by the signed manifest (added after signing)"
    ]
    (run_dir / "extra.html").unlink()
    (run_dir / "summary.html").unlink()
    assert verify_run(run_dir, key.public_path).problems == ["summary.html: missing"]


def test_another_labs_key_does_not_verify(run_dir: Path, tmp_path: Path, key: LabKey) -> None:
    stranger = LabKey.load_or_create(tmp_path / "other" / "lab.pem")
    result = verify_run(run_dir, stranger.public_path)
    assert not result.ok and result.untrusted
    assert result.problems == [f"signed by an unknown key {key.fingerprint}"]


def test_a_folder_resigned_with_its_own_key_copy_is_not_trusted(run_dir: Path, tmp_path: Path, key: LabKey) -> None:
    forger = LabKey.load_or_create(tmp_path / "forger" / "lab.pem")
    sign_run(run_dir, forger, {"run_id": "r1", "verdict": "granted"})  # replaces the key copy too
    result = verify_run(run_dir, key.public_path)
    assert result.untrusted and result.signer == forger.fingerprint
    assert verify_run(run_dir, forger.public_path).ok


def test_garbage_signature_is_reported_not_raised(run_dir: Path, key: LabKey) -> None:
    (run_dir / SIGNATURE).write_text("not base64 !!")
    result = verify_run(run_dir, key.public_path)
    assert not result.ok and "cannot verify" in result.problems[0]
