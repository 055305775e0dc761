"""The fleet's Ed25519 release key: generated once by the operator, the private half kept
off the platform's servers (mode 0600, never overwritten), the public half in every
device's agent config as one line of base64."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract.errors import ReleaseInvalid
from contract.releases import load_public_key, signed_message
from devices.releases.errors import SigningKeyError

PRIVATE_NAME = "release-signing.key"
PUBLIC_NAME = "release-signing.pub"


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_path: Path
    public_key: str  # base64 of the raw 32 bytes: what goes in the agent config


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise SigningKeyError(f"{path} exists: a release key is never overwritten") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)  # whatever the umask was


def keygen(folder: Path) -> KeyPair:
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise SigningKeyError(f"{path} exists: a release key is never overwritten",
                                  hint="devices trust the existing public key; move the old pair away "
                                       "only if you mean to re-key the whole fleet")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = public_text(key.public_key())
    _write_new(private_path, pem, 0o600)
    _write_new(public_path, (public + "\n").encode(), 0o644)
    return KeyPair(private_path, public_path, public)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the release key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 key")
    return key


def read_public_key(path_or_text: str) -> str:
    """A public key given as its base64 text or as the path of a .pub file; checked."""
    text = path_or_text
    path = Path(path_or_text)
    if path.exists():
        text = path.read_text().strip()
    load_public_key(text)  # raises ReleaseInvalid with a clear message
    return text


def sign(key: Ed25519PrivateKey, version: str, sha256: str) -> str:
    return base64.b64encode(key.sign(signed_message(version, sha256))).decode()


def signature_valid(public_key: str, version: str, sha256: str, signature: str) -> bool:
    try:
        load_public_key(public_key).verify(base64.b64decode(signature), signed_message(version, sha256))
    except (InvalidSignature, ValueError, ReleaseInvalid):
        return False
    return True
