"""Per-device credentials and ACLs on a real Mosquitto started from the generated files.

A device may publish only its own telemetry/status and read only its own config; a wrong
password, a retired device and an old (rotated) secret are refused; anonymous clients get
nothing. `SecuredBroker` and `Client` are shared with the other devices tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cityops.embedded.broker import mosquitto_user
from cityops.embedded.process import make_traversable
from cityops.settings import load_settings
from cityops.storage import Database
from cityops.telemetry import config_topic, status_topic, telemetry_topic
from devices import cli
from devices.area import CouncilArea
from devices.broker_auth import (
    BrokerAccount,
    mosquitto_auth_lines,
    render_acl,
    render_password_file,
    service_username,
    sync_broker,
)
from devices.errors import BrokerAuthError
from devices.registry import Provisioned, add_device, retire_device, rotate_secret, rotate_service_account
from devices.secrets import hash_secret, verify_secret
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


# --- pure: the files ------------------------------------------------------------------

def test_the_hash_is_mosquittos_format_and_verifies() -> None:
    stored = hash_secret("s3cret", salt=b"0123456789ab")
    assert stored.startswith("$7$101$") and len(stored.split("$")) == 5
    assert verify_secret("s3cret", stored) and not verify_secret("s3cret!", stored)


def test_the_acl_gives_a_device_only_its_own_topics() -> None:
    accounts = [BrokerAccount("frog-1", "$7$x", "device"), BrokerAccount("service.ingest", "$7$y", "ingest")]
    acl = render_acl(accounts)
    block = acl.split("\n\n")[1]
    assert block.splitlines() == ["user frog-1", "topic write cityops/v1/devices/frog-1/telemetry",
                                  "topic write cityops/v1/devices/frog-1/status",
                                  "topic read cityops/v1/devices/frog-1/config",
                                  "topic read cityops/v1/devices/frog-1/alert"]
    assert "#" not in acl.split("\n", 1)[1] and "topic read cityops/v1/devices/+/telemetry" in acl
    assert render_password_file(accounts) == "frog-1:$7$x\nservice.ingest:$7$y\n"


async def test_reload_without_a_broker_is_a_clear_error(db: Database, tmp_path: Path) -> None:
    with pytest.raises(BrokerAuthError, match="pid"):
        await sync_broker(db, tmp_path / "p", tmp_path / "a", pid_file=tmp_path / "missing.pid")


# --- against the real broker ----------------------------------------------------------

async def test_a_device_cannot_publish_as_another_or_read_its_config(
        db: Database, unique: str, tmp_path: Path) -> None:
    async with secured_broker(db, tmp_path) as broker:
        a, b = await broker.provision(f"{unique}-a", f"{unique}-b")
        ingest = Client(broker.port, "service.ingest", broker.secrets["service.ingest"])
        api = Client(broker.port, "service.api", broker.secrets["service.api"])
        device_a = Client(broker.port, a.name, a.secret)
        device_b = Client(broker.port, b.name, b.secret)
        try:
            assert [c.connect() for c in (ingest, api, device_a, device_b)] == [0, 0, 0, 0]
            ingest.subscribe("cityops/v1/devices/+/telemetry")
            assert api.publish(config_topic(b.name), b'{"v":1,"sample_interval_s":60}', retain=True) in ACCEPTED
            # A on B's topics: refused; A on its own: delivered (and it arrives after the refused one would have)
            assert device_a.publish(telemetry_topic(b.name), b"forged") == NOT_AUTHORISED
            assert device_a.publish(status_topic(b.name), b"offline") == NOT_AUTHORISED
            assert device_a.publish(telemetry_topic(a.name), b"mine") == 0
            assert wait_until(lambda: len(ingest.received()) >= 1)
            assert ingest.received() == [(telemetry_topic(a.name), b"mine")]
            # B's config: Mosquitto 2.0 grants the SUBACK but delivers nothing the ACL does not let A read.
            # A's own config is published after B's, so once it has arrived B's would have too.
            device_a.subscribe(config_topic(b.name))
            device_a.subscribe("cityops/v1/devices/#")
            assert device_b.subscribe(config_topic(b.name)) == 1
            assert api.publish(config_topic(b.name), b'{"v":1}', retain=True) in ACCEPTED
            assert api.publish(config_topic(a.name), b'{"v":1}', retain=True) in ACCEPTED
            assert wait_until(lambda: len(device_a.received()) >= 1 and len(device_b.received()) >= 2)
            assert device_a.received() == [(config_topic(a.name), b'{"v":1}')]
            assert {topic for topic, _ in device_b.received()} == {config_topic(b.name)}
            # a device cannot push config, not even its own; services cannot impersonate devices
            assert device_a.publish(config_topic(a.name), b"{}") == NOT_AUTHORISED
            assert ingest.publish(telemetry_topic(a.name), b"x") == NOT_AUTHORISED
        finally:
            for client in (ingest, api, device_a, device_b):
                client.close()


async def test_wrong_password_anonymous_and_retired_devices_are_refused(
        db: Database, unique: str, tmp_path: Path) -> None:
    async with secured_broker(db, tmp_path) as broker:
        [a] = await broker.provision(f"{unique}-a")
        assert connack(broker.port, a.name, "wrong") != 0
        assert connack(broker.port, None, None) != 0
        connected = Client(broker.port, a.name, a.secret)
        assert connected.connect() == 0
        try:
            await retire_device(db, a.name, "test")
            await broker.sync()
            # at once: the reload drops the open connection, and a new one is refused
            assert connected.disconnected.wait(5)
            assert connack(broker.port, a.name, a.secret) != 0
        finally:
            connected.close()


async def test_after_rotation_the_old_secret_is_refused_and_the_new_one_works(
        db: Database, unique: str, tmp_path: Path) -> None:
    async with secured_broker(db, tmp_path) as broker:
        [old] = await broker.provision(f"{unique}-a")
        new = await rotate_secret(db, old.name)
        await broker.sync()
        assert new.secret != old.secret
        assert connack(broker.port, old.name, old.secret) != 0
        fresh = Client(broker.port, new.name, new.secret)
        try:
            assert fresh.connect() == 0
            assert fresh.publish(telemetry_topic(new.name), b"x") in ACCEPTED
        finally:
            fresh.close()


async def test_cli_rotate_and_retire_reload_the_broker_from_its_pid_file(
        db: Database, database_url: str, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with secured_broker(db, tmp_path / "broker") as broker:
        [old] = await broker.provision(f"{unique}-a")
        assert broker.pid is not None
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{broker.pid}\n")
        settings = load_settings(database_url=database_url, devices={
            "broker_password_file": broker.passwords, "broker_acl_file": broker.acl, "broker_pid_file": pid_file})
        args = parse("rotate", old.name, "--json")
        reloads = broker.reloads()
        assert await args.handler(args, settings) == 0
        out = json.loads(capsys.readouterr().out)
        assert f"reloaded (pid {broker.pid})" in out["broker"]
        await wait_for_reload(broker, reloads)
        assert connack(broker.port, old.name, old.secret) != 0
        assert connack(broker.port, old.name, out["secret"]) == 0

        args = parse("retire", old.name)
        reloads = broker.reloads()
        assert await args.handler(args, settings) == 0
        await wait_for_reload(broker, reloads)
        assert connack(broker.port, old.name, out["secret"]) != 0

        pid_file.write_text("not a pid")  # a failed reload is reported, and the exit code says so
        args = parse("sync-broker")
        assert await args.handler(args, settings) == 1
        assert "broker NOT updated" in capsys.readouterr().out


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["device", *argv])
