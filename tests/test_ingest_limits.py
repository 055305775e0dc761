"""Issue 18, part 2: ingest's limits on what comes in, and its memory under a flood of
maximal messages (a real `cityops ingest` process, Mosquitto with the shipped limits, PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityops.storage import Database
from cityops.storage.devices import RegisteredDevice
from contract.telemetry import MAX_READINGS, FrogBatch, FrogReading, encode_batch, telemetry_topic
from ingest.accept import Incoming, decode, judge
from ingest.limits import MAX_PAYLOAD_BYTES, MAX_STORED_PAYLOAD, DeviceRate
from ingest.process import start_consumer
from tests.conftest import own_mosquitto
from tests.ingest_helpers import (
    T0,
    devices,
    eventually,
    frog_payload,
    ingest_settings,
    metric,
    publish,
    publish_as_a_device,
    rows_of,
    running_ingest,
)

NOW = T0 + timedelta(days=1)
REGISTRY = {"frog-1": RegisteredDevice("frog-1", "frog", T0 - timedelta(days=30), False)}
MEMORY_BOUND_MIB = 300  # the bound docs/devices.md states for one consumer under a flood (measured 235-249)


def batch(readings: int, fw: str = "1.0.0") -> bytes:
    return encode_batch(FrogBatch(v=1, device_id="frog-1", seq=1, fw=fw, readings=[
        FrogReading(ts=T0 + timedelta(seconds=i), air_temp_c=18.0, rh_pct=60.0) for i in range(readings)]))


def verdict_of(payload: bytes):  # type: ignore[no-untyped-def]
    message = decode(Incoming(telemetry_topic("frog-1"), payload, NOW))
    return judge([message], REGISTRY, timedelta(minutes=5))


def test_a_message_of_the_most_readings_is_accepted_and_one_more_is_refused_whole() -> None:
    assert verdict_of(batch(MAX_READINGS)).reading_count == MAX_READINGS
    refused = verdict_of(batch(MAX_READINGS + 1))
    assert refused.reading_count == 0 and len(refused.dead_letters) == 1
    assert f"length <= {MAX_READINGS}" in refused.dead_letters[0].reason


def test_long_strings_are_refused() -> None:
    [letter] = verdict_of(batch(1, fw="x" * 65)).dead_letters
    assert "fw" in letter.reason


def test_an_oversized_payload_is_refused_undecoded_and_its_dead_letter_keeps_4_kb_its_length_and_sha256() -> None:
    payload = batch(1)[:-1] + b" " * (MAX_PAYLOAD_BYTES + 10 - len(batch(1))) + b"}"
    [letter] = verdict_of(payload).dead_letters
    assert len(letter.payload) == MAX_STORED_PAYLOAD == 4_096
    assert f"payload {len(payload)} bytes" in letter.reason and hashlib.sha256(payload).hexdigest() in letter.reason
    assert "over the limit of 262144" in letter.reason


def test_the_rate_limit_is_a_token_bucket_per_device() -> None:
    rate = DeviceRate(rate=2.0, burst=3)
    assert [rate.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert rate.allow("b", 0.0)  # another device has its own bucket
    assert rate.allow("a", 0.5) and not rate.allow("a", 0.5)  # 2/s: one more after half a second
    assert all(DeviceRate(rate=0, burst=1).allow("a", 0.0) for _ in range(100))  # 0: off


async def test_a_device_over_its_rate_has_the_excess_dead_lettered_and_counted(
        db: Database, mosquitto: object, unique: str) -> None:
    url = mosquitto.url  # type: ignore[attr-defined]
    [device] = await devices(db, unique, 1)
    settings = ingest_settings(unique, device_messages_per_s=0.01, device_burst=5)
    async with running_ingest(db, url, settings) as service:
        await publish(url, [(telemetry_topic(device), frog_payload(device, seq)) for seq in range(20)])
        await eventually(lambda: _letters(db, device, 15), what="15 dead letters")
        assert await rows_of(db, [device]) == 5
        assert metric(service, "cityops_ingest_rate_limited_total") == 15


async def _letters(db: Database, device: str, expected: int) -> bool:
    return await db.fetchval("SELECT count(*) FROM dead_letters WHERE device_id = $1 AND reason LIKE "
                             "'rate limit%'", device) == expected


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
async def test_one_consumer_stays_within_its_memory_bound_under_a_flood_of_maximal_messages(
        db: Database, database_url: str, unique: str, tmp_path: Path) -> None:
    ids = await devices(db, unique, 40)
    await db.execute("UPDATE devices SET registered_at = $2 WHERE device_id = ANY($1)", ids,
                     datetime(2020, 1, 1, tzinfo=UTC))
    # the biggest valid messages (1,000 readings, ~90 KB) and refused ones at the packet limit
    start = datetime.now(UTC) - timedelta(days=300)
    valid = [(telemetry_topic(d), encode_batch(FrogBatch(v=1, device_id=d, seq=s, fw="1.0.0", readings=[
        FrogReading(ts=start + timedelta(minutes=s * MAX_READINGS + i), air_temp_c=18.0, rh_pct=60.0)
        for i in range(MAX_READINGS)]))) for s in range(5) for d in ids]
    junk = [(telemetry_topic(d), b"{" + b"x" * (MAX_PAYLOAD_BYTES - 200)) for _ in range(10) for d in ids]
    flood = [m for pair in zip(valid + valid, junk, strict=True) for m in pair]
    sent_mib = sum(len(p) for _, p in flood) / 2**20
    async with own_mosquitto(tmp_path / "broker", persistent=False) as broker:
        consumer = start_consumer(database_url, broker.url, client_id=f"ingest-{unique}", group=unique)
        try:
            await publish_as_a_device(broker.url, flood, timeout_s=120)  # resent until the consumer is there
            await eventually(lambda: _all_in(db, ids, len(valid) * MAX_READINGS, len(junk)), timeout_s=120,
                             what="every reading stored and every junk message dead-lettered")
            peak = _peak_rss_mib(consumer.pid)
        finally:
            consumer.terminate()
            consumer.wait(30)
    print(f"flood {sent_mib:.0f} MiB, consumer peak RSS {peak:.0f} MiB")
    assert sent_mib > 100  # the flood is bigger than the bound
    assert peak < MEMORY_BOUND_MIB, f"peak RSS {peak:.0f} MiB over {MEMORY_BOUND_MIB} MiB after {sent_mib:.0f} MiB"


async def _all_in(db: Database, ids: list[str], readings: int, letters: int) -> bool:
    stored = await rows_of(db, ids)
    refused = await db.fetchval("SELECT count(*) FROM dead_letters WHERE device_id = ANY($1)", ids)
    return bool(stored == readings and refused == letters)
