"""Rotation loses no reading, and ingest refuses a forged device id, through a real
Mosquitto that runs on the generated password and ACL files."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityops.storage import Database
from contract.telemetry import NO_MATCHING_SUBSCRIBERS, telemetry_topic
from devices.registry import rotate_secret
from firmware.agent import Agent
from firmware.clock import SimClock
from tests.agent_helpers import START, collecting, frog_spec
from tests.broker_helpers import ACCEPTED, Client, secured_broker
from tests.ingest_helpers import eventually, frog_payload, ingest_settings, running_ingest


async def test_a_rotated_device_keeps_publishing_and_loses_no_reading(
        db: Database, unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    spool = tmp_path / "spool.sqlite3"
    async with secured_broker(db, tmp_path / "broker") as broker:
        [old] = await broker.provision(device)
        async with collecting(broker.port, unique, username="service.ingest",
                              password=broker.secrets["service.ingest"]) as collector:
            # 1. running on the old secret: readings flow
            agent = Agent(frog_spec(device, broker.url, spool, speed=600, username=device, password=old.secret))
            run = asyncio.create_task(agent.run())
            await collector.wait_for(lambda: len(collector.readings(device)) >= 3)

            # 2. rotated: the reload drops the agent's connection, the old secret is refused, it spools
            new = await rotate_secret(db, device)
            await broker.sync()
            assert agent.link is not None
            await collector.wait_for(lambda: agent.link is not None and agent.link.counters.refusals >= 2
                                     and agent.spool.pending() >= 3)
            assert agent.spool.pending() <= agent.sampler.samples
            run.cancel()  # the agent is restarted once its password file holds the new secret
            with pytest.raises(asyncio.CancelledError):
                await run
            sampled = agent.sampler.samples
            assert agent.link.counters.connections == 1

            # 3. the new secret: it connects and replays the spool (its clock is later: it samples nothing)
            later = START + timedelta(days=1)
            fixed = Agent(dataclasses.replace(
                frog_spec(device, broker.url, spool, speed=600, username=device, password=new.secret),
                clock=SimClock(later, 600)))
            await fixed.run(until=later, drain_timeout_s=20)
            await collector.wait_for(lambda: len({r.ts for r in collector.readings(device)}) >= sampled)
    assert {r.ts for r in collector.readings(device)} == {START + timedelta(minutes=5 * k) for k in range(sampled)}
    assert fixed.sender.counters.acked_readings >= 3


async def test_a_rotated_secret_written_to_the_password_file_is_picked_up_without_a_restart(
        db: Database, unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    password_file = tmp_path / "mqtt-password"
    async with secured_broker(db, tmp_path / "broker") as broker:
        [old] = await broker.provision(device)
        password_file.write_text(old.secret + "\n")
        async with collecting(broker.port, unique, username="service.ingest",
                              password=broker.secrets["service.ingest"]) as collector:
            agent = Agent(frog_spec(device, broker.url, tmp_path / "spool.sqlite3", speed=600, username=device,
                                    password_file=password_file))
            run = asyncio.create_task(agent.run())
            await collector.wait_for(lambda: len(collector.readings(device)) >= 3)
            new = await rotate_secret(db, device)
            await broker.sync()
            await collector.wait_for(lambda: agent.link is not None and agent.link.counters.refusals >= 1
                                     and agent.spool.pending() >= 2)
            password_file.write_text(new.secret + "\n")  # the installer's step; the agent keeps running
            await collector.wait_for(lambda: agent.link is not None and agent.link.counters.connections >= 2
                                     and agent.spool.pending() == 0)
            sampled = agent.sampler.samples
            await collector.wait_for(lambda: len({r.ts for r in collector.readings(device)}) >= sampled)
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
    assert {r.ts for r in collector.readings(device)} >= {START + timedelta(minutes=5 * k) for k in range(sampled)}


async def test_ingest_refuses_a_payload_whose_device_id_is_not_the_topics(
        db: Database, unique: str, tmp_path: Path) -> None:
    async with secured_broker(db, tmp_path / "broker") as broker:
        a, b = await broker.provision(f"{unique}-a", f"{unique}-b")
        ingest_url = f"mqtt://service.ingest:{broker.secrets['service.ingest']}@127.0.0.1:{broker.port}"
        async with running_ingest(db, ingest_url, ingest_settings(unique)):
            # A may publish on its own topic but claims to be B in the payload; then one honest message
            now = datetime.now(UTC)  # after registration (ingest refuses earlier readings), not in the future
            messages = [frog_payload(b.name, 0, start=now), frog_payload(a.name, 0, start=now)]
            client = Client(broker.port, a.name, a.secret)
            try:
                assert client.connect() == 0
                for payload in messages:  # like the agent: again while ingest's subscription is not there yet
                    while (code := client.publish(  # noqa: ASYNC110 (the broker's answer, not a local event)
                            telemetry_topic(a.name), payload)) == NO_MATCHING_SUBSCRIBERS:
                        await asyncio.sleep(0.1)
                    assert code == 0
                # and the broker never lets A put anything on B's topic in the first place
                assert client.publish(telemetry_topic(b.name), frog_payload(a.name, 1, start=now)) not in ACCEPTED
            finally:
                client.close()

            async def written() -> bool:
                return bool(await db.fetchval("SELECT count(*) FROM frog_readings WHERE device_id = $1", a.name))
            await eventually(written, what="A's honest reading written")
            await eventually(lambda: _dead_letters(db, a.name), what="the forged message dead-lettered")
        reasons = [r["reason"] for r in await db.fetch("SELECT reason FROM dead_letters WHERE device_id = $1",
                                                       a.name)]
        assert reasons == [f"payload device_id {b.name!r} does not match the topic's {a.name!r}"]
        assert await db.fetchval("SELECT count(*) FROM frog_readings WHERE device_id = $1", b.name) == 0


async def _dead_letters(db: Database, device_id: str) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM dead_letters WHERE device_id = $1", device_id))
