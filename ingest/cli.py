"""`cityops ingest`: run the consumer, or `--check` a running one."""

from __future__ import annotations

import argparse
import asyncio
import time
import urllib.request
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from cityops.errors import ConfigError
from cityops.periodic import stop_event_on_signals
from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import Database, status
from ingest.health import judge, metric_values
from ingest.metrics import IngestMetrics
from ingest.service import IngestService, source_factory


def register(commands: argparse._SubParsersAction[Any]) -> None:
    ingest = commands.add_parser(
        "ingest", help="run the ingest service: MQTT telemetry into the database, exactly once",
        description="Consume device telemetry from the broker (shared subscription, persistent "
                    "session) or, with CITYOPS_INGEST__TRANSPORT=nats, the NATS JetStream cluster "
                    "(durable pull consumer), and commit it to the database; acknowledge only what is "
                    "committed.")
    ingest.add_argument("--check", action="store_true",
                        help="probe a running consumer through its metrics endpoint; exit 0 if healthy")
    ingest.set_defaults(handler=run_ingest)


async def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    if args.check:
        return await check(settings)
    if settings.ingest.transport == "nats" and not settings.nats.urls:
        raise ConfigError("CITYOPS_INGEST__TRANSPORT=nats but no NATS servers",
                          hint="set CITYOPS_NATS__URLS to every node's client URL, and CITYOPS_NATS__PASSWORD")
    stop = stop_event_on_signals()
    metrics = IngestMetrics()
    async with database_for(settings) as db:
        await require_migrated(db)
        server = None
        if settings.ingest.metrics_port:
            server, _ = start_http_server(settings.ingest.metrics_port, settings.ingest.metrics_host,
                                          registry=metrics.registry)
        print(f"ingest: {_source_name(settings)} -> {redact_url(db.url)} "
              f"(client {settings.ingest.client_id}); metrics on :{settings.ingest.metrics_port}", flush=True)
        try:
            await IngestService(db, settings.resolved_mqtt_url(), settings.ingest, metrics,
                                source_factory(settings)).run(stop)
        finally:
            if server is not None:
                server.shutdown()
    return 0


async def require_migrated(db: Database) -> None:
    """A consumer writes only to a database with every migration (ConfigError otherwise)."""
    state = await status(db)
    if state.pending:
        raise ConfigError(f"the database is missing {len(state.pending)} migrations",
                          hint="run `cityops db migrate` first")


def _source_name(settings: Settings) -> str:
    if settings.ingest.transport == "nats":
        urls = ", ".join(redact_url(url) for url in settings.nats.urls)
        return f"NATS {urls} (stream {settings.nats.stream}, consumer {settings.nats.consumer})"
    return f"{redact_url(settings.resolved_mqtt_url())} (group {settings.ingest.share_group})"


async def check(settings: Settings) -> int:
    """Healthy: the consumer runs, is connected, and is not stalled (messages waiting, here or at the
    broker, and no commit for `stall_after_s`). Prints the state either way, one line."""
    url = f"http://{settings.ingest.metrics_host}:{settings.ingest.metrics_port}/metrics"
    try:
        text = await asyncio.to_thread(_fetch, url)
    except OSError as exc:
        print(f"UNHEALTHY: no ingest metrics at {url} ({exc})")
        return 1
    values = metric_values((sample.name, sample.value)
                           for family in text_string_to_metric_families(text) for sample in family.samples)
    health = judge(values, time.time(), settings.ingest.stall_after_s)
    print(("UNHEALTHY: " + "; ".join(health.problems) + " | " if health.problems else "OK: ") + health.state)
    return 1 if health.problems else 0


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()
