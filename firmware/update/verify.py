"""Checks before anything is installed: the archive's digest, the Ed25519 signature, then
each unpacked file against the (signed) manifest."""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firmware.update.errors import VerificationFailed
from firmware.update.manifest import Manifest, signed_message

CHUNK = 1 << 16


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def load_public_key(text: str) -> Ed25519PublicKey:
    """The key as `cityops release keygen` prints it: base64 of the raw 32 bytes."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise VerificationFailed(f"the configured public key is not a base64 Ed25519 key: {exc}") from None


def verify_signature(public_key: Ed25519PublicKey, version: str, sha256: str, signature: str) -> None:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, signed_message(version, sha256))
    except (binascii.Error, ValueError, InvalidSignature):
        raise VerificationFailed(f"bad signature for release {version}: not signed by the fleet's key") from None


def offer_signature_valid(public_key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature, validate=True), message)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def verify_archive(path: Path, *, version: str, sha256: str, signature: str, public_key: Ed25519PublicKey) -> None:
    """Digest first (cheap to explain), then the signature over version + digest."""
    actual = sha256_file(path)
    if actual != sha256:
        raise VerificationFailed(f"checksum mismatch for release {version}: got {actual[:12]}..., "
                                 f"expected {sha256[:12]}...")
    verify_signature(public_key, version, sha256, signature)


def verify_tree(folder: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is there with its digest, and nothing else is."""
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    found.discard("manifest.json")
    missing, extra = manifest.files.keys() - found, found - manifest.files.keys()
    if missing or extra:
        names = sorted(missing)[:3] + sorted(extra)[:3]
        raise VerificationFailed(f"release {manifest.version} does not match its manifest "
                                 f"({len(missing)} missing, {len(extra)} unlisted: {', '.join(names)})")
    for name, expected in manifest.files.items():
        if sha256_file(folder / name) != expected:
            raise VerificationFailed(f"release {manifest.version}: {name} does not match its manifest digest")
