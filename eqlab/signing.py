"""Signed results: a manifest of every artefact's SHA-256, signed with the lab's Ed25519 key.

``manifest.json`` lists each file of the run folder with its hash, plus the plan and catalogue
hashes, tool version, target, times, verdict and expiry; ``manifest.sig`` is the base64 Ed25519
signature of the manifest's exact bytes. ``verify`` re-checks all of it and names the first file
that does not match. The lab key is made on first use (mode 0600). A signature counts only when it
is made by a trusted key (the lab's published key or the auditor's list): the copy of the public
key inside the run folder is never trusted, it only names (by fingerprint) who signed otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from platformdirs import user_data_dir

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY_COPY = "lab-public-key.pem"
MANIFEST_FORMAT = "eqlab-manifest/1"
KEY_ENV = "EQLAB_LAB_KEY"


def default_key_path() -> Path:
    return Path(os.environ.get(KEY_ENV) or Path(user_data_dir("eqlab")) / "lab-signing-key.pem")


@dataclass(frozen=True)
class LabKey:
    private: Ed25519PrivateKey
    path: Path

    @classmethod
    def load_or_create(cls, path: Path | None = None) -> LabKey:
        path = path or default_key_path()
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key")
            return cls(key, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        created = cls(key, path)
        created.public_path.write_bytes(created.public_pem())
        return created

    @property
    def public_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".pub.pem")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_pem())

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def fingerprint(public_pem: bytes) -> str:
    """``SHA256:<base64>`` of the raw public key, as OpenSSH prints key fingerprints."""
    key = serialization.load_pem_public_key(public_pem)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


PEM_PUBLIC_KEY = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def load_trusted_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key (PEM) in ``path``; ValueError naming the file when it holds none or another kind."""
    blocks = PEM_PUBLIC_KEY.findall(path.read_bytes())
    if not blocks:
        raise ValueError(f"{path} holds no PEM public key")
    keys = []
    for block in blocks:
        key = serialization.load_pem_public_key(block)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} holds a public key that is not Ed25519")
        keys.append(key)
    return keys


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _artefacts(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.rglob("*") if p.is_file() and p.name not in (MANIFEST, SIGNATURE))


def sign_run(run_dir: Path, key: LabKey, facts: dict[str, object]) -> Path:
    """Write the public key copy, ``manifest.json`` (facts + every artefact's hash) and ``manifest.sig``."""
    (run_dir / PUBLIC_KEY_COPY).write_bytes(key.public_pem())
    manifest = {
        "format": MANIFEST_FORMAT,
        **facts,
        "public_key_sha256": hashlib.sha256(key.public_pem()).hexdigest(),
        "artefacts": {p.relative_to(run_dir).as_posix(): sha256_file(p) for p in _artefacts(run_dir)},
    }
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (run_dir / MANIFEST).write_bytes(body)
    (run_dir / SIGNATURE).write_text(base64.b64encode(key.private.sign(body)).decode() + "\n", encoding="ascii")
    return run_dir / MANIFEST


@dataclass(frozen=True)
class Verification:
    ok: bool
    problems: list[str]
    checked: int
    signer: str | None = None  # fingerprint of the key whose signature holds, trusted or not
    untrusted: bool = False  # the signature holds, but only for a key nobody trusts


def verify_run(run_dir: Path, *trusted_key_files: Path) -> Verification:
    """Check the signature against the trusted keys, then every artefact's hash against the manifest."""
    try:
        body = (run_dir / MANIFEST).read_bytes()
        signature = base64.b64decode((run_dir / SIGNATURE).read_text(encoding="ascii").strip(), validate=True)
        trusted = [key for path in trusted_key_files for key in load_trusted_keys(path)]
    except (OSError, ValueError) as exc:
        return Verification(False, [f"cannot verify: {exc}"], 0)
    signer = next((key for key in trusted if _signed_by(key, signature, body)), None)
    if signer is None:
        return _not_trusted(run_dir, signature, body)
    manifest = json.loads(body)
    listed: dict[str, str] = manifest.get("artefacts", {})
    problems = []
    for name, expected in listed.items():
        path = run_dir / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != expected:
            problems.append(f"{name}: changed (its SHA-256 differs from the signed manifest)")
    present = {p.relative_to(run_dir).as_posix() for p in _artefacts(run_dir)}
    problems += [
        f"{name}: not covered by the signed manifest (added after signing)" for name in sorted(present - listed.keys())
    ]
    return Verification(not problems, problems, len(listed), fingerprint(_pem(signer)))


def _signed_by(key: Ed25519PublicKey, signature: bytes, body: bytes) -> bool:
    try:
        key.verify(signature, body)
    except InvalidSignature:
        return False
    return True


def _pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _not_trusted(run_dir: Path, signature: bytes, body: bytes) -> Verification:
    """No trusted key made the signature: it was made by another key (named), or the manifest was changed."""
    try:
        copy = load_trusted_keys(run_dir / PUBLIC_KEY_COPY)[0]
    except (OSError, ValueError):
        copy = None
    if copy is not None and _signed_by(copy, signature, body):
        signer = fingerprint(_pem(copy))
        return Verification(False, [f"signed by an unknown key {signer}"], 0, signer, untrusted=True)
    return Verification(
        False, [f"{MANIFEST}: the signature does not match (the manifest or its signature was changed)"], 0
    )
