"""Ingest against a real Mosquitto and PostgreSQL: nothing lost, nothing doubled."""

import pytest

from cityops.embedded.broker import EmbeddedBroker
from cityops.storage import Database
from contract.telemetry import status_topic, telemetry_topic
from tests.ingest_helpers import (
    devices,
    eventually,
    frog_messages,
    frog_payload,
    ingest_settings,
    metric,
    publish,
    publish_as_a_device,
    rows_are,
    rows_of,
    running_ingest,
)


async def test_published_readings_are_committed_once_and_a_replay_changes_nothing(
        db: Database, broker: EmbeddedBroker, unique: str) -> None:
    ids = await devices(db, unique, 3)
    messages = frog_messages(ids, per_device=20, readings=5)
    async with running_ingest(db, broker.url, ingest_settings(unique)) as service:
        await publish(broker.url, messages)
        await eventually(lambda: rows_are(db, ids, 300), what="300 rows")
        await publish(broker.url, messages)  # the same batches again
        await eventually(lambda: _at_least(metric(service, "cityops_ingest_duplicates_dropped_total", kind="frog"),
                                           300), what="300 duplicates counted")
    assert await rows_of(db, ids) == 300
    assert metric(service, "cityops_ingest_readings_written_total", kind="frog") == 300


async def test_device_state_follows_telemetry_and_the_status_topic(
        db: Database, broker: EmbeddedBroker, unique: str) -> None:
    [device] = await devices(db, unique, 1)
    async with running_ingest(db, broker.url, ingest_settings(unique)):
        await publish(broker.url, [(telemetry_topic(device), frog_payload(device, 41, battery_v=3.41)),
                                   (status_topic(device), b"offline")])

        async def offline() -> bool:
            row = await db.fetch("SELECT online, battery_v, firmware_version, last_seq, last_seen "
                                 "FROM devices WHERE device_id = $1", device)
            return row[0]["online"] is False and row[0]["last_seq"] == 41
        await eventually(offline, what="device state updated")
    [row] = await db.fetch("SELECT battery_v, firmware_version, last_seen FROM devices WHERE device_id = $1", device)
    assert row["battery_v"] == pytest.approx(3.41) and row["firmware_version"] == "1.0.0"
    assert row["last_seen"] is not None


async def test_bad_messages_and_readings_land_in_dead_letters_and_the_rest_flows(
        db: Database, broker: EmbeddedBroker, unique: str) -> None:
    [good] = await devices(db, unique, 1)
    stranger = f"{unique}-stranger"
    bad = [(telemetry_topic(good), b"{broken"),
           (telemetry_topic(stranger), frog_payload(stranger, 0)),
           (telemetry_topic(good), frog_payload(good, 1).replace(b'"rh_pct":60.0', b'"rh_pct":160.0'))]
    async with running_ingest(db, broker.url, ingest_settings(unique)):
        await publish(broker.url, [*bad, (telemetry_topic(good), frog_payload(good, 2))])
        await eventually(lambda: rows_are(db, [good], 1), what="the good reading")
        letters = await db.fetch("SELECT device_id, reason FROM dead_letters WHERE device_id = ANY($1) "
                                 "ORDER BY id", [good, stranger])
    assert [(r["device_id"], r["reason"].split(":")[0]) for r in letters] == [
        (good, "malformed telemetry"), (stranger, "unknown device"), (good, "reading 0")]


async def test_two_consumers_on_one_shared_subscription_split_the_work_without_duplicates(
        db: Database, broker: EmbeddedBroker, unique: str) -> None:
    ids = await devices(db, unique, 10)
    messages = frog_messages(ids, per_device=50)
    one = ingest_settings(unique, client_id=f"{unique}-a")
    two = ingest_settings(unique, client_id=f"{unique}-b")
    async with running_ingest(db, broker.url, one) as first, running_ingest(db, broker.url, two) as second:
        await publish(broker.url, messages)
        await eventually(lambda: rows_are(db, ids, 500), what="500 rows")
    taken = [metric(s, "cityops_ingest_messages_total", channel="telemetry") for s in (first, second)]
    assert sum(taken) == 500 and min(taken) > 0, taken
    assert sum(metric(s, "cityops_ingest_duplicates_dropped_total", kind="frog") for s in (first, second)) == 0


async def test_a_broker_restart_loses_nothing(db: Database, broker: EmbeddedBroker, unique: str) -> None:
    """Queued and in-flight messages come back from the broker's store. Mosquitto does not
    restore shared subscriptions, so until ingest resubscribes a device's publish is answered
    'no matching subscribers' (0x10); devices keep such readings and send them again."""
    ids = await devices(db, unique, 5)
    async with running_ingest(db, broker.url, ingest_settings(unique)) as service:
        await publish(broker.url, frog_messages(ids, per_device=200))
        await broker.stop()
        await broker.start()
        await publish_as_a_device(broker.url, frog_messages(ids, per_device=220)[1000:])
        await eventually(lambda: rows_are(db, ids, 1100), timeout_s=60, what="1100 rows after restart")
        assert service.connected.is_set()


async def test_a_single_consumer_without_a_share_group_keeps_its_subscription_over_a_restart(
        db: Database, broker: EmbeddedBroker, unique: str) -> None:
    ids = await devices(db, unique, 2)
    async with running_ingest(db, broker.url, ingest_settings(unique, share_group="")):
        await publish(broker.url, frog_messages(ids, per_device=50))
        await eventually(lambda: rows_are(db, ids, 100), what="the first 100")
    await broker.stop()
    await broker.start()
    resends = await publish_as_a_device(broker.url, frog_messages(ids, per_device=100)[100:])
    assert resends == 0  # the restored session's subscription matched at once
    async with running_ingest(db, broker.url, ingest_settings(unique, share_group="")):
        await eventually(lambda: rows_are(db, ids, 200), what="all 200")


async def test_messages_sent_while_ingest_is_down_arrive_when_it_returns(
        db: Database, broker: EmbeddedBroker, unique: str) -> None:
    ids = await devices(db, unique, 2)
    settings = ingest_settings(unique)
    async with running_ingest(db, broker.url, settings):
        pass  # the first connection creates the persistent session and its subscription
    await publish(broker.url, frog_messages(ids, per_device=100))
    async with running_ingest(db, broker.url, settings):
        await eventually(lambda: rows_are(db, ids, 200), what="the backlog")


async def _at_least(value: float, expected: float) -> bool:
    return value >= expected
