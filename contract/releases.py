"""What a release is, what the platform offers, and what the device reports: the shared
contract between `devices/releases` (which builds and offers) and the agent's `firmware/update`
(which installs), and the checks both run before they trust a release (ReleaseInvalid says why not).

A release is one gzip tarball:

    manifest.json      a `Manifest`: version, every other file with its SHA-256, requirements
    src/               the agent's packages (firmware/ and contract/)
    wheels/            optional: the locked dependencies as wheels

and a detached Ed25519 signature over `signed_message(version, sha256 of the tarball)`. The
manifest is inside the tarball, so the signature covers it; the version is in the signed
message, so a genuine old release cannot be passed off as a newer one.

An offer (`UpdateOffer`, in a device's retained config) names a release by version and digest
only, never a URL: the device downloads from its own configured base. The operator signs
`offer_message(...)` when starting a rollout: version, digest, size, rollout id, expiry and
the optional minimum version, so nobody who can merely write the config topic (the platform's
service account, anyone on the MQTT link) can make a device take an old release, replay an
expired or superseded offer, or change a field. Versions are ordered by `version_key`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.errors import ReleaseInvalid
from contract.telemetry import UtcTime

FORMAT = 1
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MANIFEST_NAME = "manifest.json"
ENTRY_POINT = "firmware.update.run"

Version = Annotated[str, msgspec.Meta(pattern=VERSION.pattern)]
Sha256 = Annotated[str, msgspec.Meta(pattern=SHA256.pattern)]
Step = Literal["downloading", "verified", "installed", "healthy", "rolled_back", "failed"]
STEPS: tuple[Step, ...] = ("downloading", "verified", "installed", "healthy", "rolled_back", "failed")


def signed_message(version: str, sha256: str) -> bytes:
    """The bytes the release key signs: a fixed label, the version and the archive's digest."""
    return f"cityops-agent-release/v1\n{version}\n{sha256}\n".encode()


def offer_message(version: str, sha256: str, size: int, rollout_id: int, expires_at: datetime,
                  min_version: str | None) -> bytes:
    """The bytes the release key signs for an offer: every field the device acts on (the expiry in
    whole seconds since the epoch, so its text form does not matter)."""
    return (f"cityops-agent-offer/v1\n{version}\n{sha256}\n{size}\n{rollout_id}\n"
            f"{int(expires_at.timestamp())}\n{min_version or ''}\n").encode()


# N(.N)* with an optional pre-release (dev < a < b < rc < final) and a +local label
_ORDERED = re.compile(r"^(\d+(?:\.\d+)*)(?:[._-]?(dev|a|b|rc)(\d*))?(?:\+([0-9A-Za-z.]+))?$")
_PRE_RANK = {"dev": 0, "a": 1, "b": 2, "rc": 3}
VersionKey = tuple[tuple[int, ...], tuple[int, int], str]


def version_key(version: str) -> VersionKey | None:
    """A sort key (1.4 == 1.4.0 < 1.4.1rc1 < 1.4.1 < 1.10); None when the version has no order."""
    match = _ORDERED.match(version)
    if match is None:
        return None
    release = tuple(int(part) for part in match.group(1).split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    pre = (_PRE_RANK[match.group(2)], int(match.group(3) or 0)) if match.group(2) else (len(_PRE_RANK), 0)
    return release, pre, match.group(4) or ""


class Manifest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    version: Version
    created_at: UtcTime
    files: dict[str, Sha256]  # path in the archive -> digest, every file but the manifest
    unpacked_bytes: int
    format: int = FORMAT
    python_requires: str = ">=3.11"
    entry_point: str = ENTRY_POINT
    requirements: list[str] = []  # pinned, e.g. "paho-mqtt==2.1.0"
    wheels: bool = False  # wheels/ holds the requirements; else the device's environment provides them


class UpdateOffer(msgspec.Struct, frozen=True):
    """The `update` object the platform puts in a device's retained config. Unknown fields (the
    `url` older platforms sent) are ignored: the device never takes a URL from an offer."""

    version: Version
    sha256: Sha256
    size: Annotated[int, msgspec.Meta(gt=0)]
    rollout_id: Annotated[int, msgspec.Meta(ge=1)]
    expires_at: UtcTime
    signature: str  # the release's: base64 Ed25519 of signed_message(version, sha256)
    offer_signature: str  # the rollout's: base64 Ed25519 of self.message()
    # a rollout that deliberately goes back signs a minimum: the device then takes any offered
    # version at or above it, even one older than it runs; without it, only newer versions
    min_version: Version | None = None

    def message(self) -> bytes:
        return offer_message(self.version, self.sha256, self.size, self.rollout_id, self.expires_at,
                             self.min_version)


class _ConfigUpdate(msgspec.Struct):
    update: UpdateOffer | None = None


def offer_from_config(payload: bytes) -> UpdateOffer | None:
    """The offer in a config payload; None when there is none. Raises msgspec errors when malformed."""
    return msgspec.json.decode(payload, type=_ConfigUpdate).update


class Report(msgspec.Struct, frozen=True, omit_defaults=True):
    """One step of an update, as the device reports it (inside {"update": ...} on the status topic)."""

    step: Step
    version: str
    at: UtcTime
    from_version: str | None = None
    reason: str | None = None
    rollout_id: int | None = None


class _StatusReport(msgspec.Struct, frozen=True):
    update: Report


def encode_report(report: Report) -> bytes:
    return msgspec.json.encode(_StatusReport(report))


def decode_report(payload: bytes) -> Report | None:
    """A status-topic payload as a report; None for `online`/`offline` and anything else."""
    if not payload.startswith(b"{"):
        return None
    try:
        return msgspec.json.decode(payload, type=_StatusReport).update
    except msgspec.DecodeError:
        return None


def encode_manifest(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=1)


def decode_manifest(data: bytes) -> Manifest:
    return msgspec.json.decode(data, type=Manifest)


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- the checks: the archive's digest, the Ed25519 signatures, the unpacked files ------------

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
        raise ReleaseInvalid(f"the configured public key is not a base64 Ed25519 key: {exc}") from None


def verify_signature(public_key: Ed25519PublicKey, version: str, sha256: str, signature: str) -> None:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, signed_message(version, sha256))
    except (binascii.Error, ValueError, InvalidSignature):
        raise ReleaseInvalid(f"bad signature for release {version}: not signed by the fleet's key") from None


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
        raise ReleaseInvalid(f"checksum mismatch for release {version}: got {actual[:12]}..., "
                                 f"expected {sha256[:12]}...")
    verify_signature(public_key, version, sha256, signature)


def verify_tree(folder: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is there with its digest, and nothing else is."""
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    found.discard("manifest.json")
    missing, extra = manifest.files.keys() - found, found - manifest.files.keys()
    if missing or extra:
        names = sorted(missing)[:3] + sorted(extra)[:3]
        raise ReleaseInvalid(f"release {manifest.version} does not match its manifest "
                                 f"({len(missing)} missing, {len(extra)} unlisted: {', '.join(names)})")
    for name, expected in manifest.files.items():
        if sha256_file(folder / name) != expected:
            raise ReleaseInvalid(f"release {manifest.version}: {name} does not match its manifest digest")


def read_manifest(archive: Path) -> Manifest:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST_NAME)
            if member is None:
                raise KeyError(MANIFEST_NAME)
            return decode_manifest(member.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise ReleaseInvalid(f"the archive has no readable manifest: {exc}") from None
