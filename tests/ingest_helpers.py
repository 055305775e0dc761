"""Shared pieces for the ingest tests: registering devices, publishing, waiting for rows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiomqtt

from cityops.mqtt import MqttTarget
from cityops.settings import IngestSettings
from cityops.storage import Database
from contract.telemetry import NO_MATCHING_SUBSCRIBERS, FrogBatch, FrogReading, encode_batch, telemetry_topic
from ingest.metrics import IngestMetrics
from ingest.service import IngestService

T0 = datetime(2025, 1, 6, tzinfo=UTC)


def ingest_settings(unique: str, **overrides: object) -> IngestSettings:
    base: dict[str, object] = {"client_id": f"ingest-{unique}", "share_group": unique, "metrics_port": 0,
                               "flush_interval_s": 0.05, "registry_refresh_s": 0.5, "retry_max_s": 1.0,
                               "device_messages_per_s": 0}  # floods from one device are what these tests send
    return IngestSettings(**{**base, **overrides})  # type: ignore[arg-type]


async def register(db: Database, device_id: str, kind: str = "frog",
                   registered_at: datetime = T0 - timedelta(days=30), retired: bool = False) -> None:
    await db.execute(
        "INSERT INTO devices (device_id, kind, registered_at, status) VALUES ($1, $2, $3, $4)",
        device_id, kind, registered_at, "retired" if retired else "active")


async def devices(db: Database, unique: str, count: int, kind: str = "frog") -> list[str]:
    ids = [f"{unique}-{kind[0]}{i}" for i in range(count)]
    for device_id in ids:
        await register(db, device_id, kind)
    return ids


def frog_payload(device_id: str, seq: int, readings: int = 1, start: datetime = T0,
                 battery_v: float | None = 3.7) -> bytes:
    """Message `seq` of a device: `readings` readings five minutes apart, after the earlier messages'."""
    first = start + timedelta(minutes=5 * seq * readings)
    return encode_batch(FrogBatch(v=1, device_id=device_id, seq=seq, fw="1.0.0", battery_v=battery_v, readings=[
        FrogReading(ts=first + timedelta(minutes=5 * i), air_temp_c=18.0 + (seq + i) % 5, rh_pct=60.0)
        for i in range(readings)]))


async def publish(url: str, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
    async with aiomqtt.Client(**MqttTarget.from_url(url).client_kwargs(), max_inflight_messages=1000) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=qos)


def frog_messages(device_ids: list[str], per_device: int, readings: int = 1) -> list[tuple[str, bytes]]:
    return [(telemetry_topic(d), frog_payload(d, seq, readings)) for seq in range(per_device) for d in device_ids]


async def rows_of(db: Database, device_ids: list[str], table: str = "frog_readings") -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM {table} WHERE device_id = ANY($1)", device_ids))


async def rows_are(db: Database, device_ids: list[str], expected: int) -> bool:
    """For `eventually`: the devices' frog rows number exactly `expected`."""
    return await rows_of(db, device_ids) == expected


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


@asynccontextmanager
async def running_ingest(db: Database, url: str, settings: IngestSettings
                         ) -> AsyncIterator[IngestService]:
    """An ingest service in this process, connected; stopped (drained) on exit."""
    service = IngestService(db, url, settings, IngestMetrics())
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.connected.wait(), 15)
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def metric(service: IngestService, name: str, **labels: str) -> float:
    value = service.metrics.registry.get_sample_value(name, labels or None)
    return value or 0.0



def _publish_as_a_device(url: str, messages: list[tuple[str, bytes]], timeout_s: float) -> int:
    """Publish like an agent does: MQTT 5, QoS 1, and a message whose PUBACK says
    'no matching subscribers' (0x10) is kept and sent again. Returns how many resends."""
    import paho.mqtt.client as mqtt

    target = MqttTarget.from_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    outcome: dict[int, int] = {}
    client.on_publish = lambda _c, _u, mid, rc, _p: outcome.__setitem__(mid, rc.value)
    client.connect(target.hostname, target.port)
    client.loop_start()
    resends, pending = 0, list(messages)
    deadline = time.monotonic() + timeout_s
    try:
        while pending and time.monotonic() < deadline:
            sent = [(client.publish(topic, payload, qos=1), (topic, payload)) for topic, payload in pending]
            for info, _ in sent:
                info.wait_for_publish(10)
            pending = [message for info, message in sent if outcome.get(info.mid) == NO_MATCHING_SUBSCRIBERS]
            if pending:
                resends += len(pending)
                time.sleep(0.2)
    finally:
        client.loop_stop()
        client.disconnect()
    if pending:
        raise AssertionError(f"{len(pending)} messages never found a subscriber")
    return resends


async def publish_as_a_device(url: str, messages: list[tuple[str, bytes]], timeout_s: float = 30) -> int:
    return await asyncio.to_thread(_publish_as_a_device, url, messages, timeout_s)
