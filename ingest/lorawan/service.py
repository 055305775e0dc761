"""One network server's MQTT integration into the readings tables, exactly once.

`LorawanService` is the ingest service (ingest/service.py: batches, one transaction each,
acknowledged only after the commit, reconnect with backoff, heartbeat) with a network
server's events as the messages: the source subscribes to the server's topics
(lorawan.events.topic_filters) under a persistent session, and a batch's commit is
`ingest.lorawan.accept.judge` with the devices, uplink log and mappings it reads.

ChirpStack's integration publishes at the QoS its `[integration.mqtt] qos` says: at 1, the
broker queues uplinks while we are away and redelivers what we had not acknowledged. The
Things Stack's MQTT server is QoS 0 only: what arrives while we are disconnected is not
kept for us (docs/lorawan.md, "Gaps": its Storage Integration fills them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cityops.errors import StorageError
from cityops.settings import IngestSettings, LorawanSettings, NetworkServer
from cityops.storage import Database
from cityops.storage.database import DB_ERRORS, Connection, translate_query_error
from cityops.storage.devices import lock_devices
from cityops.storage.readings import insert_dead_letters
from ingest.accept import Receipts, dead_letter
from ingest.limits import device_of
from ingest.lorawan import store
from ingest.lorawan.accept import LorawanDevice, Message, Plan, judge, read
from ingest.lorawan.downlinks import send_interval_changes
from ingest.metrics import IngestMetrics
from ingest.service import Batch, CommitResult, IngestService, Source, SourceFactory
from ingest.source import Received, TelemetrySource
from lorawan.codecs import FieldMapping
from lorawan.events import Uplink, topic_filters
from lorawan.frames import Session

log = logging.getLogger("ingest.lorawan")


@dataclass
class LorawanBatch(Batch):
    events: list[Message] = field(default_factory=list)


def lorawan_sources(server: NetworkServer, settings: IngestSettings) -> SourceFactory:
    filters = topic_filters(server.kind, server.application, server.tenant)
    qos = 1 if server.kind == "chirpstack" else 0  # The Things Stack's MQTT server offers QoS 0 only

    def open_source(generation: int) -> Source:
        return TelemetrySource(server.connection_url(), settings, generation, filters=filters, qos=qos)
    return open_source


def source_settings(server: NetworkServer, ingest: IngestSettings) -> IngestSettings:
    """Ingest's batching and session settings, with this server's identity (no $SYS, no push-back)."""
    return ingest.model_copy(update={"client_id": server.mqtt_client_id, "share_group": server.share_group,
                                     "broker_stats": False, "backlog_high_water": 0})


class LorawanService(IngestService):
    def __init__(self, db: Database, server: NetworkServer, settings: LorawanSettings, ingest: IngestSettings,
                 metrics: IngestMetrics | None = None, source: SourceFactory | None = None):
        own = source_settings(server, ingest)
        super().__init__(db, server.connection_url(), own, metrics, source or lorawan_sources(server, own))
        self.server = server
        self.lorawan = settings
        self.lorawan_registry = store.LorawanRegistry(db, own.registry_refresh_s)
        self._known_sessions: dict[str, Session] = {}  # what this process last wrote, by device id
        self._mappings: dict[str, FieldMapping] = {}
        self._mappings_at = float("-inf")
        self._pruned_at = float("-inf")

    def _new_batch(self) -> Batch:
        return LorawanBatch()

    def _take(self, batch: Batch, message: Received) -> None:
        assert isinstance(batch, LorawanBatch)
        arrived = datetime.now(UTC)
        if self._rate.allow(device_of(message.topic), time.monotonic()):
            event = read(self.server.kind, message.topic, message.payload, arrived)
        else:
            event = Message(message.topic, message.payload, arrived, None, self._rate.problem())
            self.metrics.rate_limited.inc()
        batch.events.append(event)
        batch.readings += 1

    async def _pump(self, source: Source, stop: asyncio.Event) -> None:
        """The batches as for native ingest, and beside them the downlinks and the log's pruning."""
        chores = asyncio.create_task(self._chores(source))
        try:
            await super()._pump(source, stop)
        finally:
            chores.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chores

    async def _chores(self, source: Source) -> None:
        while True:
            try:
                if self.server.downlinks and isinstance(source, TelemetrySource):
                    await send_interval_changes(self.db, self.server, source.publish)
                if time.monotonic() - self._pruned_at > 3600:
                    pruned = await store.prune_uplinks(self.db, self.lorawan.keep_uplinks_for)
                    self._pruned_at = time.monotonic()
                    if pruned:
                        log.info("pruned %d uplinks older than %s from the log", pruned, self.lorawan.keep_uplinks_for)
            except StorageError as exc:
                log.warning("downlinks: %s; trying again in %.0f s", exc, self.lorawan.downlink_check_s)
            await asyncio.sleep(self.lorawan.downlink_check_s)

    async def commit(self, batch: Batch) -> CommitResult:
        """One transaction: the batch's devices locked, their sessions read from the log, the uplinks
        judged against the log, all written."""
        assert isinstance(batch, LorawanBatch)
        started = time.perf_counter()
        mappings = await self._current_mappings()
        window = self.lorawan.duplicate_window
        registry = await self.lorawan_registry.lookup(m.dev_eui for m in batch.events if m.dev_eui)
        devices = {eui: registry[eui] for m in batch.events if (eui := m.dev_eui) is not None and eui in registry}
        ids = sorted({d.device_id for d in devices.values()})
        uplinks = [m.event for m in batch.events if isinstance(m.event, Uplink) and m.event.dev_eui in devices]
        try:
            async with self.db.transaction() as conn:
                sessions = {}
                if ids:
                    await lock_devices(conn, ids)
                    sessions = await self._sessions(conn, devices.values(), window)
                seen = []
                if uplinks:
                    times = [u.received_at for u in uplinks]
                    frames = sorted({(devices[u.dev_eui].device_id, u.f_cnt) for u in uplinks})
                    seen = await store.recent_uplinks(conn, frames, min(times) - window, max(times) + window)
                plan = judge(batch.events, server=self.server.name, devices=devices, sessions=sessions, seen=seen,
                             mappings=mappings, window=window, max_clock_ahead=self._max_ahead)
                counts = await store.write(conn, plan, self.server.name, devices)
        except DB_ERRORS as exc:
            raise translate_query_error(exc) from exc
        self.lorawan_registry.learnt(plan.devices.values())
        self._known_sessions.update(plan.sessions)
        self._log(plan)
        new = sum(n for n, _ in counts.values())
        self.metrics.committed(counts, len(plan.refused), plan.reading_count, time.perf_counter() - started,
                               _newest(plan))
        return CommitResult(new=new, duplicates=plan.duplicates + sum(o - n for n, o in counts.values()),
                            dead_letters=len(plan.refused))

    async def _sessions(self, conn: Connection, devices: Iterable[LorawanDevice], window: timedelta
                        ) -> dict[str, Session]:
        """The devices' sessions: from the log, except those this process wrote last and no one else
        can have written since (a device pinned to this network server, and no share group splitting
        the server's stream). A session only counts gaps: a stale one miscounts, never loses a reading
        or stores a duplicate (those are judged against the log itself, under the devices' lock)."""
        sole = not self.server.share_group
        known = {d.device_id: self._known_sessions[d.device_id] for d in devices
                 if sole and d.network_server == self.server.name and d.device_id in self._known_sessions}
        missing = sorted({d.device_id for d in devices} - known.keys())
        if missing:
            known.update(await store.sessions(conn, missing, window))
        return known

    def _log(self, plan: Plan) -> None:
        for device_id, why in plan.sessions_started:
            log.info("%s: new LoRaWAN session (%s)", device_id, why)
        if plan.duplicates:
            log.debug("%d duplicate uplinks ignored", plan.duplicates)

    async def _current_mappings(self) -> dict[str, FieldMapping]:
        if time.monotonic() - self._mappings_at > self.settings.registry_refresh_s:
            self._mappings = await store.load_mappings(self.db)
            self._mappings_at = time.monotonic()
        return self._mappings

    async def _commit_one_by_one(self, batch: Batch, cause: StorageError) -> Receipts:
        """A batch the database refuses as data: each message alone; one still refused is a dead letter."""
        assert isinstance(batch, LorawanBatch)
        log.error("database refused a batch (%s); committing its %d messages one by one", cause, len(batch.events))
        for message in batch.events:
            try:
                await self.commit(LorawanBatch(events=[message]))
            except StorageError as exc:
                if exc.transient:
                    raise
                await insert_dead_letters(self.db, [dead_letter(message.topic, message.payload,
                                                                f"database refused: {exc}", None, message.arrived)])
                self.metrics.dead_letters.inc()
        return Receipts()  # a network server's devices get no receipts


def _newest(plan: Plan) -> float | None:
    stamps = [row[1] for rows in plan.rows.values() for row in rows]
    return max(stamps).timestamp() if stamps else None


async def run_servers(db: Database, servers: list[NetworkServer], settings: LorawanSettings, ingest: IngestSettings,
                      stop: asyncio.Event, metrics: list[IngestMetrics]) -> None:
    """One service per network server, side by side, until `stop`."""
    await asyncio.gather(*(LorawanService(db, server, settings, ingest, m).run(stop)
                           for server, m in zip(servers, metrics, strict=True)))

