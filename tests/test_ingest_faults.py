"""Ingest through faults: the database gone for 30 s, the consumer killed, SIGTERM, fuzz.

The tests wait on states, never for a time: rows in the database, the consumer's metrics (in
process, or from its /metrics), a process's exit; each wait
has a timeout and says what it waited for. The one fixed time is the outage's length, which
is the scenario."""

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from cityops.embedded.broker import EmbeddedBroker
from cityops.embedded.process import free_port
from cityops.storage import Database
from contract.telemetry import telemetry_topic
from ingest.process import start_consumer
from tests.ingest_helpers import (
    devices,
    eventually,
    frog_messages,
    frog_payload,
    ingest_settings,
    metric,
    publish,
    publish_as_a_device,
    rows_are,
    rows_of,
    running_ingest,
)
from tests.tcp_proxy import CuttableProxy, database_behind_proxy


@pytest.fixture
async def proxied_db(database_url: str) -> AsyncIterator[tuple[Database, CuttableProxy]]:
    async with database_behind_proxy(database_url) as pair:
        yield pair


OUTAGE_S = 30.0


async def test_the_database_gone_for_30_seconds_loses_nothing(
        db: Database, proxied_db: tuple[Database, CuttableProxy], broker: EmbeddedBroker, unique: str) -> None:
    ingest_db, proxy = proxied_db
    ids = await devices(db, unique, 4)
    async with running_ingest(ingest_db, broker.url, ingest_settings(unique)) as service:
        await publish(broker.url, frog_messages(ids, per_device=100)[:200])
        await eventually(lambda: rows_are(db, ids, 200), what="the first 200")
        await proxy.cut()
        cut_at = time.monotonic()
        await publish(broker.url, frog_messages(ids, per_device=100)[200:])  # arrives during the outage

        async def holding_and_retrying() -> bool:  # messages of the outage batched, their commit retried
            return (metric(service, "cityops_ingest_in_flight_messages") > 0
                    and metric(service, "cityops_ingest_database_retries_total") > 0)
        await eventually(holding_and_retrying, timeout_s=OUTAGE_S,
                         what="the consumer to hold messages sent during the outage and retry their commit")
        # the outage lasts its 30 s (the scenario, not a wait for a state), the consumer retrying
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
        assert await rows_of(db, ids) == 200
        assert metric(service, "cityops_ingest_database_retries_total") > 0
        await proxy.restore()
        await eventually(lambda: rows_are(db, ids, 400), timeout_s=60, what="all 400 after the outage")


def _ingest_process(database_url: str, broker_url: str, client_id: str, group: str,
                    metrics_port: int = 0) -> subprocess.Popen[bytes]:
    return start_consumer(database_url, broker_url, client_id=client_id, group=group,
                          metrics_port=metrics_port, flush_interval_s="0.05", device_messages_per_s="0")


async def test_a_consumer_killed_mid_stream_loses_nothing_after_restart(
        db: Database, database_url: str, broker: EmbeddedBroker, unique: str) -> None:
    ids = await devices(db, unique, 5)
    messages = frog_messages(ids, per_device=400, readings=2)
    port = free_port()
    with _ingest_process(database_url, broker.url, f"{unique}-c", unique, metrics_port=port) as consumer:
        await _until_subscribed(consumer, port)
        # the devices' way (MQTT 5): Mosquitto does not queue for a shared subscription whose
        # only member is away, it answers "no matching subscribers" and the device sends again
        sending = asyncio.create_task(_stream(broker.url, messages, as_devices=True))
        await eventually(lambda: _more_than(db, ids, 200), what="a stream under way")
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(timeout=10)
    written_at_kill = await rows_of(db, ids)
    assert written_at_kill < 4000
    # nobody consumes from the kill (the process has exited: waited on above) until the new process
    # has started and subscribed, a second or more of Python start-up: the gap needs no sleep
    with _ingest_process(database_url, broker.url, f"{unique}-c", unique) as consumer:
        try:
            await sending
            try:
                await eventually(lambda: rows_are(db, ids, 4000), timeout_s=60, what="all 4000 after restart")
            except AssertionError as exc:  # say how far it got: stuck, lost or refused?
                dead = await db.fetchval("SELECT count(*) FROM dead_letters WHERE device_id = ANY($1)", ids)
                raise AssertionError(f"{exc}: {await rows_of(db, ids)} rows ({written_at_kill} at the kill), "
                                     f"{dead} dead letters") from None
        finally:
            consumer.send_signal(signal.SIGTERM)
            assert consumer.wait(timeout=30) == 0  # SIGTERM: drains and exits cleanly


async def test_ten_thousand_fuzzed_messages_all_land_in_dead_letters_and_the_consumer_carries_on(
        db: Database, broker: EmbeddedBroker, unique: str) -> None:
    [device] = await devices(db, unique, 1)
    rng = random.Random(20251123)
    topic = telemetry_topic(device)
    fuzzed = [_mutate(frog_payload(device, 0), rng) for _ in range(10_000)]
    expected_keys, expected_letters = _expected(device, fuzzed)
    async with running_ingest(db, broker.url, ingest_settings(unique)) as service:
        await publish(broker.url, [(topic, p) for p in fuzzed])
        await publish(broker.url, [(topic, frog_payload(device, 5))])
        await eventually(lambda: rows_are(db, [device], len(expected_keys) + 1), timeout_s=90,
                         what="the good message after the fuzz")
        letters = await db.fetch("SELECT reason FROM dead_letters WHERE device_id = $1", device)
    assert metric(service, "cityops_ingest_messages_total", channel="telemetry") == len(fuzzed) + 1
    assert len(letters) == expected_letters == metric(service, "cityops_ingest_dead_letters_total")
    assert expected_letters >= 9_000 and all(row["reason"] for row in letters)


def _expected(device: str, payloads: list[bytes]) -> tuple[set[tuple[str, object]], int]:
    """What the pure rules make of the mutants: distinct row keys, and dead letters."""
    from datetime import UTC, datetime, timedelta

    from cityops.storage.devices import RegisteredDevice
    from ingest.accept import Incoming, decode, judge
    from tests.ingest_helpers import T0

    registry = {device: RegisteredDevice(device, "frog", T0 - timedelta(days=30), retired=False)}
    verdict = judge([decode(Incoming(telemetry_topic(device), p, datetime.now(UTC))) for p in payloads],
                    registry, timedelta(minutes=5))
    return {(row[0], row[1]) for row in verdict.rows["frog"]}, len(verdict.dead_letters)


def _mutate(payload: bytes, rng: random.Random) -> bytes:
    data = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randrange(len(data))
        if choice < 0.4:
            data[position] = rng.randrange(256)
        elif choice < 0.7:
            del data[position:position + rng.randint(1, 8)]
        else:
            data[position:position] = rng.choice([b"null", b'"x"', b"-1e999", b"{", b"]", b"99999"])
    return bytes(data)


async def _stream(url: str, messages: list[tuple[str, bytes]], chunks: int = 20, pause_s: float = 0.1,
                  as_devices: bool = False) -> None:
    """Publish in chunks with pauses: a stream that lasts a couple of seconds, on any machine.
    `as_devices`: MQTT 5, and what finds no subscriber is sent again (publish_as_a_device)."""
    size = -(-len(messages) // chunks)
    for start in range(0, len(messages), size):
        if as_devices:
            await publish_as_a_device(url, messages[start:start + size], timeout_s=90)
        else:
            await publish(url, messages[start:start + size])
        await asyncio.sleep(pause_s)


async def _more_than(db: Database, ids: list[str], expected: int) -> bool:
    return await rows_of(db, ids) > expected


async def _until_subscribed(consumer: subprocess.Popen[bytes], metrics_port: int) -> None:
    """Until the consumer process's metrics say the broker confirmed its telemetry subscription."""
    async def subscribed() -> bool:
        if consumer.poll() is not None:
            raise AssertionError(f"the consumer exited ({consumer.returncode}) before it subscribed")
        try:
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)).text
        except httpx.HTTPError:
            return False  # not serving its metrics yet
        return "cityops_ingest_subscribed 1.0" in text
    await eventually(subscribed, timeout_s=30, what="the consumer connected and subscribed (its metrics)")


async def test_the_health_probe_and_metrics_endpoint_tell_a_running_consumer_from_a_cut_off_one(
        db: Database, database_url: str, broker: EmbeddedBroker, unique: str) -> None:
    port = free_port()
    with _ingest_process(database_url, broker.url, f"{unique}-p", unique, metrics_port=port) as consumer:
        try:
            async def healthy() -> bool:
                code, out = await _probe(port)
                return code == 0 and out.startswith("OK")
            await eventually(healthy, what="the probe to pass")
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
            assert "cityops_ingest_broker_connected 1.0" in metrics
            assert "cityops_ingest_readings_written_total" in metrics

            await broker.stop()
            code, out = await _probe(port)
            assert code == 1 and "not connected to the broker" in out
        finally:
            consumer.send_signal(signal.SIGTERM)
            consumer.wait(timeout=30)
    code, out = await _probe(port)
    assert code == 1 and "no ingest metrics" in out


async def _probe(metrics_port: int) -> tuple[int, str]:
    """`cityops ingest --check` as an orchestrator's health check would run it."""
    env = {**os.environ, "CITYOPS_INGEST__METRICS_PORT": str(metrics_port)}
    probe = await asyncio.create_subprocess_exec(sys.executable, "-m", "cityops_cli", "ingest", "--check", env=env,
                                                 stdout=asyncio.subprocess.PIPE)
    out, _ = await probe.communicate()
    return probe.returncode or 0, out.decode()
