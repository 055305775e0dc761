"""Issue 26, part 3: the NATS JetStream cluster, three real `nats-server` processes on loopback.

The cluster forms with the generated configs; a device's QoS 1 MQTT 3.1.1 publish lands in
the telemetry stream with three current copies; and the broker attacks of issue 18
(tests/test_security_broker.py has Mosquitto's) fail against the generated NATS users while a
householder's box sends its readings: readings sent = messages stored, none forged.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg

from cityops.errors import BrokerUnavailable
from cityops.nats_cluster import jetstream
from cityops.nats_cluster.config import CONSUMER, INGEST_INBOX, STREAM, subject
from contract.telemetry import config_topic, telemetry_topic
from devices.dynsec import ADMIN
from devices.nats_auth import INGEST
from tests.nats_helpers import MqttClient, NatsCluster, mqtt_connack, nats_cluster

REFUSED = 0x80  # SUBACK failure (MQTT 3.1.1)
pytestmark = pytest.mark.timeout(240)


def receipts_topic(device_id: str) -> str:
    return telemetry_topic(device_id).rsplit("/", 1)[0] + "/receipts"


def payload(device_id: str, seq: int) -> bytes:
    return json.dumps({"v": 2, "device_id": device_id, "seq": seq, "readings": []}).encode()


async def test_the_cluster_forms_and_a_devices_qos1_publish_is_stored_on_three_nodes(tmp_path: Path) -> None:
    async with nats_cluster(tmp_path, ["frog-a"]) as cluster:
        async with cluster.admin() as js:
            info = await js.stream_info(STREAM)
            assert info.config.num_replicas == 3
            assert await jetstream.replicas_current(js, STREAM) == 3
            assert info.cluster is not None
            assert {info.cluster.leader, *(p.name for p in info.cluster.replicas or [])} == {"n1", "n2", "n3"}
            assert await jetstream.ensure_stream(js) == ("unchanged", "unchanged")  # idempotent
        for i, name in enumerate(cluster.names):  # each node's MQTT listener takes the device
            box = MqttClient(cluster.mqtt_port(name), "frog-a", cluster.secrets["frog-a"], "frog-a")
            assert await asyncio.to_thread(box.connect) == 0
            try:
                for seq in range(i * 10, i * 10 + 10):
                    assert await asyncio.to_thread(box.publish, telemetry_topic("frog-a"), payload("frog-a", seq))
            finally:
                box.close()
            await cluster.wait_mqtt_sessions(0)  # its node has let the session go: the next node may take it
        assert await _stored_is(cluster, subject("frog-a", "telemetry"), 30)
        async with cluster.admin() as js:
            seqs = await _read_back(js, subject("frog-a", "telemetry"), 30)
        assert sorted(seqs) == list(range(30))


async def _stored_is(cluster: NatsCluster, subject_name: str, expected: int, timeout_s: float = 15.0) -> bool:
    async with asyncio.timeout(timeout_s):
        while (await cluster.stored(subject_name)).get(subject_name, 0) != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return True


async def _read_back(js: nats.js.JetStreamContext, subject_name: str, count: int) -> list[int]:
    """The stored messages of one subject, by an ephemeral consumer of the admin's (not ingest's)."""
    sub = await js.pull_subscribe(subject_name, stream=STREAM)
    out: list[int] = []
    while len(out) < count:
        for msg in await sub.fetch(count - len(out), timeout=5):
            out.append(json.loads(msg.data)["seq"])
            await msg.ack()
    await sub.unsubscribe()
    return out


# --- the attacks of issue 18, against the cluster --------------------------------------------

def send_readings(port: int, device_id: str, secret: str, messages: int, stop: threading.Event,
                  turns: threading.Semaphore) -> int:
    """The householder's box: one message a turn the attacker gives; QoS 1, MQTT 3.1.1."""
    box = MqttClient(port, device_id, secret, device_id)
    assert box.connect() == 0, "the householder's box was refused"
    sent = 0
    try:
        while sent < messages:
            assert turns.acquire(timeout=60), "the attacker stopped giving turns"
            assert box.publish(telemetry_topic(device_id), payload(device_id, sent)), "no PUBACK"
            sent += 1
    finally:
        box.close()
        stop.set()
    return sent


SUBSCRIBE_ATTACKS = ("#", "$SYS/#", "$MQTT/sub/#", "$JS/API/#", "cityops/v1/devices/+/telemetry",
                     "cityops/v1/devices/+/receipts", "+/+/+/+/config")


def attack(port: int, evil: str, secret: str, victim: str, stop: threading.Event,
           turns: threading.Semaphore) -> dict[str, list[int | bool]]:
    """Every broker attack with the attacker's valid secret, round after round until the victim is done."""
    seen: dict[str, list[int | bool]] = {}

    def note(name: str, code: int | bool) -> None:
        seen.setdefault(name, []).append(code)

    while not stop.is_set() or not seen:
        note("connect with the victim's username and a wrong password", mqtt_connack(port, victim, secret, victim))
        note("connect anonymously", mqtt_connack(port, "", "", f"{evil}-anon"))
        box = MqttClient(port, evil, secret, evil)
        assert box.connect() == 0
        try:
            for topic in (*SUBSCRIBE_ATTACKS, config_topic(victim), receipts_topic(victim), telemetry_topic(victim)):
                note(f"subscribe {topic}", box.subscribe(topic))
            box.publish(telemetry_topic(victim), b'{"forged": true}')
            box.publish(receipts_topic(victim), b'{"stored": [[0, 1000000]]}')
            box.publish(receipts_topic(evil), b'{"stored": [[0, 1000000]]}')
            box.publish(config_topic(victim), b"{}")
            # the JetStream API through the MQTT listener: read the stream, make or steal a consumer
            box.publish(f"$JS/API/CONSUMER/CREATE/{STREAM}", json.dumps(
                {"stream_name": STREAM, "config": {"ack_policy": "none", "deliver_subject": "cityops.v1.devices."
                                                   f"{evil}.config"}}).encode())
            box.publish(f"$JS/API/CONSUMER/DURABLE/CREATE/{STREAM}/{evil}", b"{}")
            box.publish(f"$JS/API/CONSUMER/MSG/NEXT/{STREAM}/{CONSUMER}", b'{"batch": 100}')
            box.publish(f"$JS/API/STREAM/DELETE/{STREAM}", b"")
            box.publish(f"$JS/API/STREAM/PURGE/{STREAM}", b"")
            note("received", len(box.received()))
        finally:
            box.close()
        turns.release(10)
    return seen


async def test_every_broker_attack_fails_against_the_cluster_while_readings_sent_equal_readings_stored(
        tmp_path: Path) -> None:
    good, evil = "frog-good", "frog-evil"
    async with nats_cluster(tmp_path, [good, evil]) as cluster:
        watcher = await jetstream.connect(cluster.client_urls(), ADMIN, cluster.secrets[ADMIN], name="watcher")
        reached: set[str] = set()

        async def seen_by_a_subscriber(msg: Msg) -> None:
            reached.add(msg.subject)

        await watcher.subscribe("cityops.v1.devices.>", cb=seen_by_a_subscriber)  # what reaches any subscriber
        async with cluster.admin() as js:
            port = cluster.mqtt_port("n2")
            stop, turns = threading.Event(), threading.Semaphore(0)
            sent, seen = await asyncio.gather(
                asyncio.to_thread(send_readings, cluster.mqtt_port("n1"), good, cluster.secrets[good], 60, stop,
                                  turns),
                asyncio.to_thread(attack, port, evil, cluster.secrets[evil], good, stop, turns))
            assert await _stored_is(cluster, subject(good, "telemetry"), 60)
            await watcher.flush()
            await watcher.close()
            info = await js.stream_info(STREAM)
            consumers = [c.name for c in await js.consumers_info(STREAM)]
            ingest = await js.consumer_info(STREAM, CONSUMER)
            seqs = await _read_back(js, subject(good, "telemetry"), 60)

            # the attacker on the NATS protocol: devices may use MQTT only; refused at once, not
            # retried node after node (nats-py learns the others from each node's INFO)
            async with asyncio.timeout(15):
                with pytest.raises(BrokerUnavailable, match="refused"):
                    await jetstream.connect([cluster.client_url("n1")], evil, cluster.secrets[evil], name="evil")

        assert sent == 60
        assert sorted(seqs) == list(range(60))                 # sent = stored: none lost, none forged, none twice
        assert await cluster.stored() == {subject(good, "telemetry"): 60}
        assert info.state.messages == 60
        assert reached <= {subject(good, "telemetry")}         # no receipt, config or forged message went out
        assert consumers == [CONSUMER] and ingest.delivered.stream_seq == 0  # no consumer made, ingest's untouched
        rounds = len(seen["received"])
        assert rounds >= 6                                     # the attacks ran throughout the sending
        assert set(seen["received"]) == {0}
        for name, codes in seen.items():
            if name.startswith("connect"):
                assert all(c not in (0, -1) for c in codes), (name, codes)  # refused with a CONNACK code
            elif name.startswith("subscribe"):
                assert set(codes) == {REFUSED}, (name, codes)
        log = cluster.log("n2")  # the refusals are the permissions', named in the node's log
        assert f'Publish Violation - User "{evil}"' in log and f'Subscription Violation - User "{evil}"' in log


async def test_ingest_reads_the_stream_through_its_consumer_only_and_sends_each_device_its_receipts(
        tmp_path: Path) -> None:
    a, b = "frog-r1", "frog-r2"
    async with nats_cluster(tmp_path, [a, b]) as cluster:
        box_a = MqttClient(cluster.mqtt_port("n3"), a, cluster.secrets[a], a)
        box_b = MqttClient(cluster.mqtt_port("n1"), b, cluster.secrets[b], b)
        for box in (box_a, box_b):
            assert await asyncio.to_thread(box.connect) == 0
        try:
            assert await asyncio.to_thread(box_a.subscribe, receipts_topic(a), 0) == 0
            assert await asyncio.to_thread(box_b.subscribe, receipts_topic(b), 0) == 0
            for seq in range(5):
                assert await asyncio.to_thread(box_a.publish, telemetry_topic(a), payload(a, seq))
            nc = await jetstream.connect(cluster.client_urls(), INGEST, cluster.secrets[INGEST], name="ingest",
                                         inbox_prefix=INGEST_INBOX)
            try:
                js = nc.jetstream(timeout=5)
                sub = await js.pull_subscribe_bind(CONSUMER, STREAM)
                got: list[int] = []
                while len(got) < 5:
                    for msg in await sub.fetch(5 - len(got), timeout=5):
                        got.append(json.loads(msg.data)["seq"])
                        await msg.ack_sync()
                assert sorted(got) == list(range(5))
                assert (await js.consumer_info(STREAM, CONSUMER)).num_ack_pending == 0
                await nc.publish(subject(a, "receipts"), b'{"v": 1, "stored": [[0, 4]]}')
                await nc.flush()
                # and nothing else of the JetStream API: each request is refused (no answer comes)
                denied = nc.jetstream(timeout=1)
                for call in (denied.account_info, lambda: denied.stream_info(STREAM),
                             lambda: denied.add_consumer(STREAM, durable_name="x"),
                             lambda: denied.delete_consumer(STREAM, CONSUMER), lambda: denied.delete_stream(STREAM),
                             lambda: denied.consumers_info(STREAM), lambda: denied.purge_stream(STREAM)):
                    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError,
                                        nats.js.errors.APIError)):
                        await call()
                await nc.subscribe("cityops.v1.devices.*.telemetry")  # the stream's subjects, live
                await nc.flush()
            finally:
                await nc.close()
            await asyncio.to_thread(_wait, lambda: len(box_a.received()) == 1)
            assert box_a.received() == [(receipts_topic(a), b'{"v": 1, "stored": [[0, 4]]}')]
            assert box_b.received() == []   # a device reads its own receipts only
        finally:
            box_a.close()
            box_b.close()
        async with cluster.admin() as js:
            assert [c.name for c in await js.consumers_info(STREAM)] == [CONSUMER]
            assert (await js.stream_info(STREAM)).state.messages == 5
        logs = "".join(cluster.log(n) for n in cluster.names)
        assert 'Subscription Violation - User "service.ingest", Subject "cityops.v1.devices.*.telemetry"' in logs
        assert f'Publish Violation - User "service.ingest", Subject "$JS.API.STREAM.DELETE.{STREAM}"' in logs


def _wait(predicate: object, timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


async def test_a_device_under_another_devices_client_id_takes_the_session_but_reads_and_forges_nothing(
        tmp_path: Path) -> None:
    """The limit docs/security.md states: NATS 2.9 binds no client id to a user."""
    victim, evil = "frog-v", "frog-e"
    async with nats_cluster(tmp_path, [victim, evil]) as cluster:
        port = cluster.mqtt_port("n1")
        box = MqttClient(port, victim, cluster.secrets[victim], victim, clean_session=False)
        assert await asyncio.to_thread(box.connect) == 0
        assert await asyncio.to_thread(box.subscribe, config_topic(victim)) == 1
        thief = MqttClient(port, evil, cluster.secrets[evil], victim, clean_session=False)
        assert await asyncio.to_thread(thief.connect) == 0       # accepted: the id is not bound to a user
        await asyncio.to_thread(box.disconnected.wait, 10)
        assert box.disconnected.is_set()                         # the victim was kicked off
        releases = MqttClient(port, "service.releases", cluster.secrets["service.releases"], "cityops-releases")
        assert await asyncio.to_thread(releases.connect) == 0
        try:
            assert await asyncio.to_thread(thief.subscribe, config_topic(evil)) == 1
            assert await asyncio.to_thread(releases.publish, config_topic(victim), b'{"offer": 1}', 1, True)
            assert await asyncio.to_thread(thief.publish, telemetry_topic(victim), payload(victim, 99))
            # then one the thief may read: once it has arrived, the victim's (sent first) would have too
            assert await asyncio.to_thread(releases.publish, config_topic(evil), b'{"offer": 2}')
            await asyncio.to_thread(_wait, lambda: len(thief.received()) > 0)
            assert thief.received() == [(config_topic(evil), b'{"offer": 2}')]  # the session's subscription
            assert await cluster.stored() == {}                  # is checked again; nothing published as the victim
        finally:
            for client in (box, thief, releases):
                client.close()
        assert "Subscription Violation" in cluster.log("n1")


async def test_the_stream_keeps_every_message_when_its_leader_is_killed(tmp_path: Path) -> None:
    async with nats_cluster(tmp_path, ["frog-k"]) as cluster:
        leader = await cluster.stream_leader()
        survivor = next(n for n in cluster.names if n != leader)
        box = MqttClient(cluster.mqtt_port(survivor), "frog-k", cluster.secrets["frog-k"], "frog-k")
        assert await asyncio.to_thread(box.connect) == 0
        try:
            for seq in range(20):
                assert await asyncio.to_thread(box.publish, telemetry_topic("frog-k"), payload("frog-k", seq))
            assert await _stored_is(cluster, subject("frog-k", "telemetry"), 20)
            cluster.kill(leader)
            assert await cluster.stream_leader() != leader       # a new leader from the two left
            for seq in range(20, 40):
                assert await asyncio.to_thread(box.publish, telemetry_topic("frog-k"), payload("frog-k", seq))
            assert await _stored_is(cluster, subject("frog-k", "telemetry"), 40)
            await cluster.start_node(leader)                     # back on its store: it catches up
            async with cluster.admin() as js:
                async with asyncio.timeout(30):
                    while await jetstream.replicas_current(js, STREAM) < 3:  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
                assert sorted(await _read_back(js, subject("frog-k", "telemetry"), 40)) == list(range(40))
        finally:
            box.close()
