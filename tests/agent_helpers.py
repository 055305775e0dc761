"""Shared by the agent, rotation, release and security tests: a subscriber that collects what
simulated or real agents publish (`Collector`, `collecting`), and an agent spec for one frog box.

The collector stands in for the platform where a test has no ingest: it answers each
telemetry message that asks for one with a receipt (contract/receipts.py), as ingest does
after its commit, so the agents' spools drain."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityops.embedded.broker import EmbeddedBroker, mosquitto_user
from cityops.embedded.process import make_traversable
from contract.receipts import RECEIPTS_FROM, Receipt, encode_receipt
from contract.telemetry import (
    STATUS_FILTER,
    TELEMETRY_FILTER,
    FrogReading,
    Reading,
    TelemetryBatch,
    decode_batch,
    receipts_topic,
)
from firmware.agent import AgentSpec
from firmware.clock import SimClock
from firmware.drivers.base import Climate
from firmware.link import Backoff, MqttOptions
from firmware.sampler import FrogSource
from firmware.sender import SendPolicy
from tests.conftest import own_mosquitto

START = datetime(2026, 1, 5, tzinfo=UTC)
FAST = Backoff(initial_s=0.1, max_s=0.5, refused_min_s=0.2)


@dataclass
class Collector:
    """A QoS 1 subscriber (a persistent session, so it misses nothing across broker restarts)."""

    port: int
    prefix: str
    username: str | None = None
    password: str | None = None
    tls: dict[str, str] | None = None  # ca_certs, certfile, keyfile for paho's tls_set
    send_receipts: bool = True  # answer as ingest would (the account must be allowed to)
    batches: list[TelemetryBatch] = field(default_factory=list)
    statuses: list[tuple[str, bytes, bool]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _subscribed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        if self.tls:
            self.client.tls_set(**self.tls)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe(
            [(TELEMETRY_FILTER, 1), (STATUS_FILTER, 1)])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[3]
        if not device.startswith(self.prefix):
            return
        with self._lock:
            if msg.topic.endswith("/telemetry"):
                batch = decode_batch(msg.payload)
                self.batches.append(batch)
                if self.send_receipts and batch.v >= RECEIPTS_FROM:
                    receipt = Receipt(stored=[(batch.seq, batch.seq)])
                    self.client.publish(receipts_topic(device), encode_receipt(receipt))
            else:
                self.statuses.append((device, msg.payload, bool(msg.retain)))

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "collector could not subscribe"

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def readings(self, device_id: str | None = None) -> list[Reading]:
        with self._lock:
            return [r for b in self.batches if device_id in (None, b.device_id) for r in b.readings]

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():  # noqa: ASYNC110 (the state changes on paho's thread)
                await asyncio.sleep(0.05)


@asynccontextmanager
async def collecting(port: int, prefix: str, **auth: Any) -> AsyncIterator[Collector]:
    collector = Collector(port, prefix, **auth)
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


def frog_spec(device_id: str, url: str, spool: Path, *, speed: float, **mqtt: str) -> AgentSpec:
    return AgentSpec(device_id=device_id, source=FrogSource(Counting()), clock=SimClock(START, speed),
                     mqtt=MqttOptions.from_url(url, **mqtt), spool_path=spool, drivers_block=False,
                     send=SendPolicy(batch_max=50, messages_per_s=50, replay_jitter_s=0.0), backoff=FAST, seed=1)


class Counting:
    """A climate sensor whose k-th read gives a value we can recognise."""

    name = "test/climate"

    def __init__(self) -> None:
        self.reads = 0

    def read(self) -> Climate:
        self.reads += 1
        return Climate(round(15.0 + self.reads / 100, 2), 60.0)

    def close(self) -> None:
        pass


async def until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Wait for a state the agent changes on its own tasks and threads (spool, counters)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 (the state changes on the agent's tasks and paho's thread)
            await asyncio.sleep(0.05)


@asynccontextmanager
async def own_broker(folder: Path, users: dict[str, str] | None = None, extra: str = ""
                    ) -> AsyncIterator[EmbeddedBroker]:
    """A Mosquitto of this test's own (persistence on), to stop, restart, or protect with passwords."""
    async with own_mosquitto(folder, extra_config=_broker_files(folder, users, extra)) as broker:
        yield broker


def _broker_files(folder: Path, users: dict[str, str] | None, extra: str) -> str:
    """Write the password file (if any) where the broker's account can read it; the config lines."""
    folder.mkdir(parents=True, exist_ok=True)
    if users:
        passwords = folder / "passwords"
        passwords.touch()
        for name, secret in users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwords), name, secret], check=True)
        extra += f"password_file {passwords}\n"
    user = mosquitto_user()
    if user:  # run as root: the broker's account must read what the config names
        make_traversable(folder)
        for path in folder.rglob("*"):
            shutil.chown(path, user)
    return extra




def expected_frog(count: int, interval_s: int = 300) -> list[FrogReading]:
    return [FrogReading(ts=START + timedelta(seconds=interval_s * k), air_temp_c=round(15.0 + (k + 1) / 100, 2),
                        rh_pct=60.0) for k in range(count)]
