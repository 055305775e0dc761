"""`cityops db migrate|status|roles`."""

from __future__ import annotations

import argparse
from typing import Any

from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import migrate, status
from cityops.storage.roles import apply_logins, login_statements, service_roles


def register(commands: argparse._SubParsersAction[Any]) -> None:
    db = commands.add_parser("db", help="migrate the database and show its state",
                             description="Database schema and state.")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    actions.add_parser("migrate", help="apply pending migrations and sync TimescaleDB policies"
                       ).set_defaults(handler=run_migrate)
    actions.add_parser("status", help="back end in use, applied and pending migrations"
                       ).set_defaults(handler=run_status)
    roles = actions.add_parser(
        "roles", help="the services' roles: print (or --apply) ALTER ROLE ... LOGIN PASSWORD",
        description="Give the least-privilege roles of migration 0023 their logins. Passwords come from "
                    "CITYOPS_STORAGE__ROLE_PASSWORDS__<SERVICE>; they are sent as SCRAM verifiers.")
    roles.add_argument("--apply", action="store_true", help="run the statements (as the owner) instead of printing")
    roles.set_defaults(handler=run_roles)


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


async def run_roles(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db, db.pool.acquire() as conn:
        roles = await service_roles(conn)
        statements = login_statements(roles, settings.storage.role_passwords)
        if args.apply:
            await apply_logins(conn, statements)
    if args.apply:
        for service, role in sorted(roles.items()):
            print(f"{service}: {role} may log in"
                  + ("" if service in settings.storage.role_passwords else " (no password set)"))
    else:
        print("\n".join(statements))
    return 0
