"""What a release is, what the platform offers, and what the device reports: the shared
contract between `devices/releases` (which builds and offers) and this package (which installs).

A release is one gzip tarball:

    manifest.json      a `Manifest`: version, every other file with its SHA-256, requirements
    src/               the agent's packages (firmware/, the few cityops modules it imports)
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
