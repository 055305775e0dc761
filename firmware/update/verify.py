"""Checks before anything is installed, at the agent's boundary: the contract's release checks
(contract/releases.py: the archive's digest, the Ed25519 signatures, each unpacked file
against the signed manifest), their ReleaseInvalid turned into this package's
VerificationFailed (reported, and held against the version)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract import releases
from contract.errors import ReleaseInvalid
from contract.releases import Manifest
from firmware.update.errors import VerificationFailed


@contextmanager
def _refused() -> Iterator[None]:
    try:
        yield
    except ReleaseInvalid as exc:
        raise VerificationFailed(str(exc)) from None


def load_public_key(text: str) -> Ed25519PublicKey:
    with _refused():
        return releases.load_public_key(text)


def verify_archive(path: Path, *, version: str, sha256: str, signature: str, public_key: Ed25519PublicKey) -> None:
    with _refused():
        releases.verify_archive(path, version=version, sha256=sha256, signature=signature, public_key=public_key)


def verify_tree(folder: Path, manifest: Manifest) -> None:
    with _refused():
        releases.verify_tree(folder, manifest)


def read_manifest(archive: Path) -> Manifest:
    with _refused():
        return releases.read_manifest(archive)

