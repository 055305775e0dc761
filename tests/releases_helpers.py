"""Shared pieces of the release tests: a signing key, quick builds (no wheels), a copy of the
agent's source with a bug in it, registered devices, and the API served on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityops.embedded.process import spawn, stop_process
from cityops.settings import ReleasesSettings, Settings, load_settings
from cityops.storage import Database
from contract.releases import Report, UpdateOffer, decode_report
from devices import registry
from devices.releases.build import AGENT_PACKAGES, BuiltRelease, build_release, default_source
from devices.releases.offers import sign_offer
from devices.releases.signing import KeyPair, keygen, load_private_key
from devices.releases.store import Release
from devices.spec import DeviceSpec
from firmware.update.layout import Layout
from ops_api.app import create_app
from tests import api_helpers
from tests.agent_helpers import Collector

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
    for package in AGENT_PACKAGES:
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


@dataclass
class Device:
    device_id: str
    secret: str
    config: Path
    layout: Layout
    spool: Path
    log: Path


def make_device(folder: Path, device_id: str, secret: str, mqtt_port: int, public_key: str, base_url: str,
                health_timeout_s: float = 30) -> Device:
    iio = folder / "iio"
    iio.mkdir(parents=True)
    (iio / "in_temp_input").write_text("21500\n")
    (iio / "in_humidityrelative_input").write_text("55000\n")
    (folder / "secret").write_text(secret + "\n")
    spool = folder / "spool.sqlite3"
    config = folder / "agent.toml"
    config.write_text(
        f'device_id = "{device_id}"\nkind = "frog"\ninterval_s = 10\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\nusername = "{device_id}"\n'
        f'password_file = "{folder / "secret"}"\nkeepalive_s = 10\n'
        f'[spool]\npath = "{spool}"\n'
        f'[sensors.climate]\ndriver = "dht22"\niio_device = "{iio}"\n'
        f'[update]\nroot = "{folder / "opt"}"\npublic_key = "{public_key}"\nhealth_timeout_s = {health_timeout_s}\n'
        f'base_url = "{base_url}"\nallow_http = true\n'
        'crash_loop_restarts = 2\ncrash_loop_window_s = 60\nrestart_delay_s = 0.2\nreserve_mb = 0\n')
    return Device(device_id, secret, config, Layout(folder / "opt"), spool, folder / "launcher.log")


@contextlib.asynccontextmanager
async def launched(device: Device) -> AsyncIterator[None]:
    proc = spawn([sys.executable, "-m", "firmware.update.launcher", "--config", str(device.config)],
                 log_path=device.log)
    try:
        yield
    finally:
        await stop_process(proc, sig=signal.SIGTERM)
        assert proc.returncode == 0, device.log.read_text()[-3000:]


def reports(collector: Collector, device_id: str) -> list[Report]:
    with collector._lock:
        payloads = [p for d, p, _r in collector.statuses if d == device_id]
    return [r for r in map(decode_report, payloads) if r is not None]


def steps(collector: Collector, device_id: str, version: str) -> list[str]:
    return [r.step for r in reports(collector, device_id) if r.version == version]


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
