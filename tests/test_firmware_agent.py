"""The agent against a real Mosquitto: what was sampled arrives, in order, with device
timestamps; outages, wrong credentials and the config topic; the fleet's determinism.

Tests that stop and restart a broker (or need passwords) start their own Mosquitto on a
free port (`OwnBroker`); the rest use the session's. Time is simulated and fast.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import shutil
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.telemetry import (
    DeviceConfig,
    FrogReading,
    Reading,
    config_topic,
    encode_config,
)
from firmware.agent import Agent
from firmware.link import MqttOptions
from firmware.sender import SendPolicy
from firmware.spool import Spool
from simulation.fleet import FleetPlan, build_fleet, run_fleet
from tests.agent_helpers import START, collecting, expected_frog, frog_spec, own_broker, until
from tests.conftest import BrokerInstance

# --- helpers -----------------------------------------------------------------------------










def distinct_in_first_arrival_order(readings: list[Reading]) -> list[Reading]:
    seen: dict[datetime, Reading] = {}
    for reading in readings:
        seen.setdefault(reading.ts, reading)
    return list(seen.values())


def make_certificates(folder: Path, client_cn: str) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl binary: TLS test skipped")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in ("ca.pem", "ca.key", "server.pem", "server.key",
                                               "client.pem", "client.key")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", str(paths["ca.key"]), "-out", str(paths["ca.pem"]), "-days", "2",
        "-subj", "/CN=cityops-test-ca")
    for name, cn, ext in (("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1"),
                          ("client", client_cn, "extendedKeyUsage=clientAuth")):
        csr, ext_file = folder / f"{name}.csr", folder / f"{name}.ext"
        ext_file.write_text(ext + "\n")
        run("req", *ec, "-keyout", str(paths[f"{name}.key"]), "-out", str(csr), "-subj", f"/CN={cn}")
        run("x509", "-req", "-in", str(csr), "-CA", str(paths["ca.pem"]), "-CAkey", str(paths["ca.key"]),
            "-CAcreateserial", "-out", str(paths[f"{name}.pem"]), "-days", "2", "-extfile", str(ext_file))
    return paths


# --- tests ------------------------------------------------------------------------------

async def test_what_was_sampled_arrives_in_order_with_device_timestamps(
        mosquitto: BrokerInstance, unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    async with collecting(mosquitto.port, unique) as collector:
        agent = Agent(frog_spec(device, mosquitto.url, tmp_path / "spool.sqlite3", speed=6000))
        await agent.run(until=START + timedelta(hours=2), drain_timeout_s=20)  # 24 samples, 1.2 s
        await collector.wait_for(lambda: len(collector.readings()) >= 24 and len(collector.statuses) >= 2)
    assert collector.readings(device) == expected_frog(24)  # every one, in order, device time
    seqs = [b.seq for b in collector.batches]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {b.fw for b in collector.batches} == {"0.1.0"} and not any(r.unsynced for r in collector.readings())
    assert [(payload, retained) for _, payload, retained in collector.statuses] == \
        [(b"online", False), (b"offline", False)]
    assert agent.sender.counters.acked_readings == 24


async def test_a_broker_outage_loses_nothing(unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    async with own_broker(tmp_path / "broker") as broker, collecting(broker.port, unique) as collector:
        agent = Agent(frog_spec(device, broker.url, tmp_path / "spool.sqlite3", speed=1200))
        run = asyncio.create_task(agent.run(until=START + timedelta(minutes=80), drain_timeout_s=30))  # 4 s
        await collector.wait_for(lambda: len(collector.readings()) >= 3)
        await broker.stop()
        await until(lambda: agent.spool.pending() >= 3)  # samples taken while the broker is away
        spooled_during_outage = agent.spool.pending()
        await broker.start()
        await run
        await collector.wait_for(lambda: len({r.ts for r in collector.readings(device)}) >= 16)
    assert spooled_during_outage >= 3
    assert distinct_in_first_arrival_order(collector.readings(device)) == expected_frog(16)
    assert agent.link is not None and agent.link.counters.connections >= 2


async def test_readings_nobody_subscribes_to_stay_spooled_until_someone_does(unique: str, tmp_path: Path) -> None:
    """MQTT 5 PUBACK 'no matching subscribers' (as after a broker restart, before ingest has
    resubscribed): the readings are not dropped from the spool but sent again later."""
    device = f"{unique}-frog"
    async with own_broker(tmp_path / "broker") as broker:
        spec = dataclasses.replace(frog_spec(device, broker.url, tmp_path / "spool.sqlite3", speed=1200),
                                   send=SendPolicy(batch_max=50, messages_per_s=50, replay_jitter_s=0.0,
                                                   undelivered_retry_s=0.3))
        agent = Agent(spec)
        run = asyncio.create_task(agent.run(until=START + timedelta(minutes=60), drain_timeout_s=30))  # 3 s
        # answered "no matching subscribers", and kept
        await until(lambda: agent.sender.counters.undelivered > 0 and agent.spool.pending() > 0)
        async with collecting(broker.port, unique) as collector:
            await run
            await collector.wait_for(lambda: len({r.ts for r in collector.readings(device)}) >= 12)
    assert distinct_in_first_arrival_order(collector.readings(device)) == expected_frog(12)
    assert agent.sender.counters.acked_readings == 12


async def test_wrong_credentials_are_reported_once_retried_and_nothing_is_lost(
        unique: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    device = f"{unique}-frog"
    spool = tmp_path / "spool.sqlite3"
    users = {device: "right-password", "collector": "collector-password"}
    async with own_broker(tmp_path / "broker", users=users) as broker, \
            collecting(broker.port, unique, username="collector", password="collector-password") as collector:
        refused = Agent(frog_spec(device, broker.url, spool, speed=600, username=device, password="wrong"))
        with caplog.at_level(logging.INFO, logger="firmware.link"):
            run = asyncio.create_task(refused.run())
            await collector.wait_for(lambda: refused.link is not None and refused.link.counters.refusals >= 3)
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "refused" in warnings[0] and "not authori" in warnings[0].lower()
        assert refused.link is not None and refused.link.refused is not None
        sampled = refused.sampler.samples
        assert sampled >= 1 and collector.readings() == []

        # The same spool with the right password: everything sampled while refused arrives.
        fixed = Agent(frog_spec(device, broker.url, spool, speed=600, username=device, password="right-password"))
        await fixed.run(until=START, drain_timeout_s=20)  # `until` = start: sample nothing, drain the spool
        await collector.wait_for(lambda: len(collector.readings(device)) >= sampled)
    assert collector.readings(device) == expected_frog(sampled)


async def test_the_retained_config_topic_sets_the_sampling_interval(
        mosquitto: BrokerInstance, unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    try:
        publisher.publish(config_topic(device), encode_config(DeviceConfig(sample_interval_s=60)), qos=1,
                          retain=True).wait_for_publish(5)
        async with collecting(mosquitto.port, unique) as collector:
            agent = Agent(frog_spec(device, mosquitto.url, tmp_path / "spool.sqlite3", speed=600))
            await agent.run(until=START + timedelta(minutes=20), drain_timeout_s=20)  # 2 s
            await collector.wait_for(lambda: len(collector.readings(device)) == agent.sampler.samples)
        stamps = [r.ts for r in collector.readings(device)]
        assert agent.sampler.interval_s == 60 and len(stamps) >= 15
        gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(stamps[1:])}
        assert gaps == {60.0}  # after the first sample (taken before the config arrived)
    finally:
        publisher.publish(config_topic(device), b"", qos=1, retain=True).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()


async def fleet_run(url: str, port: int, prefix: str, seed: int, spool_dir: Path) -> dict[str, list[Reading]]:
    plan = FleetPlan(homes=2, roads=1, bins=1, gritters=1, seed=seed, speed=36_000, start=START, prefix=prefix)
    specs = build_fleet(plan, MqttOptions.from_url(url), spool_dir)
    async with collecting(port, prefix) as collector:
        await run_fleet(specs, START + timedelta(hours=6), drain_timeout_s=30)
        await collector.wait_for(lambda: len({b.device_id for b in collector.batches}) == len(specs))
        await asyncio.sleep(0.3)
    return {spec.device_id.removeprefix(prefix): collector.readings(spec.device_id) for spec in specs}


async def test_two_simulator_runs_with_the_same_seed_publish_identical_readings(
        mosquitto: BrokerInstance, unique: str, tmp_path: Path) -> None:
    first = await fleet_run(mosquitto.url, mosquitto.port, f"{unique}a-", 5, tmp_path / "a")
    second = await fleet_run(mosquitto.url, mosquitto.port, f"{unique}b-", 5, tmp_path / "b")
    other = await fleet_run(mosquitto.url, mosquitto.port, f"{unique}c-", 6, tmp_path / "c")
    assert set(first) == {"home-000", "home-001", "road-000", "bin-000", "gritter-000"}
    assert first == second
    assert first != other and first.keys() == other.keys()
    assert len(first["home-000"]) == 72 and len(first["road-000"]) == 36 and len(first["bin-000"]) == 12
    assert 300 < len(first["gritter-000"]) < 360  # one a minute, none before the GPS fix


async def test_tls_with_a_ca_and_a_client_certificate(unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    certs = make_certificates(tmp_path / "broker", device)
    extra = (f"cafile {certs['ca.pem']}\ncertfile {certs['server.pem']}\nkeyfile {certs['server.key']}\n"
             "require_certificate true\n")
    client_tls = {"ca_certs": str(certs["ca.pem"]), "certfile": str(certs["client.pem"]),
                  "keyfile": str(certs["client.key"])}
    async with own_broker(tmp_path / "broker", extra=extra) as broker, \
            collecting(broker.port, unique, tls=client_tls) as collector:
        url = f"mqtts://127.0.0.1:{broker.port}"
        spec = frog_spec(device, url, tmp_path / "spool.sqlite3", speed=6000)
        options = MqttOptions.from_url(url, ca_file=certs["ca.pem"], cert_file=certs["client.pem"],
                                       key_file=certs["client.key"])
        agent = Agent(dataclasses.replace(spec, mqtt=options))
        await agent.run(until=START + timedelta(minutes=30), drain_timeout_s=20)
        await collector.wait_for(lambda: len(collector.readings(device)) >= 6)
        assert collector.readings(device) == expected_frog(6)

        # Without the client certificate the broker will not talk to us: reported, nothing sent.
        bare_spec = frog_spec(device, url, tmp_path / "other.sqlite3", speed=6000)
        bare = Agent(dataclasses.replace(bare_spec, mqtt=MqttOptions.from_url(url, ca_file=certs["ca.pem"])))
        await bare.run(until=START + timedelta(minutes=5), drain_timeout_s=1.5)
        assert bare.link is not None and bare.link.counters.connections == 0
        assert bare.link.counters.connect_attempts >= 2 and bare.sender.counters.messages == 0


async def test_a_backlog_is_replayed_in_batches_at_the_rate_limit(
        mosquitto: BrokerInstance, unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    spool_path = tmp_path / "spool.sqlite3"
    spool = Spool(spool_path, FrogReading)
    backlog = expected_frog(100)  # e.g. eight hours offline
    for reading in backlog:
        spool.add(reading)
    spool.close()
    policy = SendPolicy(batch_max=10, window=4, messages_per_s=20, replay_jitter_s=0.0)
    agent = Agent(dataclasses.replace(frog_spec(device, mosquitto.url, spool_path, speed=6000), send=policy))
    async with collecting(mosquitto.port, unique) as collector:
        began = time.monotonic()
        await agent.run(until=START, drain_timeout_s=20)  # sample nothing: only the backlog
        elapsed = time.monotonic() - began
        await collector.wait_for(lambda: len(collector.readings(device)) >= 100)
    assert collector.readings(device) == backlog
    assert [len(batch.readings) for batch in collector.batches] == [10] * 10
    assert elapsed >= 9 / 20  # ten messages at 20 a second
