"""Shared by the devices, security and API tests: a Mosquitto on the generated password and
ACL files (`SecuredBroker`), a blocking MQTT 5 client that records what the broker
answered (`Client`, `connack`), and small builders (`frog`, `parse`)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityops.embedded.broker import mosquitto_user
from cityops.embedded.process import make_traversable
from cityops.storage import Database
from devices import cli
from devices.area import CouncilArea
from devices.broker_auth import mosquitto_auth_lines, service_username, sync_broker
from devices.registry import Provisioned, add_device, rotate_service_account
from devices.spec import DeviceSpec
from tests.conftest import own_mosquitto

AREA = CouncilArea.from_wkt("POLYGON ((-2.73 51.39, -2.48 51.39, -2.48 51.55, -2.73 51.55, -2.73 51.39))")
NOT_AUTHORISED = 0x87
ACCEPTED = (0x00, 0x10)  # success, or success with "no matching subscribers"


def frog(device_id: str) -> DeviceSpec:
    return DeviceSpec(device_id=device_id, kind="frog", lon=-2.6, lat=51.45, household_id="h1")


class SecuredBroker:
    """Mosquitto with the password and ACL files `sync_broker` writes, reloaded by SIGHUP."""

    def __init__(self, db: Database, folder: Path):
        self.db, self.folder = db, folder
        self.passwords, self.acl = folder / "passwords", folder / "acl"
        self.log_path = folder / "broker.log"  # log_dest file is flushed per line, stdout is not
        extra = (mosquitto_auth_lines(self.passwords, self.acl)
                 + f"log_type information\nlog_dest file {self.log_path}\n")
        self.server = own_mosquitto(folder, persistent=False, extra_config=extra)
        self.port, self.url = self.server.port, self.server.url
        self.secrets: dict[str, str] = {}

    @property
    def pid(self) -> int | None:
        return self.server.pid

    async def start(self) -> None:
        for name in ("ingest", "api"):
            self.secrets[service_username(name)] = (await rotate_service_account(self.db, name)).secret
        await sync_broker(self.db, self.passwords, self.acl)
        self.log_path.touch()
        user = mosquitto_user()
        if user:  # run as root: the broker's account must read the files (sync keeps the owner)
            make_traversable(self.folder)
            for path in (self.passwords, self.acl, self.log_path):
                shutil.chown(path, user)
        await self.server.start()

    def reloads(self) -> int:
        return self.log_path.read_text().count("Reloading config.")

    async def sync(self) -> None:
        """Rewrite the files, SIGHUP, and wait until the broker has reloaded (SIGHUP is asynchronous)."""
        assert self.pid is not None
        before = self.reloads()
        await sync_broker(self.db, self.passwords, self.acl, pid=self.pid)
        await wait_for_reload(self, before)

    async def provision(self, *device_ids: str) -> list[Provisioned]:
        """Register frog boxes with these ids, then apply the files to the running broker."""
        issued = [await add_device(self.db, frog(device_id)) for device_id in device_ids]
        await self.sync()
        return issued

    async def stop(self) -> None:
        await self.server.stop()


async def wait_for_reload(broker: SecuredBroker, reloads_before: int) -> None:
    async with asyncio.timeout(10):
        while broker.reloads() == reloads_before:  # noqa: ASYNC110 (another process writes the log)
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # it logs before re-reading the files


@asynccontextmanager
async def secured_broker(db: Database, folder: Path) -> AsyncIterator[SecuredBroker]:
    broker = SecuredBroker(db, folder)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


class Client:
    """A blocking MQTT 5 client that records what the broker answered."""

    def __init__(self, port: int, username: str | None, password: str | None):
        self.port = port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"c-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: list[tuple[str, bytes]] = []
        self.connack: int | None = None
        self.disconnected = threading.Event()
        self._connected, self._subscribed = threading.Event(), threading.Event()
        self._granted: list[int] = []
        self._puback: dict[int, int] = {}
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.on_message = lambda _c, _u, m: self._record(m.topic, bytes(m.payload))
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self._puback.__setitem__(mid, rc.value)

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        self.connack = reason.value
        self._connected.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, codes: list[mqtt.ReasonCode],
                      _p: object) -> None:
        self._granted = [c.value for c in codes]
        self._subscribed.set()

    def _record(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.messages.append((topic, payload))

    def connect(self) -> int:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self._connected.wait(10), "no CONNACK"
        assert self.connack is not None
        return self.connack

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        return self._puback[info.mid]

    def subscribe(self, topic: str) -> int:
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(10), "no SUBACK"
        return self._granted[0]

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connack(port: int, username: str | None, password: str | None) -> int:
    """The broker's answer to one connection attempt (0: accepted); the client is closed again."""
    client = Client(port, username, password)
    try:
        return client.connect()
    finally:
        client.close()


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["device", *argv])
