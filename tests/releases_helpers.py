"""Shared pieces of the release tests: a signing key, quick builds (no wheels), a copy of the
agent's source with a bug in it, registered devices, and the API served on a free port."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityops.settings import ReleasesSettings, Settings, load_settings
from cityops.storage import Database
from devices import registry
from devices.releases.build import BuiltRelease, build_release, default_source
from devices.releases.offers import sign_offer
from devices.releases.signing import KeyPair, keygen, load_private_key
from devices.releases.store import Release
from devices.spec import DeviceSpec
from firmware.update.manifest import UpdateOffer
from ops_api.app import create_app
from tests import api_helpers

BRISTOL = (-2.59, 51.45)


def version(unique: str, patch: int = 1) -> str:
    """A release version of this test's own (the database is shared), newer than the factory 0.1.0."""
    return f"1.{int(unique[1:], 16)}.{patch}"


def signed_offer(key: Ed25519PrivateKey, release: Release, rollout_id: int = 1, *, valid_s: float = 3600,
                 min_version: str | None = None) -> UpdateOffer:
    return sign_offer(key, release, rollout_id, datetime.now(UTC) + timedelta(seconds=valid_s), min_version)


def fleet_key(folder: Path) -> tuple[KeyPair, Ed25519PrivateKey]:
    pair = keygen(folder)
    return pair, load_private_key(pair.private_path)


def build(version: str, out: Path, key: Ed25519PrivateKey, source: Path | None = None) -> BuiltRelease:
    return build_release(version, out, key, source=source)


def agent_source_copy(folder: Path, patch: dict[str, str] | None = None) -> Path:
    """A copy of the agent's packages to build from, with `patch` (path -> text appended)."""
    source = default_source()
    for package in ("firmware", "cityops"):
        shutil.copytree(source / package, folder / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name, text in (patch or {}).items():
        path = folder / name
        path.write_text(path.read_text() + text)
    return folder


async def register(db: Database, device_id: str, kind: str = "frog", lon: float = BRISTOL[0],
                   lat: float = BRISTOL[1]) -> str:
    """Register a device; its secret."""
    issued = await registry.add_device(db, DeviceSpec(device_id, kind, lon, lat))
    return issued.secret


def api_settings(store: Path, **releases: object) -> Settings:
    return load_settings(releases=ReleasesSettings(store_dir=store, **releases))  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def serving(settings: Settings, db: Database) -> AsyncIterator[str]:
    """The real API on a free port (uvicorn in this process); its base URL."""
    async with api_helpers.serving(create_app(settings, db=db)) as base_url:
        yield base_url
