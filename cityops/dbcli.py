"""`cityops db migrate|status`."""

from __future__ import annotations

import argparse
from typing import Any

from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import migrate, status


def register(commands: argparse._SubParsersAction[Any]) -> None:
    db = commands.add_parser("db", help="migrate the database and show its state",
                             description="Database schema and state.")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    actions.add_parser("migrate", help="apply pending migrations and sync TimescaleDB policies"
                       ).set_defaults(handler=run_migrate)
    actions.add_parser("status", help="back end in use, applied and pending migrations"
                       ).set_defaults(handler=run_status)


async def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        report = await migrate(db, settings.storage)
    print(f"database: {redact_url(db.url)}")
    print(f"back end: {report.backend.describe()}")
    if report.nothing_to_do:
        print("nothing to do: the schema is up to date")
        return 0
    for migration in report.applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    for change in report.policy_changes:
        print(f"policy: {change}")
    return 0


async def run_status(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        state = await status(db)
    print(f"database: {redact_url(db.url)}")
    print(f"back end: {state.backend.describe()}")
    if state.backend.timescale_available and not state.backend.is_timescale:
        print("          (TimescaleDB is available on this server but not used by this database)")
    for row in state.applied:
        note = "  CHANGED since applied" if row.version in state.changed else ""
        when = f"{row.applied_at:%Y-%m-%d %H:%M}"
        print(f"applied  {row.version:04d}_{row.name}  [{row.backend}]  {when}{note}")
    for migration in state.pending:
        print(f"pending  {migration.version:04d}_{migration.name}")
    if not state.pending:
        print("up to date" if state.applied else "empty database: run `cityops db migrate`")
    return 0
