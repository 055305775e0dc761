"""Staged rollouts: who is in which stage (pure, property-tested), when a stage passes, and a
rollout against the real database and broker that advances on healthy reports and pauses
when failures cross the threshold."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityops.storage import Database
from contract.releases import Report, UpdateOffer, encode_report, load_public_key, offer_signature_valid
from contract.telemetry import config_topic
from devices.releases import service, store
from devices.releases.cohort import Candidate, Cohort, bucket, members, stage_count
from devices.releases.errors import RolloutError
from devices.releases.staging import Policy, Tally, decide
from tests.conftest import BrokerInstance
from tests.releases_helpers import build, fleet_key, register, version

ids = st.lists(st.from_regex(r"[a-z0-9]{2,12}", fullmatch=True), min_size=1, max_size=60, unique=True)


@given(ids, st.floats(1, 100), st.text(min_size=1, max_size=8))
def test_stages_nest_and_the_same_release_picks_the_same_devices(devices: list[str], percent: float,
                                                                 salt: str) -> None:
    candidates = [Candidate(d, "frog") for d in devices]
    cohort = Cohort(percent=percent)
    chosen = members(cohort, candidates, salt)
    assert chosen == members(cohort, list(reversed(candidates)), salt)  # order of the registry does not matter
    assert all(bucket(salt, d) < percent / 100 for d in chosen)
    reach = [chosen[:stage_count(len(chosen), s)] for s in (5, 25, 100)]
    assert reach[-1] == chosen and all(set(a) <= set(b) for a, b in itertools.pairwise(reach))
    assert not chosen or len(reach[0]) >= 1  # a first stage is never empty


def test_a_cohort_filters_by_kind_area_polygon_and_list() -> None:
    devices = [Candidate("a1", "frog", -2.59, 51.45, "Easton"), Candidate("b1", "bin", -2.59, 51.45),
               Candidate("c1", "frog", 0.1, 51.5, "Elsewhere"), Candidate("d1", "road")]
    square = "POLYGON ((-2.7 51.4, -2.5 51.4, -2.5 51.5, -2.7 51.5, -2.7 51.4))"
    assert sorted(members(Cohort(kinds=("frog",)), devices, "v")) == ["a1", "c1"]
    assert members(Cohort(area="Easton"), devices, "v") == ["a1"]
    assert sorted(members(Cohort(area_wkt=square), devices, "v")) == ["a1", "b1"]
    assert members(Cohort(devices=("d1", "zz")), devices, "v") == ["d1"]
    with pytest.raises(RolloutError):
        Cohort(percent=0)
    with pytest.raises(RolloutError):
        Cohort(kinds=("toaster",))
    with pytest.raises(RolloutError):
        Policy(stages=(50, 25, 100))


def test_a_stage_passes_on_enough_healthy_reports_and_pauses_over_the_failure_threshold() -> None:
    policy = Policy(stages=(5, 25, 100), max_failure_rate=0.1, min_healthy=3)
    assert decide(policy, 0, Tally(10, 2, 0), Tally(10, 2, 0)).action == "hold"
    assert decide(policy, 0, Tally(10, 3, 1), Tally(10, 3, 1)).action == "advance"  # 10 % is not over 10 %
    paused = decide(policy, 0, Tally(10, 5, 2), Tally(10, 5, 2))
    assert paused.action == "pause" and "2 of 10 devices failed" in paused.reason
    assert decide(policy, 0, Tally(2, 2, 0), Tally(2, 2, 0)).action == "advance"  # fewer than 3: all of them
    assert decide(policy, 2, Tally(50, 50, 0), Tally(60, 60, 0)).action == "complete"
    # a failure that came after an earlier stage passed still counts for the rollout
    assert decide(policy, 1, Tally(10, 10, 0), Tally(12, 10, 2)).action == "pause"


class Configs:
    """The retained config messages of some devices, as a device would receive them."""

    def __init__(self, url_port: int):
        self.port = url_port

    async def read(self, device_ids: list[str]) -> dict[str, dict[str, object]]:
        found: dict[str, dict[str, object]] = {}
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            for device_id in device_ids:
                await client.subscribe(config_topic(device_id), qos=1)
            try:
                async with asyncio.timeout(1.0):
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        found[str(message.topic).split("/")[3]] = json.loads(message.payload)
                        if len(found) == len(device_ids):
                            break
            except TimeoutError:
                pass
        return found


async def report(db: Database, device_id: str, version: str, step: str, reason: str | None = None,
                 at: datetime | None = None) -> bool:
    payload = encode_report(Report(step=step, version=version, at=at or datetime.now(UTC), reason=reason))  # type: ignore[arg-type]
    return await service.handle_status(db, f"cityops/v1/devices/{device_id}/status", payload)


@pytest.fixture
async def no_open_rollout(db: Database) -> object:
    """Rollouts are one at a time in the shared database: close any left open, before and after."""
    await db.execute("UPDATE release_rollouts SET state = 'cancelled' WHERE state IN ('active', 'paused')")
    yield
    await db.execute("UPDATE release_rollouts SET state = 'cancelled' WHERE state IN ('active', 'paused')")


async def test_a_staged_rollout_advances_on_healthy_reports_and_stops_when_failures_cross_the_threshold(
        mosquitto: BrokerInstance, db: Database, unique: str, tmp_path: Path, no_open_rollout: object) -> None:
    pair, key = fleet_key(tmp_path / "keys")
    built = build(version(unique, 1), tmp_path / "dist", key)
    release = await store.publish_release(db, built.archive, built.signature, pair.public_key, tmp_path / "store")
    fleet = [f"{unique}-{i:02d}" for i in range(20)]
    for device_id in fleet:
        await register(db, device_id)
    await db.execute("UPDATE devices SET calibration = '{\"air_temp_c\": -0.3}' WHERE device_id = $1", fleet[0])
    cohort = Cohort(devices=tuple(fleet))
    expires = datetime.now(UTC) + timedelta(days=14)
    rollout = await store.create_rollout(db, release.version, cohort, Policy((10, 50, 100), 0.2, 2), key=key,
                                         expires_at=expires)
    with pytest.raises(RolloutError, match="still open"):
        await store.create_rollout(db, release.version, cohort, Policy(), key=key, expires_at=expires)
    order = members(cohort, [Candidate(d, "frog") for d in fleet], release.version)
    async with service.publisher(mosquitto.url) as publish:
        first = await service.tick(db, publish)
        assert first.offered == order[:2] and first.decision is not None and first.decision.action == "hold"
        configs = await Configs(mosquitto.port).read(fleet)
        assert set(configs) == set(order[:2])  # the others were not offered anything
        update = configs[order[0]]["update"]
        assert isinstance(update, dict)
        assert update["version"] == release.version and update["sha256"] == release.sha256
        assert update["rollout_id"] == rollout.rollout_id and "url" not in update  # devices use their own base
        offer = msgspec.convert(update, UpdateOffer, strict=False)  # what the device decodes, signed by the operator
        assert offer.expires_at == expires.replace(microsecond=0) and offer.size == release.size_bytes
        assert offer_signature_valid(load_public_key(pair.public_key), offer.message(), offer.offer_signature)
        if fleet[0] in configs:  # registry config fields stay in the message
            assert configs[fleet[0]]["calibration"] == {"air_temp_c": -0.3}

        assert (await service.tick(db, publish)).offered == []  # nothing reported yet: hold
        for device_id in order[:2]:
            assert await report(db, device_id, release.version, "downloading")
            assert await report(db, device_id, release.version, "healthy")
        advanced = await service.tick(db, publish)
        assert advanced.offered == order[2:10]  # stage 2: 50 % of 20
        assert (await store.get_rollout(db, rollout.rollout_id)).stage_index == 1

        failed_at = datetime.now(UTC)
        for device_id in order[2:4]:
            assert await report(db, device_id, release.version, "healthy")
        assert await report(db, order[4], release.version, "rolled_back", "crash loop: 3 exits", failed_at)
        assert not await report(db, order[4], release.version, "rolled_back", "crash loop: 3 exits", failed_at), \
            "a report sent twice is stored once"
        last = await service.tick(db, publish)  # 1 of 8 failed: 12.5 %, under 20 %
        assert last.offered == order[10:] and last.decision is not None and last.decision.action == "hold"
        for device_id in order[10:13]:
            assert await report(db, device_id, release.version, "failed", "checksum mismatch",
                                failed_at + timedelta(seconds=1))
        paused = await service.tick(db, publish)
        assert paused.state == "paused" and paused.decision is not None
        assert "3 of 10 devices failed (30% in the stage, over the 20% threshold)" in paused.decision.reason
        assert set(await store.targets(db, rollout.rollout_id)) == set(fleet)
    status = await store.status(db)
    [mine] = [r for r in status["rollouts"] if r["rollout_id"] == rollout.rollout_id]
    assert mine["state"] == "paused" and "threshold" in mine["reason"] and mine["failed"] == 4
    assert mine["steps"] == {"healthy": 4, "rolled_back": 1, "failed": 3, "offered": 12}
    reasons = {f["device_id"]: f["reason"] for f in status["failures"] if f["version"] == release.version}
    assert reasons[order[10]] == "checksum mismatch" and reasons[order[4]] == "crash loop: 3 exits"
    async with service.publisher(mosquitto.url) as publish:  # paused: nothing more is offered
        assert (await service.tick(db, publish)).offered == []
    await store.set_state(db, rollout.rollout_id, "cancelled", "test over", allowed_from=("paused",))


async def test_a_rollout_to_all_healthy_devices_completes(mosquitto: BrokerInstance, db: Database, unique: str,
                                                         tmp_path: Path, no_open_rollout: object) -> None:
    pair, key = fleet_key(tmp_path / "keys")
    built = build(version(unique, 1), tmp_path / "dist", key)
    release = await store.publish_release(db, built.archive, built.signature, pair.public_key, tmp_path / "store")
    fleet = [f"{unique}-{i}" for i in range(3)]
    for device_id in fleet:
        await register(db, device_id)
    rollout = await store.create_rollout(db, release.version, Cohort(devices=tuple(fleet)), Policy((50, 100), 0, 1),
                                         key=key, expires_at=datetime.now(UTC) + timedelta(hours=1))
    async with service.publisher(mosquitto.url) as publish:
        result = await service.tick(db, publish)
        for device_id in result.offered:
            await report(db, device_id, release.version, "healthy")
        result = await service.tick(db, publish)
        assert result.decision is not None and result.decision.action == "hold"
        for device_id in result.offered:
            await report(db, device_id, release.version, "healthy")
        done = await service.tick(db, publish)
    assert done.state == "completed"
    assert (await store.get_rollout(db, rollout.rollout_id)).state == "completed"
    assert not await service.handle_status(db, f"cityops/v1/devices/{fleet[0]}/status", b"online")
