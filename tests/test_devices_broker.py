"""Per-device credentials and ACLs on a real Mosquitto started from the generated files.

A device may publish only its own telemetry/status and read only its own config; a wrong
password, a retired device and an old (rotated) secret are refused; anonymous clients get
nothing. The broker and client helpers are in tests/broker_helpers.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityops.settings import load_settings
from cityops.storage import Database
from contract.telemetry import config_topic, status_topic, telemetry_topic
from devices.broker_auth import (
    BrokerAccount,
    render_acl,
    render_password_file,
    sync_broker,
)
from devices.errors import BrokerAuthError
from devices.registry import retire_device, rotate_secret
from devices.secrets import hash_secret, verify_secret
from tests.broker_helpers import (
    ACCEPTED,
    NOT_AUTHORISED,
    Client,
    connack,
    parse,
    secured_broker,
    wait_for_reload,
    wait_until,
)

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
                                  "topic read cityops/v1/devices/frog-1/alert",
                                  "topic read cityops/v1/devices/frog-1/receipts"]
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


