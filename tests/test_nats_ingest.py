"""Ingest on the NATS JetStream cluster (issue 26, part 3): three real `nats-server` processes
(tests/nats_helpers.py), real PostgreSQL, ingest through its durable pull consumer.

Devices here are small resending publishers (`Device`): MQTT 3.1.1, QoS 1, as their own NATS
users, to a list of nodes (the next one when theirs goes), keeping each message until its
receipt says stored and sending again what has none after a timeout, as the agent does with
`SendPolicy(receipts=True)` (firmware/sender.py). The agent's own MQTT 3.1.1 mode and broker
list landed while these were written: the last test runs real agents (firmware.agent.Agent).

Counts, not hopes: readings generated = rows stored, and the key (device, ts) makes a
duplicate row impossible, so the rows are distinct readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import aiomqtt
import pytest

from cityops.embedded.process import free_port
from cityops.nats_cluster import jetstream
from cityops.nats_cluster.config import CONSUMER, STREAM, ConsumerSpec
from cityops.settings import IngestSettings, NatsSettings, Settings
from cityops.storage import Database
from contract.receipts import decode_receipt
from contract.telemetry import FrogBatch, FrogReading, encode_batch, receipts_topic, status_topic, telemetry_topic
from devices.nats_auth import INGEST
from firmware.agent import Agent
from firmware.link import MqttOptions
from firmware.spool import Spool
from ingest.cli import check
from ingest.errors import BrokerError
from ingest.metrics import IngestMetrics
from ingest.nats_source import NatsSource, nats_sources
from ingest.process import start_consumer
from ingest.service import IngestService
from tests import nats_helpers
from tests.agent_helpers import START, frog_spec
from tests.ingest_helpers import T0, eventually, ingest_settings, register, rows_of
from tests.nats_helpers import NatsCluster, nats_cluster
from tests.tcp_proxy import database_behind_proxy

pytestmark = pytest.mark.timeout(300)
MQTT_ON_THREE_NODES = "  stream_replicas: 3\n"


@pytest.fixture
def mqtt_on_three_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """NATS's own MQTT streams ($MQTT_sess, $MQTT_msgs, $MQTT_rmsgs) on all three nodes.

    nats-server 2.9.10 made them with 2 replicas in this cluster (its log: "Creating MQTT
    streams/consumers with replicas 2"), so killing one of those two nodes left them without a
    quorum and every MQTT connect failed ("loading session record ... JetStream system
    temporarily unavailable") on the nodes left: devices could not publish at all. The mqtt
    block's `stream_replicas: 3` fixes that; cityops/nats_cluster/config.py (not this part's
    file) does not set it yet, so this adapter adds it to the configs tests/nats_helpers.py writes."""
    real = nats_helpers.node_config

    def with_three(*args: object, **kwargs: object) -> str:
        text = real(*args, **kwargs)  # type: ignore[arg-type]
        if "stream_replicas" in text:
            return text
        assert "\nmqtt {\n" in text
        return text.replace("\nmqtt {\n", "\nmqtt {\n" + MQTT_ON_THREE_NODES, 1)

    monkeypatch.setattr(nats_helpers, "node_config", with_three)


@dataclass
class Device:
    """A frog box that keeps every message until its receipt (telemetry v2), on any node."""

    device_id: str
    secret: str
    ports: list[int]
    messages: int
    readings: int = 2
    pace_s: float = 0.02  # between new messages (the device's own rate, not a wait for a state)
    resend_after_s: float = 2.0
    first: int = 0  # which of `ports` it tries first
    next_seq: int = 0
    pending: dict[int, float] = field(default_factory=dict)  # seq -> when last sent
    receipted: set[int] = field(default_factory=set)
    publishes: int = 0
    connections: int = 0

    @property
    def generated(self) -> int:
        return self.next_seq * self.readings

    def done(self) -> bool:
        return self.next_seq >= self.messages and not self.pending

    def payload(self, seq: int) -> bytes:
        first = T0 + timedelta(minutes=5 * seq * self.readings)
        return encode_batch(FrogBatch(v=2, device_id=self.device_id, seq=seq, fw="1.0.0", battery_v=3.7, readings=[
            FrogReading(ts=first + timedelta(minutes=5 * i), air_temp_c=18.0 + i, rh_pct=60.0)
            for i in range(self.readings)]))

    async def run(self, timeout_s: float = 240.0) -> None:
        attempt = self.first
        async with asyncio.timeout(timeout_s):
            while not self.done():
                port = self.ports[attempt % len(self.ports)]
                attempt += 1
                try:
                    async with aiomqtt.Client("127.0.0.1", port, username=self.device_id, password=self.secret,
                                              identifier=self.device_id, protocol=aiomqtt.ProtocolVersion.V311,
                                              clean_session=True, keepalive=5, timeout=5) as client:
                        self.connections += 1
                        await client.subscribe(receipts_topic(self.device_id), qos=0)
                        await client.publish(status_topic(self.device_id), b"online", qos=1, retain=True)
                        listening = asyncio.create_task(self._receipts(client))
                        try:
                            await self._send(client)
                        finally:
                            listening.cancel()
                            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                                await listening
                except aiomqtt.MqttError:  # its node went: the next one
                    await asyncio.sleep(0.1)

    async def _send(self, client: aiomqtt.Client) -> None:
        for seq in sorted(self.pending):  # a new connection: whatever has no receipt goes again
            await self._publish(client, seq)
        while not self.done():
            now = time.monotonic()
            for seq in [s for s, sent in self.pending.items() if now - sent >= self.resend_after_s]:
                await self._publish(client, seq)
            if self.next_seq < self.messages:
                self.next_seq += 1
                await self._publish(client, self.next_seq - 1)
            await asyncio.sleep(self.pace_s)

    async def _publish(self, client: aiomqtt.Client, seq: int) -> None:
        self.pending[seq] = time.monotonic()
        self.publishes += 1
        await client.publish(telemetry_topic(self.device_id), self.payload(seq), qos=1)

    async def _receipts(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            receipt = decode_receipt(message.payload)
            assert not receipt.refused, receipt.refused
            for seq in [s for s in self.pending if receipt.is_stored(s)]:
                del self.pending[seq]
                self.receipted.add(seq)


def nats_settings(cluster: NatsCluster) -> NatsSettings:
    return NatsSettings(urls=cluster.client_urls(), password=cluster.secrets[INGEST])  # type: ignore[arg-type]


def fleet(cluster: NatsCluster, ids: list[str], messages: int, **options: float) -> list[Device]:
    ports = [cluster.mqtt_port(name) for name in cluster.names]
    return [Device(d, cluster.secrets[d], ports, messages, first=i, **options)  # type: ignore[arg-type]
            for i, d in enumerate(ids)]


@asynccontextmanager
async def nats_ingest(db: Database, cluster: NatsCluster, settings: IngestSettings,
                      sources: list[NatsSource] | None = None) -> AsyncIterator[IngestService]:
    """An ingest service in this process reading the cluster, connected; stopped (drained) on exit."""
    make = nats_sources(nats_settings(cluster), settings)

    def open_source(generation: int) -> NatsSource:
        source = make(generation)
        if sources is not None:
            sources.append(source)
        return source

    service = IngestService(db, "mqtt://127.0.0.1:1", settings, IngestMetrics(), open_source)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.connected.wait(), 30)
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def consumer_state(cluster: NatsCluster) -> tuple[int, int, int]:
    """(num_pending, num_ack_pending, num_redelivered) of ingest's consumer."""
    async with cluster.admin() as js:
        info = await js.consumer_info(STREAM, CONSUMER)
    return info.num_pending or 0, info.num_ack_pending or 0, info.num_redelivered or 0


async def drained(cluster: NatsCluster) -> bool:
    pending, ack_pending, _ = await consumer_state(cluster)
    return pending == 0 and ack_pending == 0


async def test_readings_sent_to_any_node_are_stored_and_each_device_gets_its_receipts(
        db: Database, unique: str, tmp_path: Path) -> None:
    ids = [f"{unique}-{n}" for n in range(4)]
    for device_id in ids:
        await register(db, device_id)
    async with nats_cluster(tmp_path, ids) as cluster:
        settings = ingest_settings(unique, transport="nats")
        async with nats_ingest(db, cluster, settings) as service:
            devices = fleet(cluster, ids, 30)  # each on its own first node: n1, n2, n3, n1
            await asyncio.gather(*(d.run(60) for d in devices))
            assert await rows_of(db, ids) == sum(d.generated for d in devices) == 4 * 30 * 2
            assert all(d.receipted == set(range(30)) for d in devices)
            await eventually(lambda: drained(cluster), what="every message acknowledged")
            await eventually(lambda: _backlog_is_zero(service), what="the backlog metric at 0")
            states = await db.fetch("SELECT online, last_seq FROM devices WHERE device_id = ANY($1)", ids)
            assert [(s["online"], s["last_seq"]) for s in states] == [(True, 29)] * 4  # status news too
        assert await rows_of(db, ids) == 4 * 30 * 2
        assert await db.fetchval("SELECT count(*) FROM dead_letters WHERE device_id = ANY($1)", ids) == 0

        # ingest binds to the consumer the admin made, and never makes one (its user may not)
        async with cluster.admin() as js:
            await js.delete_consumer(STREAM, CONSUMER)
        with pytest.raises(BrokerError, match="cityops nats stream"):
            async with NatsSource(nats_settings(cluster), settings):
                pass
        async with cluster.admin() as js:
            assert await js.consumers_info(STREAM) == []


async def _backlog_is_zero(service: IngestService) -> bool:
    return service.metrics.registry.get_sample_value("cityops_ingest_broker_backlog_messages") == 0




async def test_with_the_database_down_ingest_holds_its_bound_and_keeps_it_from_redelivery(
        db: Database, database_url: str, unique: str, tmp_path: Path) -> None:
    """The bound (receive_maximum) is the backpressure: 20 delivered, the rest left in the stream;
    the 20 are marked in progress, so past AckWait (3 s here) none is redelivered."""
    device_id = f"{unique}-bp"
    await register(db, device_id)
    async with nats_cluster(tmp_path, [device_id]) as cluster:
        async with cluster.admin() as js:
            assert (await jetstream.ensure_stream(js, consumer=ConsumerSpec(ack_wait_s=3.0)))[1] == "updated"
        settings = ingest_settings(unique, transport="nats", receive_maximum=20, batch_readings=4)
        sources: list[NatsSource] = []
        async with (database_behind_proxy(database_url) as (ingest_db, proxy),
                    nats_ingest(ingest_db, cluster, settings, sources)):
            await proxy.cut()
            device = fleet(cluster, [device_id], 100, readings=1, pace_s=0.005, resend_after_s=600)[0]
            sending = asyncio.create_task(device.run(120))
            await eventually(lambda: _state_is(cluster, (80, 20, 0)), what="20 held by ingest, 80 in the stream")
            source = sources[-1]
            assert source.ack_wait_s == 3.0 and source.held == 20
            marks = source.progress_marks
            await eventually(lambda: _true(source.progress_marks >= marks + 4 * 20), timeout_s=30,
                             what="every held message marked in progress 4 times: longer than AckWait")
            assert await consumer_state(cluster) == (80, 20, 0)  # not one redelivered, nothing more taken
            await proxy.restore()
            await sending
            await eventually(lambda: drained(cluster), what="everything acknowledged")
        assert await rows_of(db, [device_id]) == 100
        assert device.receipted == set(range(100))


async def _state_is(cluster: NatsCluster, expected: tuple[int, int, int]) -> bool:
    return await consumer_state(cluster) == expected


async def _true(value: bool) -> bool:
    return value


async def test_the_stream_leader_the_consumer_leader_and_an_ingest_process_killed_lose_and_double_nothing(
        db: Database, database_url: str, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], mqtt_on_three_nodes: None) -> None:
    """Two `cityops ingest` processes share the consumer. SIGKILL, one after the other, the node
    leading the stream (devices still sending), the node leading the consumer, and one ingest
    process: every reading generated is stored, once."""
    ids = [f"{unique}-{n}" for n in range(6)]
    for device_id in [*ids, f"{unique}-probe"]:
        await register(db, device_id)
    async with nats_cluster(tmp_path, [*ids, f"{unique}-probe"]) as cluster:
        async with cluster.admin() as js:  # a short AckWait: the killed process's messages come back sooner
            await jetstream.ensure_stream(js, consumer=ConsumerSpec(ack_wait_s=10.0))
        monkeypatch.setenv("CITYOPS_NATS__URLS", ",".join(cluster.client_urls()))
        monkeypatch.setenv("CITYOPS_NATS__PASSWORD", cluster.secrets[INGEST])
        ports = {name: free_port() for name in ("a", "b")}
        consumers = {name: start_consumer(database_url, cluster.mqtt_urls()[0], client_id=f"{unique}-{name}",
                                          group=unique, metrics_port=port, transport="nats",
                                          flush_interval_s="0.05", device_messages_per_s="0",
                                          log_path=tmp_path / f"ingest-{name}.log")
                     for name, port in ports.items()}
        try:
            probe = fleet(cluster, [f"{unique}-probe"], 1)[0]
            await probe.run(60)  # stored and receipted: the consumers pull and commit
            devices = fleet(cluster, ids, 600, pace_s=0.04)
            sending = asyncio.gather(*(d.run(240) for d in devices))
            generated = 6 * 600 * 2

            await _stored_at_least(db, ids, generated // 8)
            leader = await cluster.stream_leader()
            cluster.kill(leader)  # SIGKILL, devices sending
            await _more_stored(db, ids, generated // 10)  # the two nodes left carry on
            await cluster.start_node(leader)
            await _all_replicas_current(cluster)

            leader = await cluster.consumer_leader()
            cluster.kill(leader)
            await _more_stored(db, ids, generated // 10)
            await cluster.start_node(leader)
            await _all_replicas_current(cluster)

            consumers["a"].send_signal(signal.SIGKILL)
            consumers["a"].wait()
            await _more_stored(db, ids, generated // 10)  # the other process takes all

            await sending
            assert sum(d.generated for d in devices) == generated
            assert all(d.receipted == set(range(600)) for d in devices)
            assert await rows_of(db, ids) == generated
            # the killed process's unacknowledged messages come back after AckWait, written as no-ops
            await eventually(lambda: drained(cluster), timeout_s=60, what="every message acknowledged")

            survivor = Settings(ingest=IngestSettings(metrics_port=ports["b"]))

            async def healthy_and_caught_up() -> bool:  # `cityops ingest --check` on a NATS consumer
                capsys.readouterr()
                code = await check(survivor)
                return code == 0 and capsys.readouterr().out.startswith("OK: connected; broker backlog 0 messages")
            await eventually(healthy_and_caught_up, what="--check: OK, connected, backlog 0")
        finally:
            if "sending" in locals() and not sending.done():
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending
            for proc in consumers.values():
                proc.send_signal(signal.SIGTERM)
            for proc in consumers.values():
                await asyncio.to_thread(proc.wait, 30)
    assert await rows_of(db, ids) == generated
    assert await db.fetchval("SELECT count(*) FROM dead_letters WHERE device_id = ANY($1)", ids) == 0
    assert sum(d.publishes for d in devices) >= 6 * 600  # some went twice: the resends did the work
    assert await db.fetchval(
        "SELECT count(*) - count(DISTINCT (device_id, ts)) FROM frog_readings WHERE device_id = ANY($1)", ids) == 0


async def _stored_at_least(db: Database, ids: list[str], rows: int) -> None:
    await eventually(lambda: _at_least(db, ids, rows), timeout_s=60, what=f"{rows} rows stored")


async def _more_stored(db: Database, ids: list[str], more: int) -> None:
    now = await rows_of(db, ids)
    await _stored_at_least(db, ids, now + more)


async def _at_least(db: Database, ids: list[str], rows: int) -> bool:
    return await rows_of(db, ids) >= rows


async def _all_replicas_current(cluster: NatsCluster) -> None:
    async def current() -> bool:
        try:
            async with cluster.admin() as js:
                return await jetstream.replicas_current(js, STREAM) == 3
        except Exception:  # an election under way
            return False
    await eventually(current, timeout_s=60, what="the stream's three copies current")


async def test_real_agents_on_the_cluster_lose_nothing_when_the_stream_leader_is_killed(
        db: Database, unique: str, tmp_path: Path, mqtt_on_three_nodes: None) -> None:
    """The agent itself (firmware.agent.Agent: its list of brokers, MQTT 3.1.1, receipts) against
    ingest on NATS, the stream's leader SIGKILLed while they send."""
    ids = [f"{unique}-{n}" for n in range(4)]
    for device_id in ids:
        await register(db, device_id, registered_at=START - timedelta(days=1))
    async with nats_cluster(tmp_path, ids) as cluster, nats_ingest(db, cluster, ingest_settings(
            unique, transport="nats")):
        agents = []
        for n, device_id in enumerate(ids):
            urls = cluster.mqtt_urls()[n % 3:] + cluster.mqtt_urls()[:n % 3]  # each its own first node
            spec = frog_spec(device_id, urls[0], tmp_path / f"{device_id}.sqlite3", speed=3000)
            agents.append(Agent(replace(spec, spool_durable=False, mqtt=MqttOptions.from_urls(
                urls, username=device_id, password=cluster.secrets[device_id], protocol="3.1.1"),
                send=replace(spec.send, batch_max=10, receipts=True, receipt_timeout_s=2.0,
                             receipt_timeout_max_s=4.0))))
        runs = [asyncio.create_task(a.run(until=START + timedelta(hours=6), drain_timeout_s=120))
                for a in agents]
        await _stored_at_least(db, ids, 40)
        cluster.kill(await cluster.stream_leader())
        await asyncio.gather(*runs)
        generated = sum(a.spec.source.climate.reads for a in agents)
        assert generated == 4 * 6 * 12
        await eventually(lambda: _at_least(db, ids, generated), timeout_s=60, what="every reading stored")
    assert await rows_of(db, ids) == generated
    for device_id in ids:  # every reading receipted: the spools are empty
        spool = Spool(tmp_path / f"{device_id}.sqlite3", FrogReading)
        assert spool.pending() == 0
        spool.close()
