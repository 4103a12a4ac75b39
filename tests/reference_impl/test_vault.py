"""The master key: wrapping, tamper detection, and a key file made safely by racing processes."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from reference_impl.vault import MasterKey, VaultError


def _wrap_with_key_file(path: str) -> str:
    return MasterKey.from_file(Path(path)).wrap(b"secret", "test")


def test_wrap_unwrap_and_context_binding() -> None:
    key = MasterKey(b"k" * 32)
    wrapped = key.wrap(b"signing key", "token-signing key")
    assert b"signing key" not in wrapped.encode()
    assert key.unwrap(wrapped, "token-signing key") == b"signing key"
    with pytest.raises(VaultError):
        key.unwrap(wrapped, "document key")  # moved to another purpose
    with pytest.raises(VaultError):
        MasterKey(b"x" * 32).unwrap(wrapped, "token-signing key")  # another master key


def test_bad_keys_are_refused() -> None:
    with pytest.raises(VaultError):
        MasterKey(b"short")
    with pytest.raises(VaultError):
        MasterKey.from_text("not base64!!")


def test_processes_racing_to_make_the_key_file_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "data" / "master.key"
    with multiprocessing.get_context("fork").Pool(8) as pool:
        wrapped = pool.map(_wrap_with_key_file, [str(path)] * 16)
    key = MasterKey.from_file(path)
    assert all(key.unwrap(w, "test") == b"secret" for w in wrapped)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temporary file left
