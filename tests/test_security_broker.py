"""Issue 18, part 1: the broker attacks, against a real Mosquitto 2.0 with the dynamic
security config generated from the registry, a real ingest service and PostgreSQL.

A device with a valid secret tries every attack while a householder's box sends its
readings; every reading sent is stored once, and each attack is refused by the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cityops.embedded.broker import mosquitto_user
from cityops.embedded.process import free_port, make_traversable
from cityops.errors import BrokerUnavailable
from cityops.mqtt import check_broker
from cityops.settings import AlertsSettings, ReleasesSettings, Settings, load_settings
from cityops.storage import Database
from cityops_cli.main import build_parser
from contract.receipts import Receipt, encode_receipt
from contract.releases import Report, encode_report
from contract.telemetry import NO_MATCHING_SUBSCRIBERS, config_topic, receipts_topic, status_topic, telemetry_topic
from devices.area import CouncilArea
from devices.broker_auth import apply_dynsec
from devices.broker_config import DYNSEC_PLUGIN
from devices.dynsec import ADMIN, INGEST_SYS_TOPICS, service_clients
from devices.registry import SERVICE_ACCOUNTS, add_device, rotate_service_account
from devices.releases import service as release_service
from devices.releases.service import publisher
from devices.spec import DeviceSpec
from ingest.service import IngestService
from ingest.source import SYS_TOPICS
from ops_api.accounts.roles import Role
from ops_api.accounts.sessions import open_session
from ops_api.app import create_app
from ops_api.healthcheck import API_CLIENT_ID
from tests.api_helpers import make_user, serving
from tests.conftest import own_mosquitto
from tests.ingest_helpers import eventually, frog_payload, ingest_settings, rows_of, running_ingest

pytestmark = pytest.mark.skipif(not Path(DYNSEC_PLUGIN).exists(), reason=f"no {DYNSEC_PLUGIN}")

AREA = CouncilArea.from_wkt("POLYGON ((-2.73 51.39, -2.48 51.39, -2.48 51.55, -2.73 51.55, -2.73 51.39))")
REFUSED_SUBSCRIBE = 0x87


@dataclass
class DynsecBroker:
    db: Database
    port: int
    admin_url: str
    secrets: dict[str, str]   # username -> secret
    folder: Path

    def url(self, username: str) -> str:
        return f"mqtt://{username}:{self.secrets[username]}@127.0.0.1:{self.port}"

    def settings(self, database_url: str, admin_url: str | None = None) -> Settings:
        return load_settings(database_url=database_url, devices={
            "broker_admin_url": admin_url or self.admin_url, "ingest_consumers": 2})


@asynccontextmanager
async def dynsec_broker(db: Database, folder: Path, *device_ids: str) -> AsyncIterator[DynsecBroker]:
    """Mosquitto with the plugin file `cityops device sync-broker --file-only` writes."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    dynsec_file = folder / "dynamic-security.json"
    issued = {d: (await add_device(db, DeviceSpec(device_id=d, kind="frog", lon=-2.6, lat=51.45,
                                                  household_id="h1"))).secret for d in device_ids}
    await db.execute("UPDATE devices SET registered_at = now() - interval '1 day' WHERE device_id = ANY($1)",
                     list(device_ids))  # so that readings of the last hours are not refused
    services = {n: (await rotate_service_account(db, n)).secret for n in SERVICE_ACCOUNTS}
    admin_secret = secrets.token_urlsafe(16)
    server = own_mosquitto(folder, persistent=False, extra_config=(
        f"plugin {DYNSEC_PLUGIN}\nplugin_opt_config_file {dynsec_file}\n"))
    admin_url = f"mqtt://{ADMIN}:{admin_secret}@127.0.0.1:{server.port}"
    await apply_dynsec(db, admin_url=admin_url, config_file=dynsec_file, ingest_consumers=2,
                       share_group="ingest", contact=False)
    user = mosquitto_user()
    if user:  # run as root: the broker's account writes the plugin's file back
        make_traversable(folder)
        shutil.chown(dynsec_file, user)
    known = {**issued, ADMIN: admin_secret, **{username: secret for name, secret in services.items()
                                               for username, _ in service_clients(name, 2)}}
    async with server:
        yield DynsecBroker(db, server.port, admin_url, known, folder)


class Device:
    """A blocking MQTT 5 client like the agent: fixed client id, QoS 1, answers recorded."""

    def __init__(self, port: int, username: str, password: str, client_id: str):
        self.port = port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(100)
        self.connack: int | None = None
        self.connected, self.disconnected = threading.Event(), threading.Event()
        self._suback = threading.Event()
        self._granted: list[int] = []
        self.puback: dict[int, int] = {}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.puback.__setitem__(mid, rc.value)

    def _on_connect(self, _c: object, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        self.connack = reason.value
        self.connected.set()

    def _on_subscribe(self, _c: object, _u: object, _m: int, codes: list[mqtt.ReasonCode], _p: object) -> None:
        self._granted = [c.value for c in codes]
        self._suback.set()

    def connect(self) -> int:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"
        assert self.connack is not None
        return self.connack

    def subscribe(self, topic: str) -> int:
        self._suback.clear()
        self.client.subscribe(topic, qos=1)
        assert self._suback.wait(10), "no SUBACK"
        return self._granted[0]

    def publish(self, topic: str, payload: bytes) -> int | None:
        """The PUBACK reason code; None when the broker dropped the connection instead."""
        info = self.client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 10
        while info.mid not in self.puback and not self.disconnected.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.puback.get(info.mid)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def attempt(port: int, username: str, password: str, client_id: str) -> int:
    device = Device(port, username, password, client_id)
    try:
        return device.connect()
    finally:
        device.close()


def send_readings(port: int, device_id: str, secret: str, messages: int, stop: threading.Event,
                  turns: threading.Semaphore) -> int:
    """The householder's box: one reading a message, resent on 'no matching subscribers', each
    message on a turn the attacker gives (so the attacks run throughout). Returns readings
    acknowledged (it reconnects if kicked, as paho's agent does)."""
    delivered, seq, start = 0, 0, datetime.now(UTC) - timedelta(hours=6)  # after its registration
    while seq < messages:
        box = Device(port, device_id, secret, device_id)
        if box.connect() != 0:
            raise AssertionError("the householder's box was refused")
        try:
            while seq < messages and not box.disconnected.is_set():
                assert turns.acquire(timeout=30), "the attacker stopped giving turns"
                code = box.publish(telemetry_topic(device_id), frog_payload(device_id, seq, start=start))
                if code == 0:
                    delivered, seq = delivered + 1, seq + 1
                else:
                    turns.release()  # not delivered: this turn again
                    if code == NO_MATCHING_SUBSCRIBERS:
                        time.sleep(0.05)
        finally:
            box.close()
    stop.set()
    return delivered


def attack(port: int, evil: str, secret: str, victim: str, stop: threading.Event,
           turns: threading.Semaphore) -> dict[str, list[int | None]]:
    """Every broker attack of issue 18 with the attacker's valid secret, round after round until
    the victim is done; each round gives the victim 10 turns to send."""
    seen: dict[str, list[int | None]] = {}

    def note(name: str, code: int | None) -> None:
        seen.setdefault(name, []).append(code)

    while not stop.is_set() or not seen:
        for client_id in ("cityops-ingest-1", "cityops-ingest-2", "cityops-releases", victim, f"{evil}-x"):
            note(f"connect as {client_id}", attempt(port, evil, secret, client_id))
        box = Device(port, evil, secret, evil)
        assert box.connect() == 0
        try:
            for topic in ("$share/ingest/cityops/v1/devices/+/telemetry", "cityops/v1/devices/+/telemetry",
                          "#", "$SYS/#", "$CONTROL/dynamic-security/v1/response", config_topic(victim),
                          receipts_topic(victim), "$share/x/#"):
                note(f"subscribe {topic}", box.subscribe(topic))
            forged = frog_payload(victim, 10_000, start=datetime.now(UTC) - timedelta(hours=1))
            note("publish as the victim", box.publish(telemetry_topic(victim), forged))
            note("publish a config", box.publish(config_topic(victim), b"{}"))
            # a forged receipt would make the victim delete readings the council never got
            note("publish a receipt", box.publish(receipts_topic(victim),
                                                  encode_receipt(Receipt(stored=[(0, 1_000_000)]))))
        finally:
            box.close()
        big = Device(port, evil, secret, evil)
        assert big.connect() == 0
        try:
            note("publish 300 KB", big.publish(telemetry_topic(evil), b"x" * 300_000))
            assert big.disconnected.wait(10), "a packet over max_packet_size left the connection open"
        finally:
            big.close()
        turns.release(10)
    return seen


async def test_readings_sent_equal_readings_stored_while_a_device_tries_every_broker_attack(
        db: Database, unique: str, tmp_path: Path) -> None:
    good, evil = f"{unique}-good", f"{unique}-evil"
    async with dynsec_broker(db, tmp_path / "broker", good, evil) as broker:
        settings = ingest_settings(unique, client_id="cityops-ingest-1", share_group="ingest")
        async with running_ingest(db, broker.url("service.ingest-1"), settings) as service:
            stop, turns = threading.Event(), threading.Semaphore(0)
            attacks = asyncio.to_thread(attack, broker.port, evil, broker.secrets[evil], good, stop, turns)
            sent, seen = await asyncio.gather(
                asyncio.to_thread(send_readings, broker.port, good, broker.secrets[good], 60, stop, turns), attacks)
            await eventually(lambda: _rows_are(db, good, sent), what=f"{sent} readings of {good} stored")
            assert service.connected.is_set()
        assert sent == 60
        assert await rows_of(db, [good]) == 60  # sent = stored: none lost, none forged, none twice
        assert await db.fetchval("SELECT count(*) FROM dead_letters WHERE device_id = $1", good) == 0
        for name, codes in seen.items():
            if name.startswith("connect as"):
                assert all(c != 0 for c in codes), (name, codes)
            elif name.startswith("subscribe"):
                assert set(codes) == {REFUSED_SUBSCRIBE}, (name, codes)
            elif name.startswith("publish 300"):
                assert set(codes) == {None}, (name, codes)   # disconnected, never acknowledged
            else:
                assert set(codes) == {REFUSED_SUBSCRIBE}, (name, codes)  # PUBACK 0x87 not authorised
        assert await rows_of(db, [evil]) == 0
        assert all(len(codes) >= 6 for codes in seen.values())  # 6 rounds or more, during the sending


async def _rows_are(db: Database, device_id: str, expected: int) -> bool:
    return await rows_of(db, [device_id]) == expected


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["device", *argv])


async def test_retire_reaches_the_running_broker_over_the_control_api_and_is_read_back(
        db: Database, database_url: str, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    device = f"{unique}-gone"
    async with dynsec_broker(db, tmp_path / "broker", device) as broker:
        connected = Device(broker.port, device, broker.secrets[device], device)
        assert connected.connect() == 0
        settings = broker.settings(database_url)
        args = parse("retire", device, "--json")
        assert await args.handler(args, settings) == 0
        assert "read back" in json.loads(capsys.readouterr().out)["broker"]
        assert connected.disconnected.wait(5), "the retired device stayed connected"
        connected.close()
        assert attempt(broker.port, device, broker.secrets[device], device) != 0

        # a new device and a rotation reach the broker with their secrets; the old secret is refused
        args = parse("add", f"{unique}-new", "--kind", "frog", "--lon", "-2.6", "--lat", "51.45", "--json",
                     "--out", str(tmp_path / "agents"))
        assert await args.handler(args, settings) == 0
        added = json.loads(capsys.readouterr().out)
        assert attempt(broker.port, f"{unique}-new", added["secret"], f"{unique}-new") == 0
        args = parse("rotate", f"{unique}-new", "--json")
        assert await args.handler(args, settings) == 0
        rotated = json.loads(capsys.readouterr().out)
        assert attempt(broker.port, f"{unique}-new", added["secret"], f"{unique}-new") != 0
        assert attempt(broker.port, f"{unique}-new", rotated["secret"], f"{unique}-new") == 0

        # a broker that cannot be reached: the command fails loudly, exit 1
        dead = broker.admin_url.replace(f":{broker.port}", ":1")
        args = parse("retire", f"{unique}-new")
        assert await args.handler(args, broker.settings(database_url, dead)) == 1
        assert "BROKER NOT UPDATED" in capsys.readouterr().out


# --- the admin API over HTTP: its changes reach the running broker, or it answers 502 ----------

@asynccontextmanager
async def admin_api(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API served by uvicorn (a real socket), signed in as a fresh admin."""
    async with serving(create_app(settings, db=db)) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        admin = await make_user(db, Role.ADMIN)
        http.headers["Authorization"] = f"Bearer {await open_session(db, admin.user_id)}"
        yield http


async def test_the_admin_api_adds_rotates_and_retires_on_the_running_broker(
        db: Database, database_url: str, unique: str, tmp_path: Path) -> None:
    present = f"{unique}-present"
    async with dynsec_broker(db, tmp_path / "broker", present) as broker, \
            admin_api(db, broker.settings(database_url)) as api:
        new = f"{unique}-new"
        added = await api.post("/admin/devices", json={"device_id": new, "kind": "frog", "lon": -2.6, "lat": 51.45})
        assert added.status_code == 201, added.text
        assert added.json()["broker_status"] == "updated" and "read back" in added.json()["broker"]
        assert attempt(broker.port, new, added.json()["secret"], new) == 0

        rotated = await api.post(f"/admin/devices/{new}/rotate")
        assert rotated.status_code == 200 and rotated.json()["broker_status"] == "updated"
        assert attempt(broker.port, new, added.json()["secret"], new) != 0
        assert attempt(broker.port, new, rotated.json()["secret"], new) == 0

        # retire: the connected device is dropped at once and refused when it comes back
        connected = Device(broker.port, present, broker.secrets[present], present)
        assert await asyncio.to_thread(connected.connect) == 0
        retired = await api.post(f"/admin/devices/{present}/retire", json={"reason": "stolen"})
        assert retired.status_code == 200, retired.text
        assert retired.json()["broker_status"] == "updated" and retired.json()["device"]["status"] == "retired"
        assert await asyncio.to_thread(connected.disconnected.wait, 5), "the retired device stayed connected"
        connected.close()
        assert attempt(broker.port, present, broker.secrets[present], present) != 0


async def test_with_the_broker_unreachable_the_admin_api_answers_502_and_claims_nothing(
        db: Database, database_url: str, unique: str, tmp_path: Path) -> None:
    held, fresh = f"{unique}-held", f"{unique}-fresh"
    async with dynsec_broker(db, tmp_path / "broker", held) as broker:
        dead = broker.admin_url.replace(f":{broker.port}", f":{free_port()}")
        connected = Device(broker.port, held, broker.secrets[held], held)
        assert await asyncio.to_thread(connected.connect) == 0
        async with admin_api(db, broker.settings(database_url, dead)) as api:
            added = await api.post("/admin/devices", json={"device_id": fresh, "kind": "frog", "lon": -2.6,
                                                           "lat": 51.45})
            assert added.status_code == 502, added.text
            assert "BROKER NOT UPDATED" in added.json()["error"] and "secret is not shown" in added.json()["error"]
            assert "secret" not in added.json() and f"/admin/devices/{fresh}/rotate" in added.json()["hint"]

            before = await db.fetchval("SELECT secret_hash FROM device_secrets WHERE device_id = $1", held)
            rotated = await api.post(f"/admin/devices/{held}/rotate")
            assert rotated.status_code == 502 and "not rotated" in rotated.json()["error"], rotated.text
            assert "secret" not in rotated.json()
            assert await db.fetchval("SELECT secret_hash FROM device_secrets WHERE device_id = $1", held) == before
            assert attempt(broker.port, held, broker.secrets[held], f"{held}-probe") != 0  # bound id still holds
            assert not connected.disconnected.is_set()

            retired = await api.post(f"/admin/devices/{held}/retire")
            assert retired.status_code == 502, retired.text
            assert "STILL CONNECTS" in retired.json()["error"] and "retire again" in retired.json()["hint"]
            assert not connected.disconnected.is_set()  # true: the broker was not told

        # the retry, with the broker reachable, finishes the retirement
        async with admin_api(db, broker.settings(database_url)) as api:
            again = await api.post(f"/admin/devices/{held}/retire")
            assert again.status_code == 200 and again.json()["broker_status"] == "updated", again.text
            assert await asyncio.to_thread(connected.disconnected.wait, 5), "the retired device stayed connected"
        connected.close()
        assert attempt(broker.port, held, broker.secrets[held], held) != 0


# --- each service its own account, bound to its own client id, with only its own topics ----------

SERVICE_IDS = {"service.ingest-1": "cityops-ingest-1", "service.ingest-2": "cityops-ingest-2",
               "service.alerts": "cityops-alerts", "service.releases": "cityops-releases",
               "service.releases-rollout": "cityops-releases-rollout", "service.api": "cityops-api"}


def rights(port: int, username: str, secret: str, client_id: str, device: str) -> dict[str, int | None]:
    """What the broker lets this account do: SUBACK or PUBACK codes (0x87: not authorised)."""
    box = Device(port, username, secret, client_id)
    assert box.connect() == 0
    try:
        out: dict[str, int | None] = {
            f"subscribe {t}": box.subscribe(t) for t in (
                "$share/ingest/cityops/v1/devices/+/telemetry", "$share/x/#", "#", "$SYS/#",
                "cityops/v1/devices/+/status", "$CONTROL/dynamic-security/v1/response")}
        for topic in (telemetry_topic(device), config_topic(device), f"cityops/v1/devices/{device}/alert",
                      receipts_topic(device), "$CONTROL/dynamic-security/v1"):
            out[f"publish {topic}"] = box.publish(topic, b"{}")
        return out
    finally:
        box.close()


async def test_each_service_connects_only_as_its_own_client_id_and_reaches_only_its_topics(
        db: Database, database_url: str, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    device = f"{unique}-d"
    async with dynsec_broker(db, tmp_path / "broker", device) as broker:
        ids = [*SERVICE_IDS.values(), device, "cityops-admin-x"]
        for username, own in SERVICE_IDS.items():
            secret = broker.secrets[username]
            assert attempt(broker.port, username, secret, own) == 0, username
            for other in ids:
                if other != own:
                    assert attempt(broker.port, username, secret, other) != 0, (username, other)
        allowed = {  # besides these, every subscribe and publish above is refused
            "service.ingest-1": {"subscribe $share/ingest/cityops/v1/devices/+/telemetry",
                                 "subscribe cityops/v1/devices/+/status", f"publish {receipts_topic(device)}"},
            "service.alerts": {f"publish cityops/v1/devices/{device}/alert"},
            "service.releases": {"subscribe cityops/v1/devices/+/status", f"publish {config_topic(device)}"},
            "service.releases-rollout": {"subscribe cityops/v1/devices/+/status", f"publish {config_topic(device)}"},
            "service.api": set(),
        }
        for username, may in allowed.items():
            seen = await asyncio.to_thread(rights, broker.port, username, broker.secrets[username],
                                           SERVICE_IDS[username], device)
            assert len(seen) == 11
            granted = {name for name, code in seen.items() if code in (0, 1, NO_MATCHING_SUBSCRIBERS)}
            assert granted == may, username
            assert all(seen[name] == REFUSED_SUBSCRIBE for name in set(seen) - may), (username, seen)

        # the services' own code connects under those ids with those secrets
        await check_broker(broker.url("service.api"), client_id=API_CLIENT_ID)
        async with publisher(broker.url("service.releases-rollout")) as publish:
            await publish(config_topic(device), b'{"v":1}')
        with pytest.raises(BrokerUnavailable, match=r"service\.releases-rollout"):
            async with publisher(broker.url("service.releases")):
                pass
        # `cityops device rotate --service releases` reaches the running broker for both its usernames
        args = parse("rotate", "--service", "releases", "--json")
        assert await args.handler(args, broker.settings(database_url)) == 0
        rotated = json.loads(capsys.readouterr().out)
        assert rotated["username"] == ("service.releases (client id cityops-releases), "
                                       "service.releases-rollout (client id cityops-releases-rollout)")
        for username in ("service.releases", "service.releases-rollout"):
            assert attempt(broker.port, username, broker.secrets[username], SERVICE_IDS[username]) != 0
            assert attempt(broker.port, username, rotated["secret"], SERVICE_IDS[username]) == 0
        assert attempt(broker.port, "service.alerts", rotated["secret"], "cityops-alerts") != 0
        assert AlertsSettings().mqtt_client_id == SERVICE_IDS["service.alerts"]
        assert ReleasesSettings().mqtt_client_id == SERVICE_IDS["service.releases"]


async def test_the_release_service_runs_under_its_own_id_and_a_rollout_does_not_end_its_session(
        db: Database, unique: str, tmp_path: Path) -> None:
    device = f"{unique}-r"
    async with dynsec_broker(db, tmp_path / "broker", device) as broker:
        ready = asyncio.Event()
        running = asyncio.create_task(release_service.run(db, broker.url("service.releases"), 0.05,
                                                          "cityops-releases", ready))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            box = Device(broker.port, device, broker.secrets[device], device)
            assert await asyncio.to_thread(box.connect) == 0
            try:
                report = encode_report(Report("downloading", f"9.{unique}", datetime.now(UTC)))
                assert await asyncio.to_thread(box.publish, status_topic(device), report) == 0
                await eventually(lambda: _reports_are(db, device, 1), what="the first report stored")
                async with publisher(broker.url("service.releases-rollout")) as publish:  # a rollout, beside it
                    await publish(config_topic(device), b'{"v":1}')
                report = encode_report(Report("verified", f"9.{unique}", datetime.now(UTC)))
                assert await asyncio.to_thread(box.publish, status_topic(device), report) == 0
                await eventually(lambda: _reports_are(db, device, 2), what="the second report stored")
            finally:
                box.close()
            assert not running.done()
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def _reports_are(db: Database, device_id: str, expected: int) -> bool:
    return await db.fetchval("SELECT count(*) FROM release_reports WHERE device_id = $1", device_id) == expected


# --- ingest reads the broker's backlog from $SYS: its three counts only, and nobody else any --------

def sys_rights(port: int, username: str, secret: str, client_id: str) -> dict[str, int]:
    """SUBACK codes for $SYS filters: ingest's three literal counts, the wildcard, and two it does not need."""
    box = Device(port, username, secret, client_id)
    assert box.connect() == 0
    try:
        return {topic: box.subscribe(topic) for topic in (*INGEST_SYS_TOPICS, "$SYS/#", "$SYS/broker/store/#",
                                                          "$SYS/broker/clients/connected")}
    finally:
        box.close()


async def test_ingest_reads_its_three_sys_counts_on_the_dynsec_broker_and_devices_read_no_sys(
        db: Database, unique: str, tmp_path: Path) -> None:
    device = f"{unique}-s"
    assert INGEST_SYS_TOPICS == SYS_TOPICS  # the role grants what ingest/source.py subscribes to
    async with dynsec_broker(db, tmp_path / "broker", device) as broker:
        accounts = {"service.ingest-1": "cityops-ingest-1", device: device, "service.alerts": "cityops-alerts",
                    "service.releases": "cityops-releases", "service.api": "cityops-api"}
        for username, client_id in accounts.items():
            seen = await asyncio.to_thread(sys_rights, broker.port, username, broker.secrets[username], client_id)
            granted = {topic for topic, code in seen.items() if code in (0, 1)}
            assert granted == (set(INGEST_SYS_TOPICS) if username == "service.ingest-1" else set()), (username, seen)
            assert all(seen[topic] == REFUSED_SUBSCRIBE for topic in set(seen) - granted), (username, seen)
        # the real consumer as service.ingest-1 receives them: its backlog metric is the broker's count, not -1
        settings = ingest_settings(unique, client_id="cityops-ingest-1", share_group="ingest")
        async with running_ingest(db, broker.url("service.ingest-1"), settings) as service:
            await eventually(lambda: _backlog_reported(service), what="the broker's backlog from $SYS")
            assert service.metrics.registry.get_sample_value("cityops_ingest_broker_dropped_messages") == 0


async def _backlog_reported(service: IngestService) -> bool:
    value = service.metrics.registry.get_sample_value("cityops_ingest_broker_backlog_messages")
    return value is not None and value >= 0
