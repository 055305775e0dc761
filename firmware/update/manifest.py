"""What a release is, what the platform offers, and what the device reports: the shared
contract between `devices/releases` (which builds and offers) and this package (which installs).

A release is one gzip tarball:

    manifest.json      a `Manifest`: version, every other file with its SHA-256, requirements
    src/               the agent's packages (firmware/, the few cityops modules it imports)
    wheels/            optional: the locked dependencies as wheels

and a detached Ed25519 signature over `signed_message(version, sha256 of the tarball)`. The
manifest is inside the tarball, so the signature covers it; the version is in the signed
message, so a genuine old release cannot be passed off as a newer one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

from cityops.telemetry import UtcTime

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


class UpdateOffer(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The `update` object the platform puts in a device's retained config."""

    version: Version
    url: str
    sha256: Sha256
    signature: str  # base64 Ed25519 signature of signed_message(version, sha256)
    size: Annotated[int, msgspec.Meta(gt=0)]
    rollout_id: int | None = None


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
