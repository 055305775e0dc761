"""The agent with several brokers and in MQTT 3.1.1 mode (issue 26, part 3: the agent's half).

Real brokers and real agents: two Mosquittos of the test's own, one SIGKILLed under the agent
(which moves to the other and loses nothing); MQTT 3.1.1 against Mosquitto and against a real
`nats-server` (Debian 12's 2.9, whose MQTT listener speaks 3.1.1 only), where the agent's spool
is emptied by a receipt published on the NATS subject, not by NATS's PUBACK; and the config
errors. Counts are by device timestamps: what the sampler generated against what arrived.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from cityops.embedded.broker import EmbeddedBroker
from cityops.embedded.process import free_port, spawn, stop_process, wait_for_port
from contract.receipts import Receipt, encode_receipt
from contract.telemetry import FrogReading, Reading, TelemetryBatch, decode_batch
from devices.agent_config import render_agent_config
from devices.spec import DeviceSpec
from firmware.agent import Agent
from firmware.config import build_spec, load_agent_config
from firmware.errors import AgentConfigError
from firmware.link import Backoff, MqttLink, MqttOptions
from firmware.spool import Spool
from tests.agent_helpers import START, collecting, expected_frog, frog_spec, own_broker, until
from tests.conftest import BrokerInstance, own_mosquitto, skip_or_fail

NATS_SERVER = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)


# --- helpers -----------------------------------------------------------------------------

def recording(agent: Agent) -> list[Reading]:
    """Every reading the agent's sampler hands to its spool, in order: what was generated."""
    generated: list[Reading] = []
    store = agent.sampler.sink

    def sink(reading: Reading) -> None:
        generated.append(reading)
        store(reading)

    agent.sampler.sink = sink
    return generated


def by_timestamp(readings: list[Reading]) -> dict[datetime, Reading]:
    """The distinct readings (a resend repeats one; the platform keys readings by device and time)."""
    seen: dict[datetime, Reading] = {}
    for reading in readings:
        assert seen.setdefault(reading.ts, reading) == reading, f"two different readings at {reading.ts}"
    return seen


def spooled(path: Path) -> int:
    spool = Spool(path, FrogReading)
    try:
        return spool.pending()
    finally:
        spool.close()


def address(broker: EmbeddedBroker) -> tuple[str, int]:
    return ("127.0.0.1", broker.port)


# --- several brokers ---------------------------------------------------------------------

async def test_a_killed_broker_sends_the_agent_to_the_next_and_nothing_is_lost(
        unique: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    device = f"{unique}-frog"
    spool = tmp_path / "spool.sqlite3"
    async with own_mosquitto(tmp_path / "b1") as first, own_mosquitto(tmp_path / "b2") as second, \
            collecting(first.port, unique) as on_first, collecting(second.port, unique) as on_second:
        spec = frog_spec(device, first.url, spool, speed=1200)  # a sample every 0.25 s
        # the shipped backoff (1 s doubling to 5 min), not the tests' fast one: the switch must be
        # quick because the cycle goes on to the next broker, not because the test shortened waits
        agent = Agent(dataclasses.replace(spec, mqtt=MqttOptions.from_urls([first.url, second.url]),
                                          backoff=Backoff()))
        generated = recording(agent)
        with caplog.at_level(logging.INFO, logger="firmware.link"):
            run = asyncio.create_task(agent.run(until=START + timedelta(hours=5), drain_timeout_s=30))  # 15 s
            link = await until_link(agent)
            await until(lambda: link.broker == address(first) and len(on_first.readings(device)) >= 3)

            await first.kill()  # SIGKILL: no goodbye, no autosave
            killed_at = time.monotonic()
            await until(lambda: link.broker == address(second), timeout_s=10)
            switch_s = time.monotonic() - killed_at
            await until(lambda: len(on_second.readings(device)) >= 3)

            # The first comes back (its store from before the kill, if any): the agent stays where it is,
            # and when the second dies it goes back to the first.
            await first.start()
            await until(lambda: on_first.client.is_connected())
            await until(lambda: len(on_second.readings(device)) >= 6)
            assert link.broker == address(second)
            on_first_before = len(on_first.readings(device))
            await second.kill()
            await until(lambda: link.broker == address(first), timeout_s=10)
            await run
        await on_first.wait_for(lambda: set(by_timestamp([*on_first.readings(device), *on_second.readings(device)]))
                                >= {r.ts for r in generated})

    # Backoff().delay(0) is at most 1 s after a lost connection, then one connection on loopback
    assert switch_s < 5, f"took {switch_s:.1f} s to move to the second broker"
    received = by_timestamp([*on_first.readings(device), *on_second.readings(device)])
    assert len(generated) >= 40  # 5 simulated hours at one sample every 5 minutes: 60, less any skipped slot
    assert received == {r.ts: r for r in generated}  # every reading generated arrived, none made up
    assert len(on_first.readings(device)) > on_first_before  # the first broker took readings again
    assert spooled(spool) == 0 and agent.sender.counters.acked_readings >= len(generated)
    assert link.counters.connections >= 3 and link.counters.refusals == 0
    connected = [r.getMessage() for r in caplog.records if "connected to" in r.getMessage()]
    assert [f":{first.port} (broker 1 of 2" in m for m in connected[:3]] == [True, False, True], connected
    assert f":{second.port} (broker 2 of 2, MQTT 5)" in connected[1]


async def until_link(agent: Agent) -> MqttLink:
    """The agent's link, once its run has made it."""
    await until(lambda: agent.link is not None)
    assert agent.link is not None
    return agent.link


async def test_a_dead_first_broker_costs_one_attempt_not_a_backoff(
        mosquitto: BrokerInstance, unique: str, tmp_path: Path) -> None:
    """Nothing listens on the first URL: the agent goes on to the second at once. The backoff
    (30 s here) is waited only after a whole cycle without a connection."""
    device = f"{unique}-frog"
    dead = f"mqtt://127.0.0.1:{free_port()}"
    spec = frog_spec(device, mosquitto.url, tmp_path / "spool.sqlite3", speed=6000)
    agent = Agent(dataclasses.replace(spec, mqtt=MqttOptions.from_urls([dead, mosquitto.url]),
                                      backoff=Backoff(initial_s=30, max_s=60)))
    async with collecting(mosquitto.port, unique) as collector:
        began = time.monotonic()
        await agent.run(until=START + timedelta(hours=1), drain_timeout_s=10)  # 12 samples in 0.6 s
        elapsed = time.monotonic() - began
        await collector.wait_for(lambda: len(collector.readings(device)) >= 12)
    assert agent.link is not None
    assert (agent.link.counters.connect_attempts, agent.link.counters.cycles_failed) == (2, 0)
    assert collector.readings(device) == expected_frog(12)
    assert elapsed < 15  # a per-broker backoff would have waited at least 15 s before the second


async def test_a_refused_device_backs_off_before_trying_the_next_broker(unique: str, tmp_path: Path) -> None:
    """Bad credentials are the same on every broker of the list: the first refusal ends the
    cycle and the device waits (at least refused_min_s) instead of hammering the others."""
    device = f"{unique}-frog"
    users = {device: "right-password"}
    async with own_broker(tmp_path / "b1", users=users) as first, own_broker(tmp_path / "b2", users=users) as second:
        spec = frog_spec(device, first.url, tmp_path / "spool.sqlite3", speed=600)
        options = MqttOptions.from_urls([first.url, second.url], username=device, password="wrong")
        agent = Agent(dataclasses.replace(spec, mqtt=options,
                                          backoff=Backoff(initial_s=0.1, max_s=0.5, refused_min_s=30)))
        run = asyncio.create_task(agent.run())
        link = await until_link(agent)
        await until(lambda: link.counters.cycles_failed >= 1)
        # the cycle ended on the refusal: the second broker was not tried, the wait has begun
        assert (link.counters.connect_attempts, link.counters.refusals) == (1, 1)
        assert link.refused is not None and "not authori" in str(link.refused).lower()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run


# --- MQTT 3.1.1 ----------------------------------------------------------------------------

async def test_mqtt_311_against_mosquitto_works_end_to_end_with_receipts(
        mosquitto: BrokerInstance, unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    spec = frog_spec(device, mosquitto.url, tmp_path / "spool.sqlite3", speed=6000)
    agent = Agent(dataclasses.replace(spec, mqtt=MqttOptions.from_url(mosquitto.url, protocol="3.1.1")))
    async with collecting(mosquitto.port, unique) as collector:
        await agent.run(until=START + timedelta(hours=2), drain_timeout_s=20)  # 24 samples, 1.2 s
        await collector.wait_for(lambda: len(collector.readings(device)) >= 24
                                 and (device, b"offline", False) in collector.statuses)
    assert collector.readings(device) == expected_frog(24)
    assert {b.v for b in collector.batches} == {2}  # batches that ask for receipts
    counters = agent.sender.counters
    assert counters.acked_readings == 24 and counters.undelivered == 0 and counters.receipt_timeouts == 0
    assert spooled(tmp_path / "spool.sqlite3") == 0  # deleted on the collector's receipts
    assert [(p, r) for d, p, r in collector.statuses if d == device] == [(b"online", False), (b"offline", False)]
    # that the wire is 3.1.1 shows against NATS, which refuses MQTT 5 (the tests below)


@dataclass
class NatsServer:
    client_url: str
    mqtt_url: str
    log_path: Path


def nats_config(folder: Path) -> tuple[Path, int, int]:
    """The smallest config NATS 2.9 serves MQTT with: a server_name, JetStream, the listener."""
    folder.mkdir(parents=True, exist_ok=True)
    client_port, mqtt_port = free_port(), free_port()
    config = folder / "nats.conf"
    config.write_text(f'server_name: "agent-test"\nlisten: "127.0.0.1:{client_port}"\n'
                      f'jetstream {{\n  store_dir: "{folder / "jetstream"}"\n}}\n'
                      f'mqtt {{\n  listen: "127.0.0.1:{mqtt_port}"\n}}\n')
    return config, client_port, mqtt_port


@asynccontextmanager
async def nats_server(folder: Path) -> AsyncIterator[NatsServer]:
    """One real nats-server: JetStream (which its MQTT listener needs), an MQTT listener, no auth."""
    if NATS_SERVER is None:
        skip_or_fail("no `nats-server` binary (apt-get install nats-server; scripts/system-deps.sh does it)")
    assert NATS_SERVER is not None
    config, client_port, mqtt_port = nats_config(folder)
    log_path = folder / "nats.log"
    proc = spawn([NATS_SERVER, "-c", str(config)], log_path=log_path, death_signal=signal.SIGKILL)
    try:
        for port in (client_port, mqtt_port):
            await wait_for_port(proc, port, name="nats-server", log_path=log_path)
        yield NatsServer(f"nats://127.0.0.1:{client_port}", f"mqtt://127.0.0.1:{mqtt_port}", log_path)
    finally:
        await stop_process(proc)


@asynccontextmanager
async def nats_subscriber(url: str, subject: str, on_message: Callable[[Msg], None]) -> AsyncIterator[NATS]:
    nc = NATS()
    await nc.connect(url, name="test-subscriber")

    async def handler(msg: Msg) -> None:
        on_message(msg)

    try:
        await nc.subscribe(subject, cb=handler)
        await nc.flush()
        yield nc
    finally:
        await nc.close()


async def test_mqtt_311_against_nats_the_receipt_on_the_nats_subject_empties_the_spool(
        unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    spool = tmp_path / "spool.sqlite3"
    batches: list[TelemetryBatch] = []
    statuses: list[bytes] = []

    def received(msg: Msg) -> None:
        if msg.subject.endswith(".telemetry"):
            batches.append(decode_batch(msg.data))
        elif msg.subject == f"cityops.v1.devices.{device}.status":
            statuses.append(msg.data)

    async with nats_server(tmp_path / "nats") as server, \
            nats_subscriber(server.client_url, "cityops.v1.devices.*.*", received) as nc:
        spec = frog_spec(device, server.mqtt_url, spool, speed=6000)
        agent = Agent(dataclasses.replace(spec, mqtt=MqttOptions.from_url(server.mqtt_url, protocol="3.1.1")))
        generated = recording(agent)
        run = asyncio.create_task(agent.run(until=START + timedelta(hours=1), drain_timeout_s=30))  # 12 samples
        await until(lambda: agent.sampler.samples == 12 and len(by_timestamp(
            [r for b in batches for r in b.readings])) == 12)
        # NATS took every message (its MQTT PUBACK came) but nothing says it is stored: all kept
        await until(lambda: not agent.sender._in_flight)  # every PUBACK in
        assert agent.spool.pending() == 12 and agent.sender.counters.acked_readings == 0

        # What ingest does after its commit, on the NATS side: one receipt on the device's subject
        receipt = Receipt(stored=[(min(b.seq for b in batches), max(b.seq for b in batches))])
        await nc.publish(f"cityops.v1.devices.{device}.receipts", encode_receipt(receipt))
        await until(lambda: agent.spool.pending() == 0)
        await run
        await until(lambda: statuses[-1:] == [b"offline"])

    assert by_timestamp([r for b in batches for r in b.readings]) == {r.ts: r for r in generated}
    assert generated == expected_frog(12)
    assert {b.device_id for b in batches} == {device} and {b.v for b in batches} == {2}
    assert agent.sender.counters.acked_readings == 12 and agent.sender.counters.receipt_timeouts == 0
    assert spooled(spool) == 0
    assert statuses[0] == b"online"  # the retained status on connect, and the goodbye at the end


async def test_an_mqtt_5_agent_against_nats_is_told_to_use_311(
        unique: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    device = f"{unique}-frog"
    async with nats_server(tmp_path / "nats") as server:
        spec = frog_spec(device, server.mqtt_url, tmp_path / "spool.sqlite3", speed=600)
        agent = Agent(spec)  # protocol "5", the default
        with caplog.at_level(logging.WARNING, logger="firmware.link"):
            run = asyncio.create_task(agent.run())
            link = await until_link(agent)
            await until(lambda: link.counters.connect_attempts >= 2)
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
    assert link.counters.connections == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any('protocol = "3.1.1"' in w for w in warnings), warnings


# --- the config ----------------------------------------------------------------------------

BASE = 'device_id = "f-1"\nkind = "frog"\n[sensors.climate]\ndriver = "sht31"\n'


def config_file(folder: Path, mqtt: str, extra: str = "") -> Path:
    path = folder / "agent.toml"
    path.write_text(BASE + "[mqtt]\n" + mqtt + extra)
    return path


def test_a_list_of_brokers_and_the_protocol_reach_the_link(tmp_path: Path) -> None:
    path = config_file(tmp_path, 'urls = ["mqtts://nats-1:8883", "mqtts://nats-2:8883", "mqtts://nats-3:9883"]\n'
                                 'protocol = "3.1.1"\nusername = "f-1"\n')
    config = load_agent_config(path)
    assert config.mqtt.urls[0] == config.mqtt.url == "mqtts://nats-1:8883"
    options = build_spec(config).mqtt
    assert options.brokers == (("nats-1", 8883), ("nats-2", 8883), ("nats-3", 9883))
    assert (options.protocol, options.tls, options.username) == ("3.1.1", True, "f-1")
    single = build_spec(load_agent_config(config_file(tmp_path, 'url = "mqtt://h"\n'))).mqtt
    assert (single.brokers, single.protocol) == ((("h", 1883),), "5")


@pytest.mark.parametrize(("mqtt", "extra", "message"), [
    ('url = "mqtt://a"\nurls = ["mqtt://b"]\n', "", "[mqtt] has both url and urls - at `$.mqtt`"),
    ('username = "f-1"\n', "", "[mqtt] needs url (one broker) or urls (several) - at `$.mqtt`"),
    ("urls = []\n", "", "needs url (one broker) or urls"),
    ('urls = ["mqtt://a", "http://b"]\n', "", "not an MQTT URL: 'http://b' - at `$.mqtt.urls[1]`"),
    ('url = "nats://a:4222"\n', "", "not an MQTT URL: 'nats://a:4222' - at `$.mqtt.url`"),
    ('urls = ["mqtts://a", "mqtt://b"]\n', "", "mix mqtt:// and mqtts:// - at `$.mqtt.urls`"),
    ('urls = ["mqtt://u:p@a", "mqtt://b"]\n', "", "carry different credentials - at `$.mqtt.urls`"),
    ('urls = ["mqtt://a:1883", "mqtt://a"]\n', "", "a:1883 is listed more than once"),
    ('url = "mqtt://a"\nprotocol = "3"\n', "", "Invalid enum value '3' - at `$.mqtt.protocol`"),
    ('url = "mqtt://a"\nprotocol = 5\n', "", "Expected `str`, got `int` - at `$.mqtt.protocol`"),
    ('url = "mqtt://a"\nprotocol = "3.1.1"\n', "[send]\nreceipts = false\n",
     '[mqtt] protocol = "3.1.1" with [send] receipts = false'),
])
def test_a_bad_broker_config_is_one_clear_error(tmp_path: Path, mqtt: str, extra: str, message: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        load_agent_config(config_file(tmp_path, mqtt, extra))
    assert message in str(caught.value) and caught.value.hint


def test_the_installers_config_for_a_cluster_loads(tmp_path: Path) -> None:
    """devices/agent_config.py writes `urls` and `protocol` when given a cluster's nodes."""
    urls = ["mqtts://nats-1.example:8883", "mqtts://nats-2.example:8883", "mqtts://nats-3.example:8883"]
    path = tmp_path / "agent.toml"
    path.write_text(render_agent_config(DeviceSpec("frog-7", "frog"), urls, protocol="3.1.1"))
    config = load_agent_config(path)
    assert (config.mqtt.urls, config.mqtt.protocol, config.send.receipts) == (tuple(urls), "3.1.1", True)
    path.write_text(render_agent_config(DeviceSpec("frog-7", "frog"), "mqtts://broker.example:8883"))
    config = load_agent_config(path)
    assert (config.mqtt.urls, config.mqtt.protocol) == (("mqtts://broker.example:8883",), "5")
