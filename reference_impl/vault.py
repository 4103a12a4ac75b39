"""The master key: wraps secrets the platform keeps at rest (token-signing keys; document keys).

AES-256-GCM from ``cryptography`` with a per-value random nonce and a context string as associated
data, so a wrapped value cannot be moved to another purpose. The key comes from
``EQLAB_MASTER_KEY`` (base64 of 32 bytes) or, by default, a file made on first use (mode 0600).
Replacing it re-wraps what it wraps (``rewrapped``; ``eqlab platform-keys rotate-master``).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class VaultError(Exception):
    pass


class MasterKey:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise VaultError("the master key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        try:
            return cls(base64.b64decode(text.strip(), validate=True))
        except ValueError:
            raise VaultError("the master key is not valid base64") from None

    @classmethod
    def from_file(cls, path: Path) -> MasterKey:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole to a private temporary file, then linked into place: of two processes
            # starting at once, one key wins and both use it.
            key = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n"
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(key)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return cls.from_text(path.read_text(encoding="ascii"))

    def wrap(self, secret: bytes, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, secret, context.encode())).decode()

    def unwrap(self, wrapped: str, context: str) -> bytes:
        raw = base64.b64decode(wrapped)
        try:
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise VaultError(f"cannot unwrap a {context}: wrong master key, or the value was altered") from None


def rewrapped(wrapped: str, context: str, old: MasterKey, new: MasterKey) -> str | None:
    """``wrapped`` wrapped by ``new`` instead of ``old``; None when ``new`` wraps it already, so a
    rotation that was interrupted or repeated can run again. Neither: VaultError."""
    try:
        return new.wrap(old.unwrap(wrapped, context), context)
    except VaultError:
        new.unwrap(wrapped, context)
        return None
