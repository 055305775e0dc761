"""One device's MQTT connection (paho-mqtt 2.x), run in a thread of its own.

- per-device username/password, optional TLS with a CA file and a client certificate;
- Last Will `offline` (retained) on the status topic, `online` (retained) on connect,
  `offline` published on a clean stop;
- the retained config topic and the receipts topic subscribed on every connect, before
  anything is published (the broker takes packets in order, so no receipt is missed);
- reconnect with exponential backoff and jitter (longer after the broker refused us,
  so a device with a revoked password does not hammer the broker);
- MQTT 5, so that a PUBACK can say "no matching subscribers" (readings then stay spooled);
- a fresh paho Client for every connection, so nothing from an old connection (queued
  messages, message ids) leaks into the next: after a reconnect the agent resends from
  its spool whatever had not been acknowledged.

Events go to the agent's asyncio loop through `LinkListener`, via call_soon_threadsafe,
tagged with the connection's generation so a late ack from an old connection is ignored.
`publish()` may be called from the event loop thread: paho queues the packet and our
thread writes it (a no-op socket-write hook keeps paho from writing on the caller thread).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from contract.telemetry import NO_MATCHING_SUBSCRIBERS, OFFLINE, ONLINE, config_topic, receipts_topic, status_topic
from contract.urls import MqttTarget
from firmware.errors import BrokerRefused
from firmware.faults import FaultLog

log = logging.getLogger("firmware.link")


@dataclass(frozen=True)
class MqttOptions:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = 60
    connect_timeout_s: float = 10.0
    # Read again before every connection, so a rotated secret written here is picked up
    # without a restart (the spool holds the readings meanwhile); `password` is the fallback.
    password_file: Path | None = None

    def current_password(self) -> str | None:
        if self.password_file is not None:
            try:
                return self.password_file.read_text().strip() or self.password
            except OSError as exc:
                log.warning("cannot read the MQTT password file %s (%s); using the last known password",
                            self.password_file, exc.strerror)
        return self.password

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttOptions:
        """mqtt://user:pass@host:1883 or mqtts://host:8883; keyword overrides win."""
        target = MqttTarget.from_url(url)
        values: dict[str, Any] = {"host": target.hostname, "port": target.port, "username": target.username,
                                  "password": target.password, "tls": target.tls}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 300.0
    refused_min_s: float = 60.0  # after a refusal (bad credentials) wait at least this

    def delay(self, attempt: int, rng: random.Random, refused: bool = False) -> float:
        """Exponential, capped, with 'equal jitter' (half fixed, half random) so that a
        thousand devices coming back after an outage spread out."""
        base = min(self.max_s, self.initial_s * 2 ** min(attempt, 30))
        if refused:
            base = max(base, self.refused_min_s)
        return base * rng.uniform(0.5, 1.0)


class LinkListener(Protocol):
    def link_up(self, generation: int) -> None: ...
    def link_down(self, generation: int) -> None: ...
    def acked(self, generation: int, mid: int) -> None: ...
    def undelivered(self, generation: int, mid: int) -> None: ...
    def config_received(self, payload: bytes) -> None: ...
    def receipt_received(self, payload: bytes) -> None: ...


@dataclass
class LinkCounters:
    connect_attempts: int = 0
    connections: int = 0
    refusals: int = 0


class MqttLink:
    def __init__(self, device_id: str, options: MqttOptions, listener: LinkListener,
                 loop: asyncio.AbstractEventLoop, *, backoff: Backoff | None = None, seed: int | None = None):
        self.device_id = device_id
        self.options = options
        self.counters = LinkCounters()
        self._listener = listener
        self._loop = loop
        self._backoff = backoff or Backoff()
        self._rng = random.Random(seed)
        self._faults = FaultLog(log)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None  # set while connected (CONNACK accepted)
        self._generation = 0
        self._refused: BrokerRefused | None = None
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{device_id}", daemon=True)
        self._status = status_topic(device_id)
        self._config = config_topic(device_id)
        self._receipts = receipts_topic(device_id)
        self._fault_key = f"{device_id} mqtt"

    # --- called from the event loop -------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def publish(self, topic: str, payload: bytes) -> tuple[int, int] | None:
        """Queue a QoS 1 publish; (generation, mid), or None when not connected."""
        with self._lock:  # a consistent (client, generation); paho is called outside our lock
            client, generation = self._client, self._generation
        if client is None:
            return None
        info = client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:  # QUEUE_SIZE: not queued (paho 2.2, a message id in use)
            return None
        return generation, info.mid

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def refused(self) -> BrokerRefused | None:
        return self._refused

    async def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    # --- the link's own thread -------------------------------------------------------

    def _post(self, method: Any, *args: Any) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(method, *args)

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            self._generation += 1
            client = self._new_client(self._generation)
            was_up = self._session(client)
            if self._stopping.is_set():
                break
            attempt = 0 if was_up else attempt + 1
            delay = self._backoff.delay(attempt, self._rng, refused=self._refused is not None)
            log.debug("%s: reconnecting in %.1f s", self.device_id, delay)
            self._stopping.wait(delay)

    def _new_client(self, generation: int) -> mqtt.Client:
        opts = self.options
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device_id,
                             protocol=mqtt.MQTTv5)
        client.connect_timeout = opts.connect_timeout_s
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        if opts.username is not None:
            client.username_pw_set(opts.username, opts.current_password())
        if opts.tls:
            client.tls_set(ca_certs=str(opts.ca_file) if opts.ca_file else None,
                           certfile=str(opts.cert_file) if opts.cert_file else None,
                           keyfile=str(opts.key_file) if opts.key_file else None,
                           cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(self._status, OFFLINE, qos=1, retain=True)
        client.on_socket_register_write = lambda _client, _userdata, _sock: None
        client.on_connect = lambda c, _u, _f, rc, _p: self._on_connect(c, generation, rc)
        client.on_disconnect = lambda _c, _u, _f, rc, _p: self._on_disconnect(generation, rc)
        client.on_publish = lambda _c, _u, mid, rc, _p: self._post(
            self._listener.undelivered if rc.value == NO_MATCHING_SUBSCRIBERS else self._listener.acked,
            generation, mid)
        client.on_message = lambda _c, _u, msg: self._post(
            self._listener.receipt_received if msg.topic == self._receipts else self._listener.config_received,
            bytes(msg.payload))
        return client

    def _session(self, client: mqtt.Client) -> bool:
        """Connect and serve one connection until it ends; True if the broker accepted us."""
        opts = self.options
        self.counters.connect_attempts += 1
        up = False
        try:
            try:
                client.connect(opts.host, opts.port, keepalive=opts.keepalive_s)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._faults.report(self._fault_key, f"cannot reach the broker at {opts.host}:{opts.port}: {exc}")
                return False
            while not self._stopping.is_set():
                if client.loop(timeout=0.2) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                up = up or self._client is client
            if self._stopping.is_set() and self._client is client:
                self._say_goodbye(client)
        finally:
            with self._lock:
                self._client = None
            client._reset_sockets()  # close the socket and wake-up pair now, not at GC
        return up

    def _say_goodbye(self, client: mqtt.Client) -> None:
        info = client.publish(self._status, OFFLINE, qos=1, retain=True)
        for _ in range(10):
            if info.is_published():
                break
            client.loop(timeout=0.1)
        client.disconnect()
        client.loop(timeout=0.1)

    def _on_connect(self, client: mqtt.Client, generation: int, reason: Any) -> None:
        if reason.is_failure:
            self.counters.refusals += 1
            self._refused = BrokerRefused(f"broker {self.options.host}:{self.options.port} refused "
                                          f"{self.device_id}: {reason}", reason=str(reason))
            self._faults.report(self._fault_key, f"broker refused the connection: {reason} "
                                        f"(username {self.options.username!r})")
            return
        self._refused = None
        self._faults.clear(self._fault_key)
        self.counters.connections += 1
        client.subscribe([(self._config, 1), (self._receipts, 0)])
        client.publish(self._status, ONLINE, qos=1, retain=True)
        with self._lock:
            self._client = client
        log.info("%s: connected to %s:%d", self.device_id, self.options.host, self.options.port)
        self._post(self._listener.link_up, generation)

    def _on_disconnect(self, generation: int, reason: Any) -> None:
        with self._lock:
            self._client = None
        if not self._stopping.is_set() and self._refused is None:
            self._faults.report(self._fault_key, f"connection lost: {reason}")
        self._post(self._listener.link_down, generation)


