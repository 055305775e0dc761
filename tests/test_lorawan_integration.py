"""The LoRaWAN integration against a real Mosquitto and PostgreSQL (issue 22's bars).

Messages are what ChirpStack v4 and The Things Stack v3 publish (simulation/lorawan.py builds
them from the servers' documented event JSON; lorawan/events.py reads them back, tested against
the published examples in tests/test_lorawan_events.py). Payload bytes are the vendors' layouts
(tests/test_lorawan_codecs.py has the vendors' own examples). Counts, not hopes: what was
published against what is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from cityops.embedded.broker import EmbeddedBroker
from cityops.mqtt import MqttTarget
from cityops.settings import IngestSettings, LorawanSettings, NetworkServer, load_settings
from cityops.storage import Database
from cityops_cli.main import build_parser
from devices.health_query import device_health
from devices.registry import insert_devices
from devices.spec import DeviceSpec
from ingest.lorawan.cli import device_status
from ingest.lorawan.process import start_integration
from ingest.lorawan.service import LorawanService
from ingest.lorawan.store import set_mapping
from ingest.metrics import IngestMetrics
from simulation.lorawan import SimulatedDevice, chirpstack_event, chirpstack_uplink, em300_th, ldds75, tts_uplink
from tests.ingest_helpers import eventually, publish

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)  # uplinks may not be from the future
APP = "5e4f0a8c-0000-4000-8000-00000000a001"


def eui(unique: str, n: int) -> str:
    return hashlib.sha256(f"{unique}-{n}".encode()).hexdigest()[:16]


async def lorawan_devices(db: Database, unique: str, count: int, *, kind: str = "bin", codec: str = "dragino-ldds75",
                          network_server: str | None = None) -> list[SimulatedDevice]:
    specs = [DeviceSpec(device_id=f"{unique}-lw{kind[0]}{n}", kind=kind, lon=-2.59, lat=51.45,
                        bin_depth_mm=1000 if kind == "bin" else None, household_id=f"{unique}-h{n}" if kind == "frog"
                        else None, lorawan_dev_eui=eui(unique + kind, n), codec=codec, network_server=network_server)
             for n in range(count)]
    async with db.transaction() as conn:
        assert await insert_devices(conn, specs) == []  # no secrets: LoRaWAN devices never log in to our broker
        await conn.execute("UPDATE devices SET registered_at = now() - interval '30 days' WHERE device_id = ANY($1)",
                           [s.device_id for s in specs])
    return [SimulatedDevice(s.lorawan_dev_eui or "", s.device_id, application_id=APP) for s in specs]


def server(unique: str, url: str, kind: str = "chirpstack", **fields: object) -> NetworkServer:
    return NetworkServer(name=f"ns-{unique[-20:]}".lower(), kind=kind, url=url,  # type: ignore[arg-type]
                         client_id=f"lw-{unique}"[:64], **fields)  # type: ignore[arg-type]


FAST = IngestSettings(flush_interval_s=0.05, registry_refresh_s=0.5, retry_max_s=1.0, device_messages_per_s=0,
                      metrics_port=0)


@asynccontextmanager
async def running(db: Database, ns: NetworkServer, **lorawan: object) -> AsyncIterator[LorawanService]:
    service = LorawanService(db, ns, LorawanSettings(downlink_check_s=0.2, **lorawan), FAST,  # type: ignore[arg-type]
                             IngestMetrics())
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.connected.wait(), 15)
        await eventually(_subscribed(service), what="the integration's subscriptions confirmed")
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _subscribed(service: LorawanService):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return service.metrics.registry.get_sample_value("cityops_ingest_subscribed") == 1.0
    return check


async def count(db: Database, sql: str, *args: object) -> int:
    return int(await db.fetchval(sql, *args))


async def rows(db: Database, devices: list[SimulatedDevice], table: str = "bin_readings") -> int:
    return await count(db, f"SELECT count(*) FROM {table} WHERE device_id = ANY($1)", [d.name for d in devices])


async def reached(db: Database, devices: list[SimulatedDevice], expected: int, table: str = "bin_readings") -> None:
    async def check() -> bool:
        return await rows(db, devices, table) >= expected
    await eventually(check, timeout_s=60, what=f"{expected} rows in {table}")


async def dead(db: Database, like: str) -> list[str]:
    return [r["reason"] for r in await db.fetch("SELECT reason FROM dead_letters WHERE topic LIKE $1 ORDER BY id",
                                                like)]


# --- exactly once ------------------------------------------------------------------------

async def test_the_same_uplink_through_two_gateways_and_redelivered_is_stored_once(
        db: Database, mosquitto: EmbeddedBroker, unique: str) -> None:
    [bin_] = await lorawan_devices(db, unique, 1)
    async with running(db, server(unique, mosquitto.url)):
        first = chirpstack_uplink(bin_, f_cnt=7, port_and_bytes=ldds75(640), at=NOW, gateways=2)
        # two integrations (or network servers) each saw it: same frame counter, its own deduplicationId, 1 s later
        second = chirpstack_uplink(bin_, f_cnt=7, port_and_bytes=ldds75(640), at=NOW + timedelta(seconds=1))
        await publish(mosquitto.url, [first, second, first])  # and the broker redelivering the first
        await publish(mosquitto.url, [chirpstack_uplink(bin_, f_cnt=8, port_and_bytes=ldds75(600),
                                                        at=NOW + timedelta(minutes=20))])
        await reached(db, [bin_], 2)
        await eventually(lambda: _logged(db, bin_, 2), what="both frames logged")
    assert await rows(db, [bin_]) == 2
    stored = await db.fetch("SELECT distance_mm, time_source FROM bin_readings WHERE device_id = $1 ORDER BY ts",
                            bin_.name)
    assert [(r["distance_mm"], r["time_source"]) for r in stored] == [(640, "network"), (600, "network")]
    log = await db.fetch("SELECT f_cnt, gateways, gap FROM lorawan_uplinks WHERE device_id = $1 ORDER BY f_cnt",
                         bin_.name)
    assert [(r["f_cnt"], r["gateways"], r["gap"]) for r in log] == [(7, 2, 0), (8, 1, 0)]


async def _logged(db: Database, device: SimulatedDevice, expected: int) -> bool:
    return await count(db, "SELECT count(*) FROM lorawan_uplinks WHERE device_id = $1", device.name) >= expected


async def test_a_rejoin_restarts_the_frame_counter_without_being_taken_for_a_replay(
        db: Database, mosquitto: EmbeddedBroker, unique: str) -> None:
    [bin_] = await lorawan_devices(db, unique, 1)
    day_ago = NOW - timedelta(days=1)
    async with running(db, server(unique, mosquitto.url)):
        await publish(mosquitto.url, [chirpstack_uplink(bin_, f_cnt=n, port_and_bytes=ldds75(900 - n),
                                                        at=day_ago + timedelta(minutes=30 * n)) for n in range(3)])
        await reached(db, [bin_], 3)
        rejoined = SimulatedDevice(bin_.dev_eui, bin_.name, application_id=APP, dev_addr="260b9999")
        await publish(mosquitto.url, [chirpstack_event(rejoined, "join", NOW, devAddr="260b9999")])
        await publish(mosquitto.url, [chirpstack_uplink(rejoined, f_cnt=n, port_and_bytes=ldds75(800 - n),
                                                        at=NOW + timedelta(minutes=30 * n)) for n in range(3)])
        await reached(db, [bin_], 6)  # frame counters 0, 1, 2 again, a day later: new, not replays
    sessions = await db.fetch("SELECT f_cnt, new_session FROM lorawan_uplinks WHERE device_id = $1 AND new_session",
                              bin_.name)
    assert [r["f_cnt"] for r in sessions] == [0, 0]
    [status] = [s for s in await device_status(db, 48) if s["device_id"] == bin_.name]
    assert (status["dev_addr"], status["last_f_cnt"], status["frames_lost"]) == ("260b9999", 2, 0)
    assert await db.fetchval("SELECT rejoined_at FROM lorawan_devices WHERE device_id = $1", bin_.name) is None


# --- refusals ----------------------------------------------------------------------------

async def test_unknown_retired_foreign_and_malformed_uplinks_are_dead_letters_with_reasons(
        db: Database, mosquitto: EmbeddedBroker, unique: str) -> None:
    good, retired = await lorawan_devices(db, unique, 2)
    [elsewhere] = await lorawan_devices(db, unique + "x", 1, network_server="another-server")
    await db.execute("UPDATE devices SET status = 'retired' WHERE device_id = $1", retired.name)
    stranger = SimulatedDevice("00000000000000ff", "stranger", application_id=APP)
    ns = server(unique, mosquitto.url)
    async with running(db, ns):
        await publish(mosquitto.url, [
            chirpstack_uplink(stranger, f_cnt=1, port_and_bytes=ldds75(500), at=NOW),
            chirpstack_uplink(retired, f_cnt=1, port_and_bytes=ldds75(500), at=NOW),
            chirpstack_uplink(elsewhere, f_cnt=1, port_and_bytes=ldds75(500), at=NOW),
            chirpstack_uplink(good, f_cnt=1, port_and_bytes=(2, b"\x0c\xe4\x01"), at=NOW),  # 3 of the 8 bytes
            chirpstack_uplink(good, f_cnt=2, port_and_bytes=(9, ldds75(500)[1]), at=NOW),  # a port it never uses
            (f"application/{APP}/device/{good.dev_eui}/event/up", b"{not json"),
            chirpstack_uplink(good, f_cnt=3, port_and_bytes=ldds75(500), at=NOW),  # and the device carries on
        ])
        await reached(db, [good], 1)
        await eventually(lambda: _dead_letters(db, unique, 6), what="six dead letters")
    reasons = await dead(db, f"application/{APP}/device/%")
    mine = [r for r in reasons if any(d.dev_eui in r or d.name in r for d in (stranger, retired, elsewhere))
            or "dragino-ldds75" in r or "JSON" in r or "json" in r]
    assert any(f"unknown DevEUI {stranger.dev_eui}" in r for r in mine)
    assert any(f"{retired.name}, which is retired" in r for r in mine)
    assert any(f"registered with network server 'another-server', not '{ns.name}'" in r for r in mine)
    assert any(r.startswith("dragino-ldds75: truncated payload") for r in mine)
    assert any(r == "dragino-ldds75: unexpected fPort 9 (expects 2)" for r in mine)
    assert await rows(db, [good, retired, elsewhere]) == 1


async def _dead_letters(db: Database, unique: str, expected: int) -> bool:
    names = [f"{unique}-lwb0", f"{unique}-lwb1", f"{unique}x-lwb0"]
    found = await count(db, "SELECT count(*) FROM dead_letters WHERE device_id = ANY($1) OR "
                            "(device_id IS NULL AND topic LIKE $2 AND received_at > now() - interval '5 minutes')",
                        names, f"application/{APP}/device/%")
    return found >= expected


# --- The Things Stack, mappings, status ------------------------------------------------------

async def test_the_things_stack_uplinks_are_stored_with_the_tenant_in_the_topic(
        db: Database, mosquitto: EmbeddedBroker, unique: str) -> None:
    homes = await lorawan_devices(db, unique, 2, kind="frog", codec="milesight-em300-th")
    app = f"council-{unique[-12:]}".lower()
    ns = server(unique, mosquitto.url, kind="tts", application=app, tenant="council")
    async with running(db, ns):
        await publish(mosquitto.url, [
            tts_uplink(h, application=app, tenant="council", f_cnt=n, port_and_bytes=em300_th(18.5 + n, 70 + n),
                       at=NOW + timedelta(minutes=10 * n)) for h in homes for n in range(3)], qos=0)
        await reached(db, homes, 6, table="frog_readings")
    values = await db.fetch("SELECT air_temp_c, rh_pct FROM frog_readings WHERE device_id = $1 ORDER BY ts",
                            homes[0].name)
    assert [(r["air_temp_c"], r["rh_pct"]) for r in values] == [(18.5, 70.0), (19.5, 71.0), (20.5, 72.0)]
    battery = await db.fetchval("SELECT battery_pct FROM lorawan_devices WHERE device_id = $1", homes[0].name)
    assert battery == 95  # the EM300-TH's battery channel (simulation/lorawan.py sends 95 %)


async def test_a_councils_mapping_reads_another_vendors_decoded_json(
        db: Database, mosquitto: EmbeddedBroker, unique: str) -> None:
    profile = f"acme-fill-{unique[-8:]}"
    await set_mapping(db, profile, {"kind": "bin", "fields": {"distance_mm": {"path": "level.cm", "scale": 10}},
                                    "battery_v": {"path": "bat_mv", "scale": 0.001}})
    [bin_] = await lorawan_devices(db, unique, 1, codec=f"map:{profile}")
    async with running(db, server(unique, mosquitto.url)):
        await publish(mosquitto.url, [
            chirpstack_uplink(bin_, f_cnt=1, port_and_bytes=(5, b"\x00"), at=NOW,
                              decoded={"level": {"cm": 61.5}, "bat_mv": 3610}),
            chirpstack_uplink(bin_, f_cnt=2, port_and_bytes=(5, b"\x00"), at=NOW + timedelta(minutes=5),
                              decoded={"other": 1}),  # the mapping does not read it, and no codec can
        ])
        await reached(db, [bin_], 1)
        await eventually(lambda: _logged(db, bin_, 2), what="both frames logged")
    assert await db.fetchval("SELECT distance_mm FROM bin_readings WHERE device_id = $1", bin_.name) == 615
    assert await db.fetchval("SELECT battery_v FROM devices WHERE device_id = $1", bin_.name) == pytest.approx(3.61)
    assert any("no decoded payload that the mapping reads" in r
               for r in await dead(db, f"application/{APP}/device/{bin_.dev_eui}/%"))


async def test_status_counts_frames_lost_and_the_battery_from_status_events(
        db: Database, mosquitto: EmbeddedBroker, unique: str) -> None:
    [bin_] = await lorawan_devices(db, unique, 1)
    async with running(db, server(unique, mosquitto.url)):
        sent = [0, 1, 2, 5, 6, 9]  # 3, 4, 7 and 8 lost on the air
        await publish(mosquitto.url, [chirpstack_uplink(bin_, f_cnt=n, port_and_bytes=ldds75(700),
                                                        at=NOW + timedelta(hours=2, minutes=10 * n))
                                      for n in sent])
        await publish(mosquitto.url, [chirpstack_event(bin_, "status", NOW, batteryLevel=42.5, margin=9)])
        await reached(db, [bin_], 6)
        await eventually(lambda: _battery(db, bin_), what="the status event's battery")
    [status] = [s for s in await device_status(db, 24) if s["device_id"] == bin_.name]
    assert (status["uplinks"], status["frames_lost"]) == (6, 4)
    assert status["delivery"] == pytest.approx(6 / 10)
    assert status["battery_pct"] == 42.5
    # and the device's health says so (devices/health.py: a tenth of the frames lost is a warning)
    [health] = await device_health(db, datetime.now(UTC), device_ids=[bin_.name])
    assert health.state == "warning"
    assert "40% of LoRaWAN frames lost on the air in the last day (4 of 10)" in health.reasons
    assert health.battery_pct == 42.5 and health.last_seen is not None


async def _battery(db: Database, device: SimulatedDevice) -> bool:
    return await db.fetchval("SELECT battery_pct FROM lorawan_devices WHERE device_id = $1", device.name) is not None


# --- downlinks ---------------------------------------------------------------------------

async def test_a_reporting_interval_change_goes_as_a_downlink_and_its_ack_is_in_the_history(
        db: Database, mosquitto: EmbeddedBroker, unique: str) -> None:
    [home] = await lorawan_devices(db, unique, 1, kind="frog", codec="milesight-em300-th")
    downlinks: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    async with aiomqtt.Client(**MqttTarget.from_url(mosquitto.url).client_kwargs()) as network_server:
        await network_server.subscribe(f"application/{APP}/device/{home.dev_eui}/command/down", qos=1)

        async def collect() -> None:
            async for message in network_server.messages:
                await downlinks.put((message.topic.value, bytes(message.payload)))  # type: ignore[arg-type]
        collecting = asyncio.create_task(collect())
        try:
            async with running(db, server(unique, mosquitto.url)):
                await publish(mosquitto.url, [chirpstack_uplink(home, f_cnt=1, port_and_bytes=em300_th(19, 60),
                                                                at=NOW)])
                await reached(db, [home], 1, table="frog_readings")  # heard: the server and application are known
                await db.execute("UPDATE devices SET sample_interval_s = 900 WHERE device_id = $1", home.name)
                _topic, payload = await asyncio.wait_for(downlinks.get(), 20)
                command = json.loads(payload)
                # Milesight's encoder: ff 03 + uint16 LE seconds on port 85 (900 s = 0x0384)
                assert (command["fPort"], command["data"], command["confirmed"]) == (85, "/wOEAw==", True)
                await publish(mosquitto.url, [chirpstack_event(home, "ack", NOW + timedelta(minutes=1),
                                                               queueItemId=command["id"], acknowledged=True,
                                                               fCntDown=3)])
                await eventually(lambda: _acknowledged(db, command["id"]), what="the ack recorded")
                assert downlinks.empty()  # sent once, not on every check
        finally:
            collecting.cancel()
    history = await db.fetch("SELECT detail FROM device_events WHERE device_id = $1 AND action = 'downlink' "
                             "ORDER BY id", home.name)
    states = [json.loads(r["detail"])["state"] for r in history]
    assert states == ["sent", "acknowledged"]
    assert json.loads(history[0]["detail"])["sample_interval_s"] == 900


async def _acknowledged(db: Database, reference: str) -> bool:
    return await db.fetchval("SELECT state FROM lorawan_downlinks WHERE id = $1::uuid", reference) == "acknowledged"


# --- a crash mid-stream --------------------------------------------------------------------

def _integration(database_url: str, ns: NetworkServer, log: Path) -> subprocess.Popen[bytes]:
    return start_integration(database_url, [ns], log_path=log, flush_interval_s="0.05", device_messages_per_s="0")


async def test_the_integration_killed_mid_stream_loses_nothing_the_broker_took(
        db: Database, database_url: str, broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    bins = await lorawan_devices(db, unique, 20)
    [probe] = await lorawan_devices(db, unique + "p", 1)
    ns = server(unique, broker.url)
    per_device = 100
    uplinks = [chirpstack_uplink(b, f_cnt=n, port_and_bytes=ldds75(300 + n), at=NOW + timedelta(minutes=n))
               for n in range(per_device) for b in bins]
    with _integration(database_url, ns, tmp_path / "lorawan.log") as first:
        # an uplink stored: the integration has subscribed, and from then on the broker queues for its session
        # (one published before that finds no subscriber and is dropped: the probe is sent until one lands)
        probes = iter(range(1_000_000))

        async def subscribed() -> bool:
            n = next(probes)
            await publish(broker.url, [chirpstack_uplink(probe, f_cnt=n, port_and_bytes=ldds75(500),
                                                         at=NOW + timedelta(seconds=n))])
            return await rows(db, [probe]) > 0
        await eventually(subscribed, what="the integration subscribed")
        sending = asyncio.create_task(publish(broker.url, uplinks))  # QoS 1: each PUBACKed by the broker

        async def under_way() -> bool:
            return await rows(db, bins) > 200
        await eventually(under_way, what="a stream under way")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    at_kill = await rows(db, bins)
    await sending  # the rest were PUBACKed while the integration was dead: the broker holds them for its session
    assert at_kill < len(uplinks)
    with _integration(database_url, ns, tmp_path / "lorawan.log") as second:
        try:
            await reached(db, bins, len(uplinks))
        except AssertionError as exc:  # say how far it got: stuck, lost or refused?
            letters = await count(db, "SELECT count(*) FROM dead_letters WHERE device_id = ANY($1)",
                                  [b.name for b in bins])
            raise AssertionError(f"{exc}: {await rows(db, bins)} rows ({at_kill} at the kill), {letters} dead "
                                 "letters") from None
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
    assert await rows(db, bins) == len(uplinks)  # every one the broker took, each once
    assert await count(db, "SELECT count(*) FROM lorawan_uplinks WHERE device_id = ANY($1)",
                       [b.name for b in bins]) == len(uplinks)
    assert await count(db, "SELECT coalesce(sum(gap), 0) FROM lorawan_uplinks WHERE device_id = ANY($1)",
                       [b.name for b in bins]) == 0  # no frame was missed, none counted as missed


# --- The Things Stack's gaps: QoS 0 while away, closed from its Storage Integration -----------------

async def test_uplinks_lost_while_away_from_the_things_stack_are_replayed_from_storage_exactly_once(
        db: Database, database_url: str, mosquitto: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    [home] = await lorawan_devices(db, unique, 1, kind="frog", codec="milesight-em300-th")
    app = f"homes-{unique[-12:]}".lower()
    ns = server(unique, mosquitto.url, kind="tts", application=app)
    uplinks = [tts_uplink(home, application=app, f_cnt=n, port_and_bytes=em300_th(18 + n / 10, 60),
                          at=NOW + timedelta(minutes=10 * n)) for n in range(10)]
    async with running(db, ns):
        await publish(mosquitto.url, uplinks[:5], qos=0)
        await reached(db, [home], 5, table="frog_readings")
    await publish(mosquitto.url, uplinks[5:], qos=0)  # QoS 0 with nobody subscribed: gone, as on the real server
    assert await rows(db, [home], "frog_readings") == 5
    # the Storage Integration's answer (TTS "Retrieve Messages": newline-delimited {"result": <uplink>}),
    # covering the whole day: the five already stored overlap
    stored = tmp_path / "storage.ndjson"
    stored.write_text("".join(json.dumps({"result": json.loads(payload)}) + "\n" for _, payload in uplinks)
                      + "this line is not JSON\n")
    settings = load_settings(database_url=database_url, lorawan={"servers": [ns.model_dump()]})
    args = build_parser("lorawan").parse_args(["lorawan", "replay", str(stored), "--server", ns.name])
    assert await args.handler(args, settings) == 0
    assert await rows(db, [home], "frog_readings") == 10  # the five lost ones, and no second copy of the rest
    assert await count(db, "SELECT count(*) FROM lorawan_uplinks WHERE device_id = $1", home.name) == 10
    assert await count(db, "SELECT coalesce(sum(gap), 0) FROM lorawan_uplinks WHERE device_id = $1", home.name) == 0
    assert any(r.startswith("storage integration: not an uplink message") for r in await dead(db, "storage/%"))
