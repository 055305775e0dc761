"""`cityops dashboards export|push|check`: the Grafana boards as code.

    cityops dashboards export [--out DIR]        boards + provisioning files (default deploy/grafana)
    cityops dashboards push --url URL --token T  data sources, folder and boards onto a running Grafana
    cityops dashboards check [--hours H]         run every panel's SQL against the database
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityops.services import database_for
from cityops.settings import Settings, redact_url
from dashboards.boards import all_boards
from dashboards.check import run_boards
from dashboards.errors import GrafanaError
from dashboards.export import DEFAULT_OUT, export
from dashboards.model import MapView
from dashboards.push import GrafanaPusher, postgres_datasource, prometheus_datasource


def register(commands: argparse._SubParsersAction[Any]) -> None:
    boards = commands.add_parser("dashboards", help="export, push or check the Grafana boards",
                                 description="Grafana boards built in Python (dashboards/boards/).")
    actions = boards.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)

    out = actions.add_parser("export", help="write the boards' JSON and Grafana's provisioning files",
                             description="Write <out>/dashboards/*.json and <out>/provisioning/*/cityops.yaml.")
    out.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder (default {DEFAULT_OUT})")
    out.set_defaults(handler=run_export)

    push = actions.add_parser("push", help="create or update the data sources and boards on a running Grafana",
                              description="Upload through Grafana's HTTP API (grafana-client). Idempotent.")
    push.add_argument("--url", required=True, help="Grafana's URL, e.g. https://grafana.example.org")
    push.add_argument("--token", help="a service-account token (Editor or Admin); default $GRAFANA_TOKEN")
    push.add_argument("--db-url", help="postgresql:// URL Grafana should query with, ideally a read-only role "
                                       "(default: CITYOPS_DATABASE_URL)")
    push.add_argument("--prometheus-url", help="also create the Prometheus data source (ingest metrics)")
    push.add_argument("--plain-postgres", action="store_true",
                      help="the database has no TimescaleDB: $__timeGroup must not use time_bucket()")
    push.set_defaults(handler=run_push)

    check = actions.add_parser("check", help="run every panel's SQL against the database; exit 1 on an error",
                               description="Expand Grafana's macros and variables (All) and run each panel's "
                                           "query read-only; print the rows each returned.")
    check.add_argument("--hours", type=float, default=24.0, help="the time range: this many hours to now")
    check.set_defaults(handler=run_check)


def map_view(settings: Settings) -> MapView:
    return MapView.from_area_wkt(settings.devices.area_wkt)


async def run_export(args: argparse.Namespace, settings: Settings) -> int:
    result = export(args.out, map_view(settings))
    for path in result.files:
        print(f"wrote {path}")
    return 0


async def run_push(args: argparse.Namespace, settings: Settings) -> int:
    token = args.token or os.environ.get("GRAFANA_TOKEN")
    if not token:
        raise GrafanaError("no token: pass --token or set GRAFANA_TOKEN",
                           hint="create a service account in Grafana (Administration > Service accounts)")
    db_url = args.db_url or settings.resolved_database_url()
    datasources = [postgres_datasource(db_url, timescaledb=not args.plain_postgres)]
    if args.prometheus_url:
        datasources.append(prometheus_datasource(args.prometheus_url))
    pusher = GrafanaPusher(args.url, token)
    result = await asyncio.to_thread(pusher.push, all_boards(map_view(settings)), datasources)
    print(f"data source queries {redact_url(db_url)}")
    for line in result.datasources:
        print(f"data source {line}")
    print(f"folder {result.folder}")
    for url in result.boards:
        print(f"board {url}")
    return 0


async def run_check(args: argparse.Namespace, settings: Settings) -> int:
    time_to = datetime.now(UTC)
    time_from = time_to - timedelta(hours=args.hours)
    async with database_for(settings) as db:
        runs = await run_boards(db, all_boards(map_view(settings)), time_from, time_to)
    for run in runs:
        state = ("MISSING TABLE" if run.missing_table else "ERROR" if run.error
                 else f"SKIPPED: {run.skipped}" if run.skipped else f"{run.rows} rows")
        print(f"{run.board:18} {run.panel[:60]:60} {run.ref_id} {state}")
        if run.error:
            print(f"    {run.error}")
    failed = [r for r in runs if r.error]
    empty = sum(1 for r in runs if r.rows == 0 and not r.error and not r.skipped)
    print(f"{len(runs)} queries, {len(failed)} failed, {empty} empty, {sum(1 for r in runs if r.skipped)} skipped")
    return 1 if failed else 0
