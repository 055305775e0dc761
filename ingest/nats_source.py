"""Telemetry from the NATS JetStream cluster, acknowledged only after it is committed (issue 26).

The same role as ingest/source.py's TelemetrySource for IngestService (the `Source` protocol in
ingest/service.py), over the cluster of cityops/nats_cluster: devices publish MQTT to any node,
the telemetry stream keeps every message on three nodes, and ingest reads it through one
durable **pull** consumer that every ingest process shares (docs/ingest.md, "NATS").

How "nothing lost" works here:
- The consumer (explicit acks, AckWait, MaxAckPending) is made by an admin (`cityops nats
  stream`); the ingest user may only read its info, pull, and acknowledge, so this module
  binds to it and never creates one. A missing consumer is an error that says so.
- Pulling: one pull request at a time to `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`,
  waiting up to PULL_WAIT_S for up to PULL_BATCH messages, which are handed to `get` as they
  arrive (subject `cityops.v1.devices.X.telemetry` as the MQTT topic `cityops/v1/devices/X/
  telemetry`, so ingest/accept.py reads them unchanged). The requests are sized so that this
  process never holds more than `receive_maximum` messages delivered and not acknowledged:
  that bound is the backpressure, as MQTT's Receive Maximum is on Mosquitto. While the
  database is down the service stops taking, the bound is reached, and pulling stops; the
  stream keeps the backlog on disk.
- A message is acknowledged only after its commit (the service calls `ack`), receipts first
  (core NATS, `cityops.v1.devices.<id>.receipts`, contract/receipts.py). Messages this process
  holds longer than a third of AckWait (a commit retrying while the database is down) are
  marked in progress (`+WPI`), which restarts their AckWait: they are not handed to another
  process while this one lives and works on them. A process that dies (or hangs) stops doing
  that, and after AckWait the consumer delivers its messages to the others; what it had
  committed but not acknowledged is then written again as a no-op (the unique key).
- A clean stop gives back (`-NAK`) what it held and had not committed, so the other
  processes get it at once instead of after AckWait.
- nats-py moves to another node when one fails (the connection's URLs are every node); the
  consumer and the stream fail over inside the cluster (3 replicas). Pull requests lost in a
  failover are simply asked again after their wait.
- Device status (`cityops.v1.devices.*.status`, online/offline news) comes over core NATS:
  at most once, as the retained MQTT status is (a device says it again when it reconnects).

The backlog metric is the consumer's `num_pending + num_ack_pending`: what the stream holds
for ingest, all processes together (read every INFO_EVERY_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from cityops.nats_cluster.config import INGEST_INBOX, SUBJECT_ROOT, every, subject
from cityops.settings import IngestSettings, NatsSettings, redact_url
from contract.receipts import encode_receipt
from ingest.accept import Receipts
from ingest.errors import BrokerError
from ingest.source import BrokerStats, Received, next_in

log = logging.getLogger("ingest.nats_source")

PULL_BATCH = 1_000        # messages asked for in one pull request (fewer when the bound is near)
PULL_WAIT_S = 1.0         # a pull request waits this long on the server for messages (`expires`)
PULL_MARGIN_S = 1.0       # ... and here a little longer before it is taken as lost (a failover)
INFO_EVERY_S = 1.0        # the consumer's backlog read this often
STATUS_WAITING_MAX = 10_000  # status news waiting to be taken; more is dropped (at most once, like MQTT QoS 0)
RECONNECT_WAIT_S = 1      # nats-py: between attempts on one node (another node is tried at once)
RECONNECT_ATTEMPTS = 10   # ... per node, then the connection closes and the service reconnects with backoff
OUTBOUND_BYTES = 8 * 1024 * 1024  # acks and receipts buffered while nats-py reconnects
DRAIN_S = 5.0             # on exit: the queued receipts and acks get this long to leave
NO_CONSUMER_HINT = "an admin makes it with `cityops nats stream` (ingest's user may not)"

Outgoing = tuple[Literal["receipts"], list[tuple[str, bytes]]] | tuple[Literal["ack", "nak"], list[Msg]]


@dataclass(slots=True)
class _Held:
    """A message delivered to this process and not acknowledged yet."""

    msg: Msg
    touched: float  # monotonic: delivered, or last marked in progress


@dataclass(slots=True)
class _Pull:
    """The pull request in flight: its own reply subject, so its end (a status) is recognised."""

    reply: str
    remaining: int
    done: asyncio.Event = field(default_factory=asyncio.Event)
    status: str | None = None
    description: str = ""


def topic_of(subject_name: str) -> str:
    """`cityops.v1.devices.X.telemetry` -> `cityops/v1/devices/X/telemetry` (device ids hold no `.`)."""
    return subject_name.replace(".", "/")


def _tls(settings: NatsSettings) -> ssl.SSLContext | None:
    if settings.ca_file is None and not any(url.startswith("tls://") for url in settings.urls):
        return None
    return ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)


class NatsSource:
    """One connection to the cluster, bound to the durable pull consumer; use `async with`,
    then `get`, `send_receipts` and `ack`, as TelemetrySource."""

    def __init__(self, nats_settings: NatsSettings, settings: IngestSettings, generation: int = 0):
        self._conf = nats_settings
        self._settings = settings
        self.generation = generation
        self.session_present = False  # the durable consumer had delivered before: ingest resumes it
        self.broker_stats = BrokerStats()
        self.subscribed = asyncio.Event()  # bound to the consumer, and the connection is up
        self.telemetry_paused = False  # never: the stream keeps a backlog on disk, nothing to push back on
        self.ack_wait_s = 30.0  # the consumer's, read when binding
        self.statuses_dropped = 0
        self.progress_marks = 0  # +WPI sent: messages kept from redelivery while their commit waits
        self._nc = NATS()
        self._js: JetStreamContext | None = None
        self._open = False
        self._failure: str | None = None
        self._last_error: str | None = None
        self._queue: asyncio.Queue[Received] = asyncio.Queue()  # bounded by receive_maximum through the pulls
        self._held: dict[int, _Held] = {}
        self._mids = itertools.count(1)
        self._room = asyncio.Event()
        self._up = asyncio.Event()
        self._pull: _Pull | None = None
        self._statuses_waiting = 0
        self._outbox: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox = ""

    @property
    def where(self) -> str:
        return ", ".join(redact_url(url) for url in self._conf.urls)

    # --- connecting -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        conf = self._conf
        if not conf.urls:
            raise BrokerError("no NATS servers: set CITYOPS_NATS__URLS to every node's client URL")
        try:
            async with asyncio.timeout(self._settings.connect_timeout_s):
                await self._nc.connect(
                    servers=list(conf.urls), user=conf.user,
                    password=conf.password.get_secret_value() if conf.password else None,
                    name=self._settings.client_id, tls=_tls(conf), inbox_prefix=INGEST_INBOX,
                    connect_timeout=max(1, int(min(5.0, self._settings.connect_timeout_s))), allow_reconnect=True,
                    reconnect_time_wait=RECONNECT_WAIT_S, max_reconnect_attempts=RECONNECT_ATTEMPTS,
                    pending_size=OUTBOUND_BYTES, error_cb=self._on_error, disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected)
                self._js = self._nc.jetstream(timeout=min(5.0, self._settings.connect_timeout_s))
                info = await self._js.consumer_info(conf.stream, conf.consumer)
        except nats.js.errors.NotFoundError:
            await self._close()
            raise BrokerError(f"NATS at {self.where}: the stream {conf.stream} has no consumer {conf.consumer}; "
                              + NO_CONSUMER_HINT) from None
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            await self._close()
            why = self._last_error or str(exc) or type(exc).__name__
            raise BrokerError(f"NATS at {self.where} as {conf.user}: {why}") from None
        except BaseException:
            await self._close()
            raise
        if info.config.deliver_subject:
            await self._close()
            raise BrokerError(f"NATS: the consumer {conf.consumer} is a push consumer; ingest pulls: "
                              + NO_CONSUMER_HINT)
        self.ack_wait_s = float(info.config.ack_wait or self.ack_wait_s)
        self.session_present = bool(info.delivered and info.delivered.consumer_seq)
        self._note_backlog(info.num_pending, info.num_ack_pending)
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_delivery)
        await self._nc.subscribe(every("status"), cb=self._on_status)
        self._open = True
        self._up.set()
        self._room.set()
        self.subscribed.set()
        self._tasks = [asyncio.create_task(self._pull_loop()), asyncio.create_task(self._keep_loop()),
                       asyncio.create_task(self._send_loop())]
        log.info("connected to NATS %s as %s (%s), consumer %s of %s (AckWait %.0f s, %s)", self.where, conf.user,
                 self._settings.client_id, conf.consumer, conf.stream, self.ack_wait_s,
                 "resumed" if self.session_present else "new")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._open = False
        self.subscribed.clear()
        sender = self._tasks.pop() if self._tasks else None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        leftovers = [held.msg for held in self._held.values()]  # delivered, never committed
        self._held.clear()
        if leftovers:
            self._outbox.put_nowait(("nak", leftovers))
        if sender is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), DRAIN_S)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        if self._nc.is_connected:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await self._nc.flush(timeout=2)
        await self._close()

    async def _close(self) -> None:
        with contextlib.suppress(Exception):  # never connected, or half way: nothing to keep
            await self._nc.close()

    async def _on_error(self, exc: Exception) -> None:
        text = str(exc) or type(exc).__name__
        if text != self._last_error:  # once per kind of trouble, not per reconnect attempt
            log.warning("NATS: %s", text)
        self._last_error = text

    async def _on_disconnected(self) -> None:
        self._up.clear()
        self.subscribed.clear()
        if self._open:
            log.warning("NATS: disconnected from a node; nats-py moves to another")

    async def _on_reconnected(self) -> None:
        self._up.set()
        if self._open:
            self.subscribed.set()
            log.info("NATS: reconnected to %s", self._nc.connected_url.netloc if self._nc.connected_url else "?")

    @property
    def failure(self) -> str | None:
        """Why this connection cannot serve (its consumer was deleted), or None."""
        return self._failure

    @property
    def connected(self) -> bool:
        """Open, and nats-py has not given up (it may be moving to another node just now)."""
        return self._open and not self._nc.is_closed

    @property
    def waiting(self) -> int:
        """Messages delivered to us and not yet taken by `get`."""
        return self._queue.qsize()

    @property
    def held(self) -> int:
        """Messages delivered to this process and not acknowledged: at most about receive_maximum."""
        return len(self._held)

    # --- pulling ---------------------------------------------------------------------

    async def _pull_loop(self) -> None:
        api = f"$JS.API.CONSUMER.MSG.NEXT.{self._conf.stream}.{self._conf.consumer}"
        bound = self._settings.receive_maximum
        for number in itertools.count(1):
            while (room := bound - len(self._held)) <= 0 or not self._nc.is_connected:
                if room <= 0:
                    self._room.clear()
                    await self._room.wait()
                else:
                    await self._up.wait()
            pull = _Pull(f"{self._inbox}.{number}", min(room, PULL_BATCH))
            self._pull = pull
            request = {"batch": pull.remaining, "expires": int(PULL_WAIT_S * 1e9)}
            try:
                await self._nc.publish(api, json.dumps(request).encode(), reply=pull.reply)
            except nats.errors.Error as exc:  # closed, or the buffer full while reconnecting
                log.debug("pull request: %s", exc)
                await asyncio.sleep(RECONNECT_WAIT_S)
                continue
            with contextlib.suppress(TimeoutError):  # no end seen: lost in a failover; ask again
                await asyncio.wait_for(pull.done.wait(), PULL_WAIT_S + PULL_MARGIN_S)
            if pull.status in (None, "404", "408"):  # filled, no messages, or expired: the usual ends
                continue
            if pull.status == "409" and ("Deleted" in pull.description or "push" in pull.description):
                self._failure = f"NATS: the consumer {self._conf.consumer}: {pull.description}; {NO_CONSUMER_HINT}"
                return
            log.info("pull request answered %s %s", pull.status, pull.description)  # e.g. MaxAckPending reached
            await asyncio.sleep(PULL_WAIT_S / 4)

    async def _on_delivery(self, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get("Status")
        pull = self._pull
        if status is not None or not msg.reply:  # a status ends the pull request it answers
            if pull is not None and msg.subject == pull.reply:
                pull.status, pull.description = status, headers.get("Description", "")
                pull.done.set()
            return
        if pull is not None:
            pull.remaining -= 1
            if pull.remaining <= 0:
                pull.done.set()
        mid = next(self._mids)
        self._held[mid] = _Held(msg, time.monotonic())
        self._queue.put_nowait(Received(topic_of(msg.subject), msg.data, mid, 1, self.generation))

    async def _on_status(self, msg: Msg) -> None:
        if not msg.subject.startswith(SUBJECT_ROOT + "."):
            return
        if self._statuses_waiting >= STATUS_WAITING_MAX:
            if not self.statuses_dropped:
                log.warning("status news dropped: %d wait to be taken", self._statuses_waiting)
            self.statuses_dropped += 1
            return
        self._statuses_waiting += 1
        self._queue.put_nowait(Received(topic_of(msg.subject), msg.data, 0, 0, self.generation))

    async def get(self, wait_s: float) -> Received | None:
        """The next message, or None after `wait_s` seconds without one."""
        message = await next_in(self._queue, wait_s)
        if message is None:
            return None
        if message.qos == 0:
            self._statuses_waiting -= 1
        return message

    # --- keeping: in progress, and the backlog ----------------------------------------

    async def _keep_loop(self) -> None:
        """Every INFO_EVERY_S: the consumer's backlog; messages held for a third of AckWait marked
        in progress, so a commit that waits for the database does not lose them to another process."""
        every_s = min(INFO_EVERY_S, self.ack_wait_s / 3)
        while True:
            await asyncio.sleep(every_s)
            if not self._nc.is_connected:
                continue
            now = time.monotonic()
            due = [held for held in self._held.values() if now - held.touched >= self.ack_wait_s / 3]
            for held in due:
                held.touched = now
                with contextlib.suppress(nats.errors.Error):
                    await held.msg.in_progress()
                    self.progress_marks += 1
            await self._read_backlog(timeout_s=every_s)

    async def _read_backlog(self, timeout_s: float) -> None:
        assert self._js is not None
        try:
            info = await self._js.consumer_info(self._conf.stream, self._conf.consumer, timeout=timeout_s)
        except nats.js.errors.NotFoundError:
            self._failure = f"NATS: the consumer {self._conf.consumer} is gone; {NO_CONSUMER_HINT}"
            return
        except (nats.errors.Error, TimeoutError) as exc:  # an election, a node going: ask again next time
            log.debug("consumer info: %s", exc)
            return
        self._note_backlog(info.num_pending, info.num_ack_pending)

    def _note_backlog(self, pending: int | None, ack_pending: int | None) -> None:
        self.broker_stats.stored = (pending or 0) + (ack_pending or 0)
        self.broker_stats.retained = 0
        self.broker_stats.updated = time.monotonic()

    # --- after the commit: receipts, then acks ------------------------------------------

    def send_receipts(self, receipts: Receipts) -> int:
        """Queue each device's receipt (core NATS, at most once: a lost receipt costs the device a
        resend, never a reading); they leave before the acks queued after them."""
        if not receipts or not self.connected:
            return 0
        self._outbox.put_nowait(("receipts", [(subject(device_id, "receipts"), encode_receipt(receipt))
                                              for device_id, receipt in receipts.by_device().items()]))
        return len(receipts)

    def ack(self, messages: Sequence[Received]) -> int:
        """Acknowledge committed messages, in order; returns how many acks were queued."""
        msgs = []
        for message in messages:
            if message.qos > 0 and message.generation == self.generation:
                held = self._held.pop(message.mid, None)
                if held is not None:
                    msgs.append(held.msg)
        if msgs:
            self._room.set()
            if self.connected:
                self._outbox.put_nowait(("ack", msgs))
        return len(msgs) if self.connected else 0

    async def _send_loop(self) -> None:
        """The one writer of receipts, acks and naks, in the order they were queued."""
        while True:
            outgoing = await self._outbox.get()
            try:
                if outgoing[0] == "receipts":
                    for subject_name, payload in outgoing[1]:
                        await self._nc.publish(subject_name, payload)
                elif outgoing[0] == "ack":
                    for msg in outgoing[1]:
                        await msg.ack()
                else:
                    for msg in outgoing[1]:
                        await msg.nak()
            except nats.errors.Error as exc:  # closed or buffer full: a receipt is sent again, a message redelivered
                log.info("NATS: %s not sent (%s)", outgoing[0], exc)
            finally:
                self._outbox.task_done()

    def pause_telemetry(self) -> None:
        """Nothing to do: the stream holds the backlog on disk and ingest pulls only what fits."""

    def resume_telemetry(self) -> None:
        """Nothing to do (above)."""


def nats_sources(nats_settings: NatsSettings, settings: IngestSettings) -> Callable[[int], NatsSource]:
    """The service's source factory for the NATS transport: one NatsSource per connection."""
    def open_source(generation: int) -> NatsSource:
        return NatsSource(nats_settings, settings, generation)
    return open_source
