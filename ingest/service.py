"""The ingest service: collect messages into batches, commit each batch, then acknowledge.

Two tasks joined by a queue of at most two batches: the collector decodes messages as
they arrive and closes a batch when it holds `batch_readings` readings or is
`flush_interval_s` old; the writer commits batches in order, one transaction each, and
only then sends each device its receipt (contract/receipts.py) and acknowledges the
messages to the broker. While the writer waits for the database (retrying
with backoff), the collector fills up, stops taking messages, and the broker stops
sending once `receive_maximum` messages are unacknowledged. Nothing is acknowledged that
is not committed, so a crash or outage at any point loses nothing.

On stop (SIGTERM): the collector stops taking messages, the batches already collected
are committed and acknowledged, and the connection is closed. Messages delivered but
not taken stay unacknowledged, and the broker delivers them again later.

Where messages come from is a `Source`: MQTT (ingest/source.py, the default) or the NATS
JetStream cluster (ingest/nats_source.py), chosen by `CITYOPS_INGEST__TRANSPORT`
(`source_factory`); the collecting, committing and acknowledging here are the same for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from cityops.errors import StorageError
from cityops.settings import IngestSettings, Settings
from cityops.storage import Database, insert_readings
from cityops.storage.devices import update_device_states
from cityops.storage.readings import insert_dead_letters
from ingest.accept import Decoded, Incoming, Receipts, Verdict, dead_letter, decode, device_ids, judge, status_news
from ingest.errors import BrokerError
from ingest.heartbeat import HEARTBEAT_S, Heartbeat, health_of, interval_s
from ingest.limits import DeviceRate, device_of
from ingest.metrics import IngestMetrics
from ingest.registry import RegistryCache
from ingest.source import BrokerStats, Received, TelemetrySource

log = logging.getLogger("ingest.service")

POLL_S = 0.25  # how often an idle collector looks at the stop flag and the connection
RECONNECT_MAX_S = 30.0
WATCH_S = 1.0  # how often the connection metrics are updated and the backlog checked


class Source(Protocol):
    """One connection to a transport, as the service uses it (ingest/source.py has the details)."""

    session_present: bool
    subscribed: asyncio.Event  # the telemetry subscription (or consumer) is confirmed
    broker_stats: BrokerStats  # the broker's backlog, when it says
    telemetry_paused: bool

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...
    @property
    def failure(self) -> str | None: ...
    @property
    def connected(self) -> bool: ...
    @property
    def waiting(self) -> int: ...
    async def get(self, wait_s: float) -> Received | None: ...
    def send_receipts(self, receipts: Receipts) -> int: ...
    def ack(self, messages: Sequence[Received]) -> int: ...
    def pause_telemetry(self) -> None: ...
    def resume_telemetry(self) -> None: ...


SourceFactory = Callable[[int], Source]  # the connection's generation -> a source to enter


def source_factory(settings: Settings) -> SourceFactory:
    """The transport `CITYOPS_INGEST__TRANSPORT` names: MQTT at CITYOPS_MQTT_URL, or NATS."""
    if settings.ingest.transport == "nats":
        from ingest.nats_source import nats_sources  # nats-py only for the consumers that use it

        return nats_sources(settings.nats, settings.ingest)
    return mqtt_sources(settings.resolved_mqtt_url(), settings.ingest)


def mqtt_sources(mqtt_url: str, settings: IngestSettings) -> SourceFactory:
    def open_source(generation: int) -> Source:
        return TelemetrySource(mqtt_url, settings, generation)
    return open_source


@dataclass
class Batch:
    messages: list[Received] = field(default_factory=list)
    telemetry: list[Decoded] = field(default_factory=list)
    statuses: list[Received] = field(default_factory=list)
    readings: int = 0
    bytes: int = 0
    opened: float = 0.0  # monotonic time of the first message


@dataclass(frozen=True)
class CommitResult:
    new: int
    duplicates: int
    dead_letters: int
    receipts: Receipts = field(default_factory=Receipts)


class IngestService:
    def __init__(self, db: Database, mqtt_url: str, settings: IngestSettings,
                 metrics: IngestMetrics | None = None, source: SourceFactory | None = None):
        """`source`: where messages come from (`source_factory`); default MQTT at `mqtt_url`."""
        self.db = db
        self.mqtt_url = mqtt_url
        self._open_source = source or mqtt_sources(mqtt_url, settings)
        self.settings = settings
        self.metrics = metrics or IngestMetrics()
        self.registry = RegistryCache(db, settings.registry_refresh_s)
        self._max_ahead = timedelta(seconds=settings.max_clock_ahead_s)
        self._generation = 0
        self._rate = DeviceRate(settings.device_messages_per_s, settings.device_burst)
        self.connected = asyncio.Event()  # set while a connection is up (tests and probes wait on it)

    # --- the outer loop: connect, pump, reconnect -------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, reconnecting with backoff when the broker goes away."""
        self.metrics.up.set(1)
        self.metrics.reconnecting_since.set(time.time())
        heartbeat = Heartbeat(self.db, self.settings.client_id, self.settings.share_group,
                              self.settings.stall_after_s)
        beating = asyncio.create_task(self._heartbeat_loop(heartbeat))
        delay = 0.5
        try:
            while not stop.is_set():
                self._generation += 1
                try:
                    async with self._open_source(self._generation) as source:
                        self.metrics.broker_connected.set(1)
                        self.metrics.reconnecting_since.set(0)
                        self.metrics.connections.labels("resumed" if source.session_present else "new").inc()
                        self.connected.set()
                        delay = 0.5
                        await self._pump(source, stop)
                except BrokerError as exc:
                    self.metrics.connect_failures.inc()
                    log.warning("%s; retrying in %.1f s", exc, delay)
                finally:
                    if self.connected.is_set():  # it was up: reconnecting from now (else: since before)
                        self.metrics.reconnecting_since.set(time.time())
                    self.connected.clear()
                    self.metrics.broker_connected.set(0)
                    self.metrics.subscribed.set(0)
                    self.metrics.telemetry_paused.set(0)
                if not stop.is_set():
                    await _sleep_unless(stop, delay)
                    delay = min(delay * 2, RECONNECT_MAX_S)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            self.metrics.up.set(0)
            if stop.is_set():  # a clean stop says so: the alert is for consumers that died or hang
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(heartbeat.beat(health_of(self.metrics, self.settings.stall_after_s),
                                                          "stopped"), HEARTBEAT_S)

    async def _heartbeat_loop(self, heartbeat: Heartbeat) -> None:
        """This consumer's health into ingest_heartbeats, connected or not (alerts/ingest_stall.py)."""
        every = interval_s(self.settings.stall_after_s)
        while True:
            with contextlib.suppress(TimeoutError):  # a database that hangs: the row ages, the alert sees it
                await asyncio.wait_for(heartbeat.beat(health_of(self.metrics, self.settings.stall_after_s)),
                                       every * 2)
            await asyncio.sleep(every)

    async def _pump(self, source: Source, stop: asyncio.Event) -> None:
        batches: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=2)
        writer = asyncio.create_task(self._write_loop(source, batches, stop))
        watcher = asyncio.create_task(self._watch_loop(source))  # on its own: the collector may be held up
        try:
            await self._collect_loop(source, batches, stop)
        finally:
            watcher.cancel()
            if not writer.done():
                await batches.put(None)
            await writer
        if source.failure is not None:
            raise BrokerError(source.failure)
        if not source.connected and not stop.is_set():
            log.warning("lost the broker connection; reconnecting")

    async def _watch_loop(self, source: Source) -> None:
        while True:
            self._watch(source)
            await asyncio.sleep(WATCH_S)

    def _watch(self, source: Source) -> None:
        """Once a second: the connection's state and the broker's backlog into the metrics, and
        push-back on devices when the backlog passes the high-water mark (docs/scaling.md)."""
        self.metrics.subscribed.set(1 if source.subscribed.is_set() else 0)
        self.metrics.waiting.set(source.waiting)
        stats = source.broker_stats
        backlog = stats.backlog
        if backlog is not None:
            self.metrics.broker_backlog.set(backlog)
        if stats.dropped is not None:
            self.metrics.broker_dropped.set(stats.dropped)
        high, low = self.settings.backlog_high_water, self.settings.backlog_low_water
        if backlog is None or not high or self.settings.transport == "nats":  # the stream keeps NATS's on disk
            return
        if backlog > high and not source.telemetry_paused:
            log.warning("the broker holds %d messages (high-water mark %d): unsubscribing from telemetry, "
                        "devices keep their readings until the backlog is below %d", backlog, high, low)
            source.pause_telemetry()
        elif backlog < low and source.telemetry_paused:
            log.warning("the broker's backlog is down to %d: subscribing to telemetry again", backlog)
            source.resume_telemetry()
        self.metrics.telemetry_paused.set(1 if source.telemetry_paused else 0)

    # --- collector --------------------------------------------------------------------

    def _new_batch(self) -> Batch:
        return Batch()

    async def _collect_loop(self, source: Source, batches: asyncio.Queue[Batch | None],
                            stop: asyncio.Event) -> None:
        batch = self._new_batch()
        limit, interval = self.settings.batch_readings, self.settings.flush_interval_s
        max_bytes = self.settings.batch_bytes
        while not stop.is_set() and source.connected and source.failure is None:
            wait = POLL_S if not batch.messages else max(0.0, batch.opened + interval - time.monotonic())
            message = await source.get(min(wait, POLL_S))
            if message is not None:
                self._add(batch, message)
            due = batch.messages and (batch.readings >= limit or batch.bytes >= max_bytes
                                      or time.monotonic() >= batch.opened + interval)
            if due:
                await self._hand_over(batch, batches)
                batch = self._new_batch()
        if batch.messages:
            await self._hand_over(batch, batches)

    async def _hand_over(self, batch: Batch, batches: asyncio.Queue[Batch | None]) -> None:
        """Count a closed batch in (per batch, not per message: this is the hot path) and queue it."""
        self.metrics.telemetry_messages.inc(len(batch.messages) - len(batch.statuses))
        if batch.statuses:
            self.metrics.status_messages.inc(len(batch.statuses))
        self.metrics.in_flight.inc(len(batch.messages))
        await batches.put(batch)

    def _add(self, batch: Batch, message: Received) -> None:
        if not batch.messages:
            batch.opened = time.monotonic()
        batch.messages.append(message)
        batch.bytes += len(message.payload)
        self._take(batch, message)

    def _take(self, batch: Batch, message: Received) -> None:
        """Read one message into the batch as it arrives (the LoRaWAN integration reads its own kind)."""
        if message.is_telemetry:
            incoming = Incoming(message.topic, message.payload, datetime.now(UTC))
            if self._rate.allow(device_of(message.topic), time.monotonic()):
                decoded = decode(incoming)
            else:  # refused whole, undecoded; the dead letter keeps at most MAX_STORED_PAYLOAD of it
                decoded = Decoded(incoming, None, self._rate.problem(), retry_later=True)
                self.metrics.rate_limited.inc()
            batch.telemetry.append(decoded)
            batch.readings += decoded.reading_count
        else:
            batch.statuses.append(message)

    # --- writer -----------------------------------------------------------------------

    async def _write_loop(self, source: Source, batches: asyncio.Queue[Batch | None],
                          stop: asyncio.Event) -> None:
        """Commit batches in order; acknowledge each after its commit. Receipts gather for up to
        `receipt_interval_s` before they go (a device's receipts of several batches in one message:
        under load most devices appear in every batch), so they never wait longer than that."""
        pending, due = Receipts(), None
        while True:
            wait = None if due is None else max(0.0, due - time.monotonic())
            try:
                batch = await asyncio.wait_for(batches.get(), wait)
            except TimeoutError:
                batch = Batch()  # no batch before the receipts were due: an empty one, to send them
            if batch is None:
                break
            if batch.messages:
                receipts = await self._commit_with_retry(batch, stop)
                if receipts is not None:
                    pending.merge(receipts)
                    source.ack(batch.messages)
                self.metrics.in_flight.dec(len(batch.messages))
            if pending and (due is None):
                due = time.monotonic() + self.settings.receipt_interval_s
            if due is not None and time.monotonic() >= due:
                self.metrics.receipts.inc(source.send_receipts(pending))
                pending, due = Receipts(), None
        if pending:
            self.metrics.receipts.inc(source.send_receipts(pending))

    async def _commit_with_retry(self, batch: Batch, stop: asyncio.Event) -> Receipts | None:
        """Commit, retrying transient database failures with backoff until it works or we stop;
        the devices' receipts once committed, None if we stopped first."""
        delay = 0.2
        while True:
            try:
                try:
                    return (await self.commit(batch)).receipts
                except StorageError as exc:
                    if exc.transient:
                        raise
                    return await self._commit_one_by_one(batch, exc)
            except StorageError as exc:
                self.metrics.retries.inc()
                if stop.is_set():
                    log.warning("stopping with a batch not committed (%s); the broker will redeliver it", exc)
                    return None
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.settings.retry_max_s)

    async def commit(self, batch: Batch) -> CommitResult:
        """Write one batch in one transaction: readings, dead letters, device state."""
        started = time.perf_counter()
        registry = await self.registry.lookup(device_ids(batch.telemetry))
        verdict = judge(batch.telemetry, registry, self._max_ahead)
        for status in batch.statuses:
            news = status_news(status.topic, status.payload, registry)
            if news is not None:
                verdict.note(news)
        counts = await self._write(verdict)
        result = CommitResult(new=sum(new for new, _ in counts.values()),
                              duplicates=sum(offered - new for new, offered in counts.values()),
                              dead_letters=len(verdict.dead_letters), receipts=verdict.receipts)
        self.metrics.committed(counts, result.dead_letters, verdict.reading_count,
                               time.perf_counter() - started, _newest(verdict))
        return result

    async def _write(self, verdict: Verdict) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        async with self.db.transaction() as conn:
            for kind, rows in verdict.rows.items():
                if rows:
                    counts[kind] = (await insert_readings(conn, kind, rows), len(rows))
            await insert_dead_letters(conn, verdict.dead_letters)
            await update_device_states(conn, list(verdict.states.values()))
        return counts

    async def _commit_one_by_one(self, batch: Batch, cause: StorageError) -> Receipts:
        """A batch the database refuses as data (not an outage): find the message at fault.

        Each message is committed alone; one the database still refuses goes to the
        dead letters with the database's reason, so it never blocks the others."""
        log.error("database refused a batch (%s); committing its %d messages one by one",
                  cause, len(batch.messages))
        receipts = Receipts()
        for decoded in batch.telemetry:
            single = Batch(telemetry=[decoded], readings=decoded.reading_count)
            try:
                receipts.merge((await self.commit(single)).receipts)
            except StorageError as exc:
                if exc.transient:
                    raise
                incoming = decoded.incoming
                device_id = decoded.batch.device_id if decoded.batch else None
                await insert_dead_letters(self.db, [dead_letter(incoming.topic, incoming.payload,
                                                                f"database refused: {exc}", device_id,
                                                                incoming.received_at)])
                self.metrics.dead_letters.inc()
                if device_id is not None:
                    receipts.refuse(device_id, decoded.receipt_seq, f"database refused: {exc}")
        if batch.statuses:
            await self.commit(Batch(statuses=batch.statuses))
        return receipts


def _newest(verdict: Verdict) -> float | None:
    """Unix time of the newest reading in a committed verdict (rows are (device_id, ts, ...))."""
    stamps = [max(row[1] for row in rows) for rows in verdict.rows.values() if rows]
    return max(stamp.timestamp() for stamp in stamps) if stamps else None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)

