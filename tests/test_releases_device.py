"""The device side end to end: the launcher (a real process) runs the agent (real processes,
one per version) against the real broker, downloading from the real API (uvicorn on a free
port, real PostgreSQL). A fake sensor only at the seam: a DHT22 whose sysfs files are in tmp.

- a signed release installs, reports each step and becomes healthy; readings sampled while
  the update happens (the broker cut away) are published afterwards, none lost;
- a release whose agent crashes on start is rolled back to the previous version;
- a tampered release is refused and reported; a truncated download resumes; a full disk refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityops.storage import Database
from contract.releases import UpdateOffer
from devices.releases import service, store
from devices.releases.store import Release
from firmware.update.download import Credentials
from firmware.update.install import install
from firmware.update.layout import Layout
from firmware.update.updater import Updater
from tests.agent_helpers import collecting
from tests.conftest import BrokerInstance
from tests.releases_helpers import (
    agent_source_copy,
    api_settings,
    build,
    fleet_key,
    launched,
    make_device,
    register,
    reports,
    serving,
    signed_offer,
    steps,
    version,
    wait_until,
)
from tests.tcp_proxy import CuttableProxy


async def offer(mqtt_url: str, device_id: str, release: Release, key: Ed25519PrivateKey, rollout_id: int = 1) -> None:
    """What a rollout publishes: the operator's signed offer in the retained config."""
    async with service.publisher(mqtt_url) as publish:
        await publish(f"cityops/v1/devices/{device_id}/config",
                      service.config_payload({"v": 1}, signed_offer(key, release, rollout_id)))


def spooled_ever(spool: Path) -> int:
    with contextlib.closing(sqlite3.connect(spool)) as db:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
    return int(row[0]) if row else 0




async def test_a_signed_release_installs_reports_healthy_and_no_reading_is_lost(
        mosquitto: BrokerInstance, db: Database, unique: str, tmp_path: Path) -> None:
    pair, key = fleet_key(tmp_path / "keys")
    built = build(version(unique, 1), tmp_path / "dist", key)
    release = await store.publish_release(db, built.archive, built.signature, pair.public_key, tmp_path / "store")
    device_id = f"{unique}-frog"
    secret = await register(db, device_id)
    # ~2.5 s for the download, so the broker can be cut away while the update happens
    settings = api_settings(tmp_path / "store", download_bytes_per_s=25_000, download_burst_bytes=16_000)
    listener = asyncio.create_task(service.listen_reports(db, mosquitto.url, client_id=f"{unique}-releases"))
    async with serving(settings, db) as base_url, CuttableProxy("127.0.0.1", mosquitto.port) as proxy, \
            collecting(mosquitto.port, unique) as collector:
        device = make_device(tmp_path / "device", device_id, secret, proxy.port, pair.public_key, base_url)
        async with launched(device):
            await collector.wait_for(lambda: len(collector.readings(device_id)) >= 1)  # the factory version runs
            await offer(mosquitto.url, device_id, release, key)
            await collector.wait_for(lambda: "downloading" in steps(collector, device_id, release.version))
            await proxy.cut()  # the update goes on without the broker
            cut_at = datetime.now(UTC)
            await wait_until(lambda: device.layout.current() == release.version, what="the switch")
            # the new version samples at start, while it cannot publish: into the spool
            await wait_until(lambda: _pending(device.spool) >= 1, what="a reading spooled during the update")
            restored_at = datetime.now(UTC)
            await proxy.restore()
            await collector.wait_for(lambda: "healthy" in steps(collector, device_id, release.version), 40)
            await wait_until(lambda: _pending(device.spool) == 0, what="the spool to drain")
        assert steps(collector, device_id, release.version) == ["downloading", "verified", "installed", "healthy"]
        arrived = {r.ts for r in collector.readings(device_id)}
        assert len(arrived) == spooled_ever(device.spool), "every reading ever spooled was published"
        assert any(cut_at <= ts <= restored_at for ts in arrived), "readings taken during the update arrived"
        assert {b.fw for b in collector.batches if b.device_id == device_id} >= {release.version}
    assert device.layout.current() == release.version and device.layout.previous() is None  # previous: factory
    assert device.layout.read_trial() is None and device.layout.installed(release.version)
    async with asyncio.timeout(10):  # the release service stores the reports as they come
        while await db.fetchval("SELECT count(*) FROM release_reports WHERE device_id = $1", device_id) < 4:
            assert not listener.done(), listener
            await asyncio.sleep(0.05)
    rows = await db.fetch("SELECT step, rollout_id FROM release_reports WHERE device_id = $1 ORDER BY reported_at",
                          device_id)
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    assert [r["step"] for r in rows] == ["downloading", "verified", "installed", "healthy"]


def _pending(spool: Path) -> int:
    with contextlib.closing(sqlite3.connect(spool)) as db:
        return int(db.execute("SELECT count(*) FROM readings").fetchone()[0])


async def test_a_release_that_crashes_on_start_is_rolled_back_to_the_previous_version(
        mosquitto: BrokerInstance, db: Database, unique: str, tmp_path: Path) -> None:
    pair, key = fleet_key(tmp_path / "keys")
    good = build(version(unique, 1), tmp_path / "dist", key)
    source = agent_source_copy(tmp_path / "src", {"firmware/agent.py": "\nraise RuntimeError('this release crashes')"})
    bad = build(version(unique, 2), tmp_path / "dist", key, source=source)
    release = await store.publish_release(db, bad.archive, bad.signature, pair.public_key, tmp_path / "store")
    device_id = f"{unique}-frog"
    secret = await register(db, device_id)
    async with serving(api_settings(tmp_path / "store"), db) as base_url, \
            collecting(mosquitto.port, unique) as collector:
        device = make_device(tmp_path / "device", device_id, secret, mosquitto.port, pair.public_key, base_url)
        install(good.archive, device.layout, good.version, reserve_bytes=0)  # the version in service
        device.layout.set_current(good.version)
        async with launched(device):
            await collector.wait_for(lambda: len(collector.readings(device_id)) >= 1)
            await offer(mosquitto.url, device_id, release, key)
            # only a running agent publishes reports: this one comes from the version rolled back to
            await collector.wait_for(lambda: "rolled_back" in steps(collector, device_id, release.version), 40)
        [rolled_back] = [r for r in reports(collector, device_id) if r.step == "rolled_back"]
        assert rolled_back.from_version == good.version and "crash loop: 2 exits" in (rolled_back.reason or "")
        assert {b.fw for b in collector.batches if b.device_id == device_id} == {good.version}
    assert device.layout.current() == good.version  # back on the previous version
    assert "crash loop" in device.layout.failed()[release.version]  # and it is not installed again
    assert steps(collector, device_id, release.version) == ["downloading", "verified", "installed", "rolled_back"]
    log = device.log.read_text()
    assert "this release crashes" in log and "rolling back" in log
    assert log.count(f"starting the agent, version {release.version}") == 2  # not retried after the rollback


async def test_a_release_that_never_publishes_is_rolled_back_at_the_health_deadline(
        mosquitto: BrokerInstance, db: Database, unique: str, tmp_path: Path) -> None:
    pair, key = fleet_key(tmp_path / "keys")
    source = agent_source_copy(tmp_path / "src", {"firmware/agent.py": "\nimport time\ntime.sleep(3600)\n"})
    hung = build(version(unique, 2), tmp_path / "dist", key, source=source)
    release = await store.publish_release(db, hung.archive, hung.signature, pair.public_key, tmp_path / "store")
    device_id = f"{unique}-frog"
    secret = await register(db, device_id)
    async with serving(api_settings(tmp_path / "store"), db) as base_url, \
            collecting(mosquitto.port, unique) as collector:
        device = make_device(tmp_path / "device", device_id, secret, mosquitto.port, pair.public_key,
                             base_url, health_timeout_s=2)
        async with launched(device):
            await offer(mosquitto.url, device_id, release, key)
            await collector.wait_for(lambda: "rolled_back" in steps(collector, device_id, release.version), 30)
    [rolled_back] = [r for r in reports(collector, device_id) if r.step == "rolled_back"]
    assert rolled_back.reason == "no reading published within 2 s of the switch"
    assert device.layout.current() is None  # back on the factory agent, which sent the report


async def test_a_tampered_release_is_refused_and_reported_and_the_device_keeps_running(
        mosquitto: BrokerInstance, db: Database, unique: str, tmp_path: Path) -> None:
    pair, key = fleet_key(tmp_path / "keys")
    built = build(version(unique, 1), tmp_path / "dist", key)
    release = await store.publish_release(db, built.archive, built.signature, pair.public_key, tmp_path / "store")
    data = bytearray(release.path.read_bytes())  # the stored file changes after it was signed
    data[-100] ^= 0x01
    release.path.write_bytes(bytes(data))
    device_id = f"{unique}-frog"
    secret = await register(db, device_id)
    async with serving(api_settings(tmp_path / "store"), db) as base_url, \
            collecting(mosquitto.port, unique) as collector:
        device = make_device(tmp_path / "device", device_id, secret, mosquitto.port, pair.public_key, base_url)
        async with launched(device):
            await collector.wait_for(lambda: len(collector.readings(device_id)) >= 1)
            await offer(mosquitto.url, device_id, release, key)
            await collector.wait_for(lambda: "failed" in steps(collector, device_id, release.version))
        [failed] = [r for r in reports(collector, device_id) if r.step == "failed"]
        assert "checksum mismatch" in (failed.reason or "")
    assert steps(collector, device_id, release.version) == ["downloading", "failed"]
    assert device.layout.current() is None and not (device.layout.versions / release.version).exists()
    assert list(device.layout.downloads.iterdir()) == []  # the bad file is not kept


def _updater(layout: Layout, device_id: str, secret: str, public_key: str | None, base_url: str,
             **kwargs: object) -> Updater:
    return Updater(layout, "0.0.1", public_key=public_key, base_url=base_url, allow_http=True,
                   credentials=lambda: Credentials(device_id, secret), **kwargs)  # type: ignore[arg-type]


async def test_a_truncated_download_resumes_then_verifies_and_bad_input_is_refused(
        db: Database, unique: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "firmware.update.download")
    pair, key = fleet_key(tmp_path / "keys")
    built = build(version(unique, 1), tmp_path / "dist", key)
    release = await store.publish_release(db, built.archive, built.signature, pair.public_key, tmp_path / "store")
    device_id = f"{unique}-frog"
    secret = await register(db, device_id)
    async with serving(api_settings(tmp_path / "store"), db) as base_url:
        the_offer: UpdateOffer = signed_offer(key, release, 7)
        layout = Layout(tmp_path / "opt")
        layout.ensure()
        # a power cut left the first half on disk: the rest comes with a Range request
        part = layout.downloads / f"{release.version}.tar.gz.part"
        part.write_bytes(built.archive.read_bytes()[: built.size // 2])
        updater = _updater(layout, device_id, secret, pair.public_key, base_url)
        assert await asyncio.to_thread(updater.prepare, the_offer)
        assert layout.installed(release.version) and not part.exists()
        assert f"at byte {built.size // 2} of {built.size}" in caplog.text

        # a full disk: refused before anything is written (the free-space check's seam)
        full = Layout(tmp_path / "full")
        assert not await asyncio.to_thread(
            _updater(full, device_id, secret, pair.public_key, base_url, free_bytes=lambda _p: 10_000).prepare,
            the_offer)
        assert "not enough space" in full.failed()[release.version]
        assert list(full.versions.iterdir()) == []

        # no key configured, a wrong secret: refused, reported, nothing installed
        for name, updater in (
                ("nokey", _updater(Layout(tmp_path / "nokey"), device_id, secret, None, base_url)),
                ("wrong", _updater(Layout(tmp_path / "wrong"), device_id, "nope", pair.public_key, base_url))):
            assert not await asyncio.to_thread(updater.prepare, the_offer)
            assert not updater.layout.installed(release.version), name
        nokey = Layout(tmp_path / "nokey")  # a configuration problem: reported, not held against the version
        assert nokey.failed() == {}
        assert ["no public_key" in json.loads(p.read_text())["update"]["reason"] for p in nokey.pending_reports()] \
            == [True]
        assert "HTTP 401" in Layout(tmp_path / "wrong").failed()[release.version]
        outbox = [json.loads(p.read_text())["update"] for p in Layout(tmp_path / "wrong").pending_reports()]
        assert [(r["step"], r["rollout_id"]) for r in outbox] == [("downloading", 7), ("failed", 7)]

        # cancelled mid-way (the agent stopping): not failed, picked up again next time
        stop = threading.Event()
        stop.set()
        later = Layout(tmp_path / "later")
        assert not await asyncio.to_thread(
            _updater(later, device_id, secret, pair.public_key, base_url, cancelled=stop).prepare, the_offer)
        assert later.failed() == {}


async def test_without_a_usable_update_folder_the_agent_still_runs(
        mosquitto: BrokerInstance, db: Database, unique: str, tmp_path: Path) -> None:
    pair, key = fleet_key(tmp_path / "keys")
    built = build(version(unique, 1), tmp_path / "dist", key)
    release = await store.publish_release(db, built.archive, built.signature, pair.public_key, tmp_path / "store")
    device_id = f"{unique}-frog"
    secret = await register(db, device_id)
    async with serving(api_settings(tmp_path / "store"), db) as base_url, \
            collecting(mosquitto.port, unique) as collector:
        device = make_device(tmp_path / "device", device_id, secret, mosquitto.port, pair.public_key, base_url)
        (tmp_path / "device" / "opt").write_text("a file where the folder should be")
        async with launched(device):
            await offer(mosquitto.url, device_id, release, key)
            await collector.wait_for(lambda: len(collector.readings(device_id)) >= 1)
            # the offer arrived with the connection; it cannot be taken
            await wait_until(lambda: "impossible" in device.log.read_text(), what="the offer to be declined")
    log = device.log.read_text()
    assert "running the installed agent without them" in log and f"update to {release.version} impossible" in log
