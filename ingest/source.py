"""Telemetry from the broker, acknowledged only after it is committed.

How "nothing lost" works here:
- The consumer connects with MQTT 5, a fixed client id, clean start off and a session
  expiry, so the broker keeps its subscriptions and queues messages while it is away.
- Telemetry is a shared subscription ($share/<group>/...): consumers in one group split
  the messages; the status topic is an ordinary one (retained states arrive on subscribe).
- Mosquitto 2.0 restores a persistent session's plain subscriptions after a broker
  restart but not its shared ones: until ingest reconnects and subscribes again, a
  device's publish finds no subscriber. MQTT 5 tells the device so (PUBACK reason 0x10,
  "no matching subscribers") and the agent keeps such readings to send again, so nothing
  is lost; a single consumer can also run without a share group (plain subscription).
- aiomqtt 2.x has no public manual-ack API, so this adapter switches the paho client
  underneath it (`client._client`) to manual acknowledgements. A QoS 1 message gets its
  PUBACK only when `ack` is called, which the service does after the commit. Until then
  the broker counts it as in flight and redelivers it after a disconnect or crash;
  the database's unique key makes the redelivery a no-op.
- MQTT 5's Receive Maximum bounds how many unacknowledged messages the broker sends,
  so a slow or stopped database stops the flow at the broker: that is the backpressure.
- PUBACKs go out in the order messages arrived (the service commits batches in order),
  as MQTT requires. Acks for messages of an earlier connection are dropped: the broker
  resends those, and the second commit is a no-op.

This is the one module that touches aiomqtt's internals (`_client`, `_queue`,
`_disconnected`); the version range in pyproject.toml pins what it was written for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityops.mqtt import MqttTarget
from cityops.settings import IngestSettings, redact_url
from cityops.telemetry import STATUS_FILTER, TELEMETRY_FILTER
from ingest.errors import BrokerError

log = logging.getLogger("ingest.source")


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection delivered it

    @property
    def is_telemetry(self) -> bool:
        return self.topic.endswith("/telemetry")


class TelemetrySource:
    """One connection to the broker; use `async with`, then `get` and `ack`."""

    def __init__(self, url: str, settings: IngestSettings, generation: int = 0):
        self.url = url
        self.generation = generation
        self._settings = settings
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = settings.session_expiry_s
        properties.ReceiveMaximum = settings.receive_maximum
        self._client = aiomqtt.Client(
            **MqttTarget.from_url(url).client_kwargs(), identifier=settings.client_id,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=properties,
            keepalive=30, timeout=10)
        self._paho = self._client._client
        self._paho.manual_ack_set(True)
        self._paho.disable_logger()  # paho logs every packet at DEBUG: a cost per message
        self._queue: asyncio.Queue[aiomqtt.Message] = self._client._queue

    async def __aenter__(self) -> Self:
        try:
            await self._client.__aenter__()
            group = self._settings.share_group
            await self._client.subscribe(f"$share/{group}/{TELEMETRY_FILTER}" if group else TELEMETRY_FILTER,
                                         qos=1)
            await self._client.subscribe(STATUS_FILTER, qos=1)
        except aiomqtt.MqttError as exc:
            raise BrokerError(f"MQTT broker at {redact_url(self.url)}: {exc}") from None
        log.info("connected to %s as %s (group %s)", redact_url(self.url), self._settings.client_id,
                 self._settings.share_group)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self._client.__aexit__(exc_type, exc, tb)
        except aiomqtt.MqttError as error:
            log.debug("disconnect: %s", error)
        lost = self._client._disconnected
        if lost.done() and not lost.cancelled() and lost.exception() is not None:
            log.info("connection ended: %s", lost.exception())  # read, so asyncio does not warn

    @property
    def connected(self) -> bool:
        return not self._client._disconnected.done()

    @property
    def waiting(self) -> int:
        """Messages delivered to us and not yet taken by `get`."""
        return self._queue.qsize()

    async def get(self, wait_s: float) -> Received | None:
        """The next message, or None after `wait_s` seconds without one."""
        try:
            message = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            try:
                message = await asyncio.wait_for(self._queue.get(), wait_s)
            except TimeoutError:
                return None
        payload = message.payload  # paho hands over bytes; aiomqtt passes them on as they are
        assert isinstance(payload, bytes | bytearray)
        return Received(message.topic.value, bytes(payload), message.mid, message.qos, self.generation)

    def ack(self, messages: Sequence[Received]) -> int:
        """Acknowledge committed messages, in order; returns how many acks were sent."""
        sent = 0
        for message in messages:
            if message.qos > 0 and message.generation == self.generation and self.connected:
                self._paho.ack(message.mid, message.qos)
                sent += 1
        return sent
