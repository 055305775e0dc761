"""One device's MQTT connection (paho-mqtt 2.x), run in a thread of its own.

- per-device username/password, optional TLS with a CA file and a client certificate;
- Last Will `offline` (retained) on the status topic, `online` (retained) on connect,
  `offline` published on a clean stop;
- the retained config topic and the receipts topic subscribed on every connect, before
  anything is published (the broker takes packets in order, so no receipt is missed);
- one broker or several (the nodes of a cluster, sharing credentials and TLS settings):
  when a connection attempt fails or a live connection is lost, the next attempt goes to
  the next broker in the list, round robin. The exponential backoff with jitter applies
  per full cycle through the list, not per broker, so a dead node costs one attempt, not
  minutes; a broker that refuses who we are (credentials, not authorised) ends the cycle
  and the wait is longer, so a device with a revoked password does not hammer anyone;
- MQTT 5 by default, so that a PUBACK can say "no matching subscribers" (readings then
  stay spooled); or MQTT 3.1.1 (NATS's MQTT listener in nats-server 2.9 speaks nothing
  else): no reason codes on a PUBACK, no properties, a clean session each connection, the
  same Last Will and subscriptions. With 3.1.1 only receipts say the platform has a
  reading (firmware/config.py refuses 3.1.1 without them);
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
from typing import Any, Literal, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from contract.errors import ConfigError
from contract.telemetry import NO_MATCHING_SUBSCRIBERS, OFFLINE, ONLINE, config_topic, receipts_topic, status_topic
from contract.urls import MqttTarget, redact_url
from firmware.errors import BrokerRefused
from firmware.faults import FaultLog

log = logging.getLogger("firmware.link")

MqttProtocol = Literal["5", "3.1.1"]
PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}
# CONNACK reasons that say who we are (or how we speak) is wrong: every broker of the list
# shares the credentials, so the others would say the same; the cycle ends and the wait is
# the longer one. Any other refusal (server unavailable, busy, quota...) moves on to the next
# broker at once. MQTT 3.1.1 return codes reach us converted to these (paho's ReasonCode).
WHO_WE_ARE_REFUSALS = {
    0x84,  # unsupported protocol version (an MQTT 5 agent against a 3.1.1-only broker such as NATS 2.9)
    0x85,  # client identifier not valid
    0x86,  # bad user name or password
    0x87,  # not authorized
    0x8A,  # banned
    0x8C,  # bad authentication method
}


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
    # further brokers (host, port) after host:port, the nodes of one cluster: tried in turn,
    # round robin, with the same credentials and TLS settings
    more_brokers: tuple[tuple[str, int], ...] = ()
    protocol: MqttProtocol = "5"

    @property
    def brokers(self) -> tuple[tuple[str, int], ...]:
        """Every broker, in the order they are tried."""
        return ((self.host, self.port), *self.more_brokers)

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

    @classmethod
    def from_urls(cls, urls: list[str] | tuple[str, ...], **overrides: Any) -> MqttOptions:
        """Several brokers (a cluster's nodes), tried in this order, round robin. They must all
        be mqtts:// or all mqtt:// (a mix would let whoever blocks the TLS nodes read the
        password on the others) and carry the same user:pass@, if any; keyword overrides win."""
        if not urls:
            raise ConfigError("no MQTT broker URL given", hint="give at least one mqtts://host:8883")
        targets = [MqttTarget.from_url(url) for url in urls]
        first = targets[0]
        for url, target in zip(urls[1:], targets[1:], strict=True):
            if target.tls != first.tls:
                raise ConfigError(f"{redact_url(url)!r} and {redact_url(urls[0])!r} mix mqtt:// and mqtts://",
                                  hint="every broker of the list shares the TLS settings: all mqtts:// (or all "
                                       "mqtt:// on a trusted network)")
            if (target.username, target.password) != (first.username, first.password):
                raise ConfigError(f"{redact_url(url)!r} and {redact_url(urls[0])!r} carry different credentials",
                                  hint="every broker of the list shares the credentials: give them once, as "
                                       "username and password_file")
        addresses = [(t.hostname, t.port) for t in targets]
        repeated = sorted({f"{h}:{p}" for h, p in addresses if addresses.count((h, p)) > 1})
        if repeated:
            raise ConfigError(f"broker {', '.join(repeated)} is listed more than once",
                              hint="list each broker once")
        return cls.from_url(urls[0], more_brokers=tuple(addresses[1:]), **overrides)


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
    cycles_failed: int = 0  # full passes through the broker list without a connection


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
        self._refused_who_we_are = False  # this attempt was refused for our credentials or protocol
        self._target: tuple[str, int] = options.brokers[0]  # the broker of the current attempt
        self._broker: tuple[str, int] | None = None  # the broker we are connected to
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{device_id}", daemon=True)
        self._status = status_topic(device_id)
        self._config = config_topic(device_id)
        self._receipts = receipts_topic(device_id)

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
    def broker(self) -> tuple[str, int] | None:
        """(host, port) of the broker this link is connected to; None while down."""
        return self._broker

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

    def _fault_key(self, broker: tuple[str, int]) -> str:
        """One fault per broker, so that failing over does not log a change of cause every attempt."""
        if len(self.options.brokers) == 1:
            return f"{self.device_id} mqtt"
        return f"{self.device_id} mqtt {broker[0]}:{broker[1]}"

    def _run(self) -> None:
        """Connect, serve, and after each connection or failed attempt move to the next broker.

        A cycle is one pass through the list; the backoff (exponential, jittered) is waited
        after a cycle in which no broker took us, and its exponent counts such cycles. Within a
        cycle a failed attempt goes on to the next broker at once. After a live connection ends,
        the short first step of the backoff (0.5-1 s, jittered so that a node's devices do not
        all land on the next one at the same instant), then the next broker. With one broker
        this is the backoff as it always was."""
        brokers = self.options.brokers
        index = 0
        attempt = 0  # cycles without a connection, the backoff's exponent
        tried = 0  # failed attempts in this cycle
        while not self._stopping.is_set():
            self._target = brokers[index]
            self._refused_who_we_are = False
            self._generation += 1
            client = self._new_client(self._generation)
            was_up = self._session(client)
            if self._stopping.is_set():
                break
            index = (index + 1) % len(brokers)
            if was_up:
                attempt = tried = 0
                delay = self._backoff.delay(0, self._rng)
            else:
                tried += 1
                if tried < len(brokers) and not self._refused_who_we_are:
                    log.debug("%s: %s:%d failed; trying %s:%d now", self.device_id, *self._target, *brokers[index])
                    continue
                attempt, tried = attempt + 1, 0
                self.counters.cycles_failed += 1
                delay = self._backoff.delay(attempt, self._rng, refused=self._refused is not None)
            if was_up and len(brokers) > 1:
                log.info("%s: left %s:%d; next attempt in %.1f s, to %s:%d", self.device_id, *self._target, delay,
                         *brokers[index])
            else:
                log.debug("%s: next attempt in %.1f s, to %s:%d", self.device_id, delay, *brokers[index])
            self._stopping.wait(delay)

    def _new_client(self, generation: int) -> mqtt.Client:
        opts = self.options
        # MQTT 3.1.1: a clean session (paho's default for it), as MQTT 5 starts clean here too
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device_id,
                             protocol=PROTOCOLS[opts.protocol])
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
        # MQTT 3.1.1 PUBACKs carry no reason: paho gives a ReasonCode of 0 (success), so every
        # one is `acked`; only MQTT 5 can say 0x10, "no matching subscribers"
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
        host, port = self._target
        self.counters.connect_attempts += 1
        up = False
        try:
            try:
                client.connect(host, port, keepalive=opts.keepalive_s)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._faults.report(self._fault_key(self._target), f"cannot reach the broker at {host}:{port}: {exc}")
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
                self._broker = None
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
        host, port = target = self._target
        if reason.is_failure:
            self.counters.refusals += 1
            self._refused_who_we_are = reason.value in WHO_WE_ARE_REFUSALS
            self._refused = BrokerRefused(f"broker {host}:{port} refused {self.device_id}: {reason}",
                                          reason=str(reason))
            hint = ""
            if reason.value == 0x84 and self.options.protocol == "5":
                hint = "; a broker that speaks only MQTT 3.1.1 (NATS) needs [mqtt] protocol = \"3.1.1\""
            self._faults.report(self._fault_key(target), f"broker refused the connection: {reason} "
                                                         f"(username {self.options.username!r}){hint}")
            return
        self._refused = None
        self._faults.clear(self._fault_key(target))
        self.counters.connections += 1
        client.subscribe([(self._config, 1), (self._receipts, 0)])
        client.publish(self._status, ONLINE, qos=1, retain=True)
        with self._lock:
            self._client = client
            self._broker = target
        brokers = self.options.brokers
        if len(brokers) > 1:
            log.info("%s: connected to %s:%d (broker %d of %d, MQTT %s)", self.device_id, host, port,
                     brokers.index(target) + 1, len(brokers), self.options.protocol)
        else:
            log.info("%s: connected to %s:%d", self.device_id, host, port)
        self._post(self._listener.link_up, generation)

    def _on_disconnect(self, generation: int, reason: Any) -> None:
        with self._lock:
            self._client = None
            self._broker = None
        if not self._stopping.is_set() and self._refused is None:
            host, port = self._target
            self._faults.report(self._fault_key(self._target), f"connection to {host}:{port} lost: {reason}")
        self._post(self._listener.link_down, generation)


