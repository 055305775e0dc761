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

Coming back to a backlog (issue 28; docs/ingest.md, "Restarting into a backlog"): when the
session is resumed, Mosquitto sends up to Receive Maximum queued messages straight after
the CONNACK, and answers our SUBSCRIBE only after them. So the subscriptions are sent
without waiting for their SUBACK (the session's messages are taken at once), the CONNACK
gets its own generous timeout, and a connection that fails half-way is closed here, never
left open: an abandoned client would keep taking the session's messages into a queue no
one reads, until the next attempt takes the session over and the broker sends them all
again.

`$SYS/broker/...` store counts (where the broker lets this account read them) come in on
the same connection and update `broker_stats` as they arrive; they never reach `get`.

This is the one module that touches aiomqtt's internals (`_client`, `_queue`,
`_disconnected`, `_connected`) and paho's (`_sock_close`); the version range in
pyproject.toml pins what it was written for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.client import ConnectFlags
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cityops.mqtt import MqttTarget
from cityops.settings import IngestSettings, redact_url
from contract.receipts import encode_receipt
from contract.telemetry import STATUS_FILTER, TELEMETRY_FILTER, receipts_topic
from ingest.accept import Receipts
from ingest.errors import BrokerError

log = logging.getLogger("ingest.source")

# what Mosquitto publishes every sys_interval: messages in its store (each queued message once,
# retained ones included), retained messages, and publishes it dropped (queue limits)
SYS_STORED = "$SYS/broker/store/messages/count"
SYS_RETAINED = "$SYS/broker/retained messages/count"
SYS_DROPPED = "$SYS/broker/publish/messages/dropped"
SYS_TOPICS = (SYS_STORED, SYS_RETAINED, SYS_DROPPED)
T = TypeVar("T")


@dataclass
class BrokerStats:
    """The broker's own counts from $SYS (None until it has sent them, or if we may not read them)."""
    stored: int | None = None
    retained: int | None = None
    dropped: int | None = None
    updated: float = 0.0  # monotonic time of the last update

    @property
    def backlog(self) -> int | None:
        """Messages the broker holds for its subscribers: stored minus retained."""
        if self.stored is None:
            return None
        return max(0, self.stored - (self.retained or 0))

    def update(self, topic: str, payload: bytes) -> None:
        try:
            value = int(payload)
        except ValueError:
            return
        if topic == SYS_STORED:
            self.stored = value
        elif topic == SYS_RETAINED:
            self.retained = value
        elif topic == SYS_DROPPED:
            self.dropped = value
        self.updated = time.monotonic()


async def next_in(queue: asyncio.Queue[T], wait_s: float) -> T | None:
    """The queue's next item, or None after `wait_s` seconds without one (both transports' `get`)."""
    try:
        return queue.get_nowait()
    except asyncio.QueueEmpty:
        try:
            return await asyncio.wait_for(queue.get(), wait_s)
        except TimeoutError:
            return None


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
    """One connection to the broker; use `async with`, then `get` and `ack`.

    Entering returns once the broker accepted the connection (CONNACK); the subscriptions
    are on their way then, and `subscribed` says when the broker has confirmed them."""

    def __init__(self, url: str, settings: IngestSettings, generation: int = 0, *,
                 filters: Sequence[str] | None = None, qos: int = 1):
        """`filters`: other topics than the devices' telemetry and status (a LoRaWAN network server's
        events, ingest/lorawan), each required, at `qos`; `subscribed` once the first is confirmed."""
        self.url = url
        self.generation = generation
        self._settings = settings
        self._filters = list(filters) if filters is not None else None
        self._qos = qos
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = settings.session_expiry_s
        properties.ReceiveMaximum = settings.receive_maximum
        self._client = aiomqtt.Client(
            **MqttTarget.from_url(url).client_kwargs(), identifier=settings.client_id,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=properties,
            keepalive=30, timeout=settings.connect_timeout_s)
        self._paho = self._client._client
        self._paho.manual_ack_set(True)
        self._paho.disable_logger()  # paho logs every packet at DEBUG: a cost per message
        self._queue: asyncio.Queue[aiomqtt.Message] = self._client._queue
        self.session_present = False
        self.broker_stats = BrokerStats()
        self.subscribed = asyncio.Event()  # the broker confirmed the telemetry subscription
        self.telemetry_paused = False
        self._failure: str | None = None  # a subscription the broker refused
        self._subscriptions: set[asyncio.Task[None]] = set()
        def on_connect(client: mqtt.Client, userdata: Any, flags: ConnectFlags, reason: ReasonCode,
                       props: Properties | None = None) -> None:
            self.session_present = bool(flags.session_present)
            self._client._on_connect(client, userdata, flags, reason, props)

        def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            topic = message.topic
            if topic.startswith("$SYS/"):  # taken in here: a collector held up by the database still sees them
                self.broker_stats.update(topic, bytes(message.payload))
            else:
                self._client._on_message(client, userdata, message)

        self._paho.on_connect = on_connect
        self._paho.on_message = on_message

    @property
    def telemetry_filter(self) -> str:
        return self._shared(TELEMETRY_FILTER)

    def _shared(self, topic: str) -> str:
        group = self._settings.share_group
        return f"$share/{group}/{topic}" if group else topic

    async def __aenter__(self) -> Self:
        try:
            await self._client.__aenter__()  # the CONNACK, within connect_timeout_s
        except aiomqtt.MqttError as exc:
            self._close_socket()
            raise BrokerError(f"MQTT broker at {redact_url(self.url)}: {exc}") from None
        except BaseException:
            self._close_socket()
            raise
        if self._filters is not None:
            for index, topic in enumerate(self._filters):
                self._subscribe(self._shared(topic), required=True, telemetry=index == 0, qos=self._qos)
        else:
            self._subscribe(self.telemetry_filter, required=True, telemetry=True)
            self._subscribe(STATUS_FILTER, required=True)
        if self._settings.broker_stats:
            for topic in SYS_TOPICS:
                self._subscribe(topic, required=False, qos=0)
        log.info("connected to %s as %s (group %s, %s)", redact_url(self.url), self._settings.client_id,
                 self._settings.share_group, "session resumed" if self.session_present else "new session")
        return self

    def _subscribe(self, topic: str, *, required: bool, telemetry: bool = False, qos: int = 1) -> None:
        """Send a SUBSCRIBE and go on: its SUBACK comes after whatever the broker sends first
        (a resumed session's queued messages), so nothing may wait for it."""
        async def confirm() -> None:
            try:
                codes = await self._client.subscribe(topic, qos=qos, timeout=math.inf)
            except aiomqtt.MqttError as exc:  # the connection ended first: the next one subscribes
                log.debug("subscribe %s: %s", topic, exc)
                return
            refused = [code for code in codes if isinstance(code, ReasonCode) and code.is_failure]
            if refused:
                if required:
                    self._failure = f"the broker refused the subscription {topic}: {refused[0]}"
                else:
                    log.info("no %s from this broker (%s): its backlog is not shown", topic, refused[0])
            elif telemetry:
                self.subscribed.set()

        self._background(confirm())

    def _background(self, call: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(call)
        self._subscriptions.add(task)
        task.add_done_callback(self._subscriptions.discard)

    def pause_telemetry(self) -> None:
        """Unsubscribe from telemetry (the session's queued messages still come): devices' publishes
        then find no subscriber, are answered 0x10, and stay in their spools."""
        if self.telemetry_paused or not self.connected:
            return
        self.telemetry_paused = True
        self.subscribed.clear()

        async def unsubscribe() -> None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.unsubscribe(self.telemetry_filter, timeout=math.inf)

        self._background(unsubscribe())

    def resume_telemetry(self) -> None:
        if self.telemetry_paused and self.connected:
            self.telemetry_paused = False
            self._subscribe(self.telemetry_filter, required=True, telemetry=True)

    @property
    def failure(self) -> str | None:
        """Why this connection cannot serve (a refused subscription), or None."""
        return self._failure

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self._client.__aexit__(exc_type, exc, tb)
        except aiomqtt.MqttError as error:
            log.debug("disconnect: %s", error)
        finally:
            self._close_socket()
            for task in list(self._subscriptions):  # after the socket: a late SUBACK still finds its call
                task.cancel()
        self._retrieve(self._client._disconnected)

    def _close_socket(self) -> None:
        """Close the connection for certain. After a failed connect aiomqtt leaves paho's socket
        open and read: that client would hold the session's in-flight window."""
        with contextlib.suppress(Exception):
            if self._paho.socket() is not None:
                self._paho._sock_close()
        for future in (self._client._disconnected, self._client._connected):
            self._retrieve(future)

    @staticmethod
    def _retrieve(future: asyncio.Future[None]) -> None:
        """Read a finished future's exception, so asyncio does not report it as never retrieved."""
        if future.done() and not future.cancelled() and future.exception() is not None:
            log.info("connection ended: %s", future.exception())

    @property
    def connected(self) -> bool:
        return not self._client._disconnected.done()

    @property
    def waiting(self) -> int:
        """Messages delivered to us and not yet taken by `get`."""
        return self._queue.qsize()

    async def get(self, wait_s: float) -> Received | None:
        """The next message, or None after `wait_s` seconds without one."""
        message = await next_in(self._queue, wait_s)
        if message is None:
            return None
        payload = message.payload  # paho hands over bytes; aiomqtt passes them on as they are
        assert isinstance(payload, bytes | bytearray)
        return Received(message.topic.value, bytes(payload), message.mid, message.qos, self.generation)

    def send_receipts(self, receipts: Receipts) -> int:
        """Tell each device what of its messages is committed or refused (QoS 0: a receipt that
        is lost costs the device a resend, never a reading); returns how many were sent."""
        if not receipts or not self.connected:
            return 0
        for device_id, receipt in receipts.by_device().items():
            self._paho.publish(receipts_topic(device_id), encode_receipt(receipt), qos=0)
        return len(receipts)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Send a message on this connection (a LoRaWAN downlink); False when not connected."""
        if not self.connected:
            return False
        return self._paho.publish(topic, payload, qos=qos).rc == mqtt.MQTT_ERR_SUCCESS

    def ack(self, messages: Sequence[Received]) -> int:
        """Acknowledge committed messages, in order; returns how many acks were sent."""
        sent = 0
        for message in messages:
            if message.qos > 0 and message.generation == self.generation and self.connected:
                self._paho.ack(message.mid, message.qos)
                sent += 1
        return sent
