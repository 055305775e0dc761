"""Ingest's Prometheus metrics, in a registry of its own (one per service instance)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter("cityops_ingest_messages", "MQTT messages received", ["channel"], registry=r)
        self.readings_written = Counter("cityops_ingest_readings_written",
                                        "readings committed as new rows", ["kind"], registry=r)
        self.duplicates = Counter("cityops_ingest_duplicates_dropped",
                                  "readings already stored (replays, redeliveries)", ["kind"], registry=r)
        self.dead_letters = Counter("cityops_ingest_dead_letters",
                                    "messages or readings refused into dead_letters", registry=r)
        self.receipts = Counter("cityops_ingest_receipts_sent",
                                "receipts sent to devices after a commit (one per device per batch)", registry=r)
        self.telemetry_messages = self.messages.labels("telemetry")
        self.status_messages = self.messages.labels("status")
        self.batch_readings = Histogram("cityops_ingest_batch_readings", "readings per committed batch",
                                        buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000), registry=r)
        self.batch_seconds = Histogram("cityops_ingest_batch_seconds", "time to commit a batch",
                                       buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5), registry=r)
        self.rate_limited = Counter("cityops_ingest_rate_limited", "telemetry messages refused by the per-device "
                                    "rate limit (each also a dead letter)", registry=r)
        self.in_flight = Gauge("cityops_ingest_in_flight_messages",
                               "messages in closed batches, not yet committed and acknowledged", registry=r)
        self.retries = Counter("cityops_ingest_database_retries", "batches retried after a database failure",
                               registry=r)
        self.broker_connected = Gauge("cityops_ingest_broker_connected", "1 while connected to the broker",
                                      registry=r)
        self.last_commit = Gauge("cityops_ingest_last_commit_timestamp_seconds",
                                 "Unix time of the last successful commit", registry=r)
        self.up = Gauge("cityops_ingest_up", "1 while the service runs", registry=r)
        # coming back to a backlog (docs/ingest.md): the connection's state, the broker's backlog
        self.subscribed = Gauge("cityops_ingest_subscribed",
                                "1 once the broker confirmed the telemetry subscription of this connection",
                                registry=r)
        self.reconnecting_since = Gauge("cityops_ingest_reconnecting_since_timestamp_seconds",
                                        "Unix time the consumer lost (or had not yet made) its broker connection; "
                                        "0 while connected", registry=r)
        self.connections = Counter("cityops_ingest_connections", "broker connections made, by session state",
                                   ["session"], registry=r)
        self.connect_failures = Counter("cityops_ingest_connect_failures",
                                        "connection attempts that failed", registry=r)
        self.broker_backlog = Gauge("cityops_ingest_broker_backlog_messages",
                                    "messages the broker holds for its subscribers ($SYS store count minus "
                                    "retained); -1 when the broker does not say", registry=r)
        self.broker_dropped = Gauge("cityops_ingest_broker_dropped_messages",
                                    "publishes the broker dropped since it started ($SYS; queue limits); "
                                    "-1 when the broker does not say", registry=r)
        self.telemetry_paused = Gauge("cityops_ingest_telemetry_paused",
                                      "1 while unsubscribed from telemetry because the broker's backlog passed "
                                      "the high-water mark (devices keep their readings)", registry=r)
        self.newest_reading = Gauge("cityops_ingest_newest_reading_timestamp_seconds",
                                    "Unix time of the newest reading this consumer has stored", registry=r)
        self.waiting = Gauge("cityops_ingest_waiting_messages",
                             "messages delivered by the broker and not yet taken into a batch", registry=r)
        self.broker_backlog.set(-1)
        self.broker_dropped.set(-1)
        self._newest = 0.0

    def committed(self, kind_counts: dict[str, tuple[int, int]], dead: int, readings: int,
                  seconds: float, newest: float | None = None) -> None:
        for kind, (new, offered) in kind_counts.items():
            if new:
                self.readings_written.labels(kind).inc(new)
            if offered - new:
                self.duplicates.labels(kind).inc(offered - new)
        if dead:
            self.dead_letters.inc(dead)
        self.batch_readings.observe(readings)
        self.batch_seconds.observe(seconds)
        self.last_commit.set(time.time())
        if newest is not None and newest > self._newest:
            self._newest = newest
            self.newest_reading.set(newest)
