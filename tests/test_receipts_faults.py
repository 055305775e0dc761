"""Nothing lost when the broker dies (issue 26): real agents, a real Mosquitto from the
project's embedded config (persistence, autosave every 30 s), real ingest, real PostgreSQL.

A broker that is SIGKILLed loses what it held in memory since its last autosave, PUBACKed
or not. With receipts (telemetry version 2) an agent keeps every reading until ingest's
commit is confirmed, so the readings the agents generated are all stored; a group of
version 1 agents (deleting on the PUBACK) beside them shows the loss the receipts prevent.
Counts, not hopes: generated = stored, and the primary key (device, ts) makes a duplicate
impossible, so stored rows are distinct readings."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from cityops.embedded.broker import EmbeddedBroker
from cityops.storage import Database
from contract.telemetry import FrogReading, telemetry_topic
from firmware.agent import Agent
from firmware.spool import Spool
from ingest.process import start_consumer
from tests.agent_helpers import START, frog_spec
from tests.ingest_helpers import (
    eventually,
    frog_payload,
    ingest_settings,
    publish_as_a_device,
    register,
    rows_are,
    rows_of,
    running_ingest,
)
from tests.tcp_proxy import CuttableProxy, database_behind_proxy

HOURS = 4  # of simulated time per agent: 48 readings at the frog's 5 minutes
SPEED = 6000  # simulated seconds per real second: 48 readings in 2.4 s






class Fleet:
    """Frog agents on one broker, each with its own spool; `receipts` False: version 1 agents."""

    def __init__(self, db: Database, broker: EmbeddedBroker, folder: Path, prefix: str, count: int,
                 *, receipts: bool = True):
        self.db, self.broker, self.folder = db, broker, folder
        self.ids = [f"{prefix}-{n}" for n in range(count)]
        self.receipts = receipts
        self.agents: list[Agent] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for device_id in self.ids:
            await register(self.db, device_id, registered_at=START - timedelta(days=1))
            self.agents.append(self.agent(device_id))
        self.tasks = [asyncio.create_task(a.run(until=START + timedelta(hours=HOURS), drain_timeout_s=180))
                      for a in self.agents]

    def agent(self, device_id: str) -> Agent:
        spec = frog_spec(device_id, self.broker.url, self.folder / f"{device_id}.sqlite3", speed=SPEED)
        return Agent(replace(spec, spool_durable=False, send=replace(
            spec.send, batch_max=10, receipts=self.receipts, receipt_timeout_s=5.0, receipt_timeout_max_s=10.0)))

    @property
    def generated(self) -> int:
        return sum(a.spec.source.climate.reads for a in self.agents)

    def all_sampled(self) -> bool:
        return self.generated == len(self.agents) * HOURS * 12

    def all_sent(self) -> bool:
        return self.all_sampled() and all(a.sender.counters.readings >= a.spec.source.climate.reads
                                          for a in self.agents)

    def confirmed(self) -> int:
        """Readings the agents deleted from their spools as delivered (receipt, or PUBACK for v1)."""
        return sum(a.sender.counters.acked_readings for a in self.agents)

    async def stored(self) -> int:
        return await rows_of(self.db, self.ids)

    async def finish(self) -> None:
        await asyncio.gather(*self.tasks)


def backlog_built(*fleets: Fleet):
    async def check() -> bool:
        return all(f.all_sent() for f in fleets)
    return check


def all_stored(fleet: Fleet):
    async def check() -> bool:
        return fleet.all_sampled() and await fleet.stored() == fleet.generated
    return check


async def test_a_broker_killed_with_a_backlog_in_it_loses_no_reading_of_an_agent_with_receipts(
        db: Database, database_url: str, broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    # ingest holds at most 20 unacknowledged messages: the rest of the backlog waits in the broker
    settings = ingest_settings(unique, receive_maximum=20, batch_readings=20)
    async with (database_behind_proxy(database_url) as (ingest_db, database),
                running_ingest(ingest_db, broker.url, settings)):
        await database.cut()  # the database stops: the backlog builds up in the broker
        await broker.stop()  # a polite restart writes the broker's state: the next autosave is 30 s away
        await broker.start()
        receipted = Fleet(db, broker, tmp_path, f"{unique}-r", 8)
        legacy = Fleet(db, broker, tmp_path, f"{unique}-l", 8, receipts=False)
        await receipted.start()
        await legacy.start()
        await eventually(backlog_built(receipted, legacy), timeout_s=60, what="every reading sent")
        await broker.kill()  # SIGKILL: the backlog in its memory is gone
        await broker.start()
        await database.restore()
        await eventually(all_stored(receipted), timeout_s=120,
                         what=f"all {receipted.generated} readings of the agents with receipts stored")
        await receipted.finish()
        await legacy.finish()
    assert await receipted.stored() == receipted.generated == 8 * HOURS * 12
    assert receipted.confirmed() == receipted.generated  # every reading receipted: spools empty
    assert sum(a.sender.counters.readings for a in receipted.agents) > receipted.generated  # some went twice
    legacy_stored = await legacy.stored()
    assert legacy_stored < legacy.generated, "the kill must have destroyed a backlog for this test to mean anything"
    assert legacy.confirmed() == legacy.generated  # PUBACKed, deleted from the spools, gone


async def test_a_broker_killed_in_steady_state_loses_nothing(
        db: Database, database_url: str, broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    async with running_ingest(db, broker.url, ingest_settings(unique)):
        fleet = Fleet(db, broker, tmp_path, unique, 8)
        await fleet.start()
        await eventually(lambda: _more_than(fleet, 50), what="readings flowing")
        await broker.kill()
        await broker.start()
        await fleet.finish()
        await eventually(all_stored(fleet), timeout_s=60, what=f"all {fleet.generated} readings stored")
    assert fleet.generated == 8 * HOURS * 12


async def _more_than(fleet: Fleet, count: int) -> bool:
    return await fleet.stored() > count


async def test_ingest_killed_between_its_commit_and_its_acknowledgement_loses_and_doubles_nothing(
        db: Database, database_url: str, broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    """The commit is in; the PUBACKs and receipts never leave (dropped on the way, then SIGKILL):
    the broker redelivers, the second commit is a no-op, and the agents get their receipts then."""
    fleet = Fleet(db, broker, tmp_path, unique, 4)
    async with CuttableProxy("127.0.0.1", broker.port) as to_broker:
        consumer = start_consumer(database_url, f"mqtt://127.0.0.1:{to_broker.port}", client_id=f"{unique}-c",
                                  group=unique, flush_interval_s="0.05", device_messages_per_s="0")
        try:
            await _consumer_is_committing(db, broker, unique)
            to_broker.drop_upstream()
            await fleet.start()
            await eventually(all_stored(fleet), timeout_s=60, what="every reading committed, nothing acknowledged")
            assert all(a.spool.pending() > 0 for a in fleet.agents), "no receipt may have reached an agent"
            consumer.send_signal(signal.SIGKILL)
            consumer.wait()
            await to_broker.cut()
            await to_broker.restore()
        finally:
            consumer.kill()
            consumer.wait()
        with start_consumer(database_url, broker.url, client_id=f"{unique}-c", group=unique,
                            flush_interval_s="0.05", device_messages_per_s="0") as again:
            try:
                await fleet.finish()  # drained: every reading receipted after the redelivery
            finally:
                again.send_signal(signal.SIGTERM)
                again.wait(timeout=30)
    assert fleet.confirmed() == fleet.generated
    assert await fleet.stored() == fleet.generated == 4 * HOURS * 12


async def _consumer_is_committing(db: Database, broker: EmbeddedBroker, unique: str) -> None:
    """A probe device's message stored: the consumer is subscribed and writing."""
    probe = f"{unique}-probe"
    await register(db, probe)
    await publish_as_a_device(broker.url, [(telemetry_topic(probe), frog_payload(probe, 0))])
    await eventually(lambda: rows_are(db, [probe], 1), what="the consumer subscribed and committing")


async def test_an_agent_killed_between_a_receipt_and_its_spool_delete_sends_again_and_nothing_doubles(
        db: Database, broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    async with running_ingest(db, broker.url, ingest_settings(unique)):
        fleet = Fleet(db, broker, tmp_path, unique, 1)
        device_id = fleet.ids[0]
        await register(db, device_id, registered_at=START - timedelta(days=1))
        crashing = fleet.agent(device_id)
        receipts_seen = asyncio.Event()

        def killed_before_deleting(ids: object) -> None:  # the spool, at its seam: the delete never happens
            receipts_seen.set()
            raise RuntimeError("the agent dies here")

        crashing.spool.acknowledge = killed_before_deleting
        run = asyncio.create_task(crashing.run(until=START + timedelta(hours=HOURS), drain_timeout_s=5))
        await asyncio.wait_for(receipts_seen.wait(), 30)
        await eventually(lambda: _more_than(fleet, 0), what="the first readings stored")
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        left = Spool(tmp_path / f"{device_id}.sqlite3", FrogReading)
        left_behind = left.pending()
        left.close()
        assert left_behind > 0
        again = fleet.agent(device_id)  # the same spool file, after the "restart"
        fleet.agents = [again]
        await again.run(until=START, drain_timeout_s=60)  # nothing new sampled: only the spool goes out
    assert again.sender.counters.acked_readings == left_behind  # the spool went out again, all receipted
    assert await fleet.stored() == crashing.spec.source.climate.reads

