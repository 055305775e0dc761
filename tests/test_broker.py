"""The broker side: our Mosquitto fixture, the broker check, the embedded brokers."""

import asyncio
import shutil

import aiomqtt
import pytest

from cityops.embedded.broker import EmbeddedBroker
from cityops.embedded.process import free_port
from cityops.errors import BrokerUnavailable
from cityops.mqtt import MqttTarget, check_broker
from tests.conftest import BrokerInstance, skip_or_fail


async def roundtrip(url: str, topic: str, payload: bytes) -> bytes:
    target = MqttTarget.from_url(url)
    kwargs = target.client_kwargs()
    async with aiomqtt.Client(**kwargs) as sub, aiomqtt.Client(**kwargs) as pub:
        await sub.subscribe(topic, qos=1)
        await pub.publish(topic, payload, qos=1)
        async with asyncio.timeout(10):
            async for message in sub.messages:
                return bytes(message.payload)  # type: ignore[arg-type]
    raise AssertionError("no message")


async def test_the_session_mosquitto_carries_qos1_messages(mosquitto: BrokerInstance,
                                                           topic_prefix: str) -> None:
    assert await roundtrip(mosquitto.url, f"{topic_prefix}/telemetry", b'{"v":1}') == b'{"v":1}'


async def test_check_broker_passes_on_a_live_broker_and_explains_a_dead_one(
        mosquitto: BrokerInstance) -> None:
    await check_broker(mosquitto.url)
    with pytest.raises(BrokerUnavailable, match="cannot connect to the MQTT broker at mqtt://u:\\*\\*\\*@"):
        await check_broker(f"mqtt://u:pw@127.0.0.1:{free_port()}", timeout_s=2)


def test_mqtt_urls_carry_credentials_and_tls() -> None:
    target = MqttTarget.from_url("mqtts://ingest:p%40ss@broker.example")
    assert (target.hostname, target.port, target.username, target.password, target.tls) == \
        ("broker.example", 8883, "ingest", "p@ss", True)
    assert "tls_context" in target.client_kwargs()


async def test_the_amqtt_fallback_broker_carries_messages(tmp_path, topic_prefix: str) -> None:
    async with EmbeddedBroker(tmp_path, free_port(), "amqtt") as broker:
        assert await roundtrip(broker.url, f"{topic_prefix}/x", b"hello") == b"hello"


async def test_embedded_mosquitto_keeps_queued_messages_across_a_restart(tmp_path, topic_prefix: str) -> None:
    """What ingest relies on: a persistent session's backlog survives the broker restarting."""
    if shutil.which("mosquitto") is None:
        skip_or_fail("no `mosquitto` binary on PATH (apt-get install mosquitto)")
    broker = EmbeddedBroker(tmp_path, free_port(), "mosquitto")
    topic = f"{topic_prefix}/telemetry"
    client_id = f"ingest-{topic_prefix.rsplit('/', 1)[-1]}"
    target = MqttTarget.from_url(broker.url)
    async with broker:
        async with aiomqtt.Client(**target.client_kwargs(), identifier=client_id, clean_session=False) as sub:
            await sub.subscribe(topic, qos=1)
        async with aiomqtt.Client(**target.client_kwargs()) as pub:
            for i in range(3):
                await pub.publish(topic, f"reading {i}".encode(), qos=1)
    async with broker:  # restarted: the queue must come back from the persistence file
        received = []
        async with aiomqtt.Client(**target.client_kwargs(), identifier=client_id, clean_session=False) as sub:
            async with asyncio.timeout(10):
                async for message in sub.messages:
                    received.append(bytes(message.payload))  # type: ignore[arg-type]
                    if len(received) == 3:
                        break
    assert received == [b"reading 0", b"reading 1", b"reading 2"]
