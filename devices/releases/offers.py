"""The offer a rollout makes: signed by the operator when the rollout starts, relayed unchanged
by every tick. The signature (contract.releases.offer_message) covers the version,
digest, size, rollout id, expiry and optional minimum version, so the platform, its service
accounts and the MQTT link can carry an offer but not make or change one. No URL: devices
download from their own configured base.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.releases import UpdateOffer, offer_message, version_key
from devices.releases.errors import RolloutError


class Signable(Protocol):
    @property
    def version(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def signature(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...


def check_terms(version: str, expires_at: datetime, min_version: str | None, now: datetime) -> None:
    """What a rollout's offer must be for devices to take it at all."""
    key = version_key(version)
    if key is None:
        raise RolloutError(f"release {version} has no version order (like 1.4.0): devices could not tell it is "
                           "newer, so they would refuse it")
    if expires_at <= now:
        raise RolloutError(f"the offer would expire at {expires_at.isoformat()}, which is not in the future")
    if min_version is not None:
        floor = version_key(min_version)
        if floor is None or floor > key:
            raise RolloutError(f"--min-version {min_version} must be a version at most {version}")


def sign_offer(key: Ed25519PrivateKey, release: Signable, rollout_id: int, expires_at: datetime,
               min_version: str | None = None) -> UpdateOffer:
    expires_at = expires_at.astimezone(UTC).replace(microsecond=0)
    message = offer_message(release.version, release.sha256, release.size_bytes, rollout_id, expires_at, min_version)
    return UpdateOffer(version=release.version, sha256=release.sha256, size=release.size_bytes, rollout_id=rollout_id,
                       expires_at=expires_at, signature=release.signature,
                       offer_signature=base64.b64encode(key.sign(message)).decode(), min_version=min_version)
