"""Versioned SQL migrations, applied in order, each in its own transaction.

Files in `migrations/` are named `NNNN_name.sql` (runs on every back end), plus optional
`NNNN_name.timescale.sql` or `NNNN_name.plain.sql` that run right after it, in the same
transaction, on that back end only. Applied versions are recorded in
`schema_migrations` with the back end they were applied for and a checksum.

A session-level advisory lock serialises concurrent runs: a second process waits, then
finds nothing left to do. A failing migration rolls back whole and stops the run, so the
database stays at the last version that applied cleanly.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources

import asyncpg

from cityops.errors import ExtensionError, MigrationError
from cityops.settings import StorageSettings
from cityops.storage import policies
from cityops.storage.database import Backend, Connection, Database, read_backend

log = logging.getLogger("cityops.storage.migrations")

# pg_advisory_lock key: the first 8 bytes of sha256("cityops.migrations")
LOCK_KEY = int.from_bytes(hashlib.sha256(b"cityops.migrations").digest()[:8], "big", signed=True)

_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<variant>timescale|plain))?\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    backend    text NOT NULL CHECK (backend IN ('timescaledb', 'postgresql')),
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    common: str = ""
    timescale: str = ""
    plain: str = ""

    def sql_for(self, timescale: bool) -> str:
        return "\n".join(part for part in (self.common, self.timescale if timescale else self.plain) if part)

    def checksum(self, timescale: bool) -> str:
        return hashlib.sha256(self.sql_for(timescale).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    backend: str
    checksum: str
    applied_at: datetime


@dataclass
class MigrationStatus:
    backend: Backend
    applied: list[AppliedMigration]
    pending: list[Migration]
    changed: list[int] = field(default_factory=list)  # applied, but the file differs now


@dataclass
class MigrationReport:
    backend: Backend
    applied: list[Migration]
    policy_changes: list[str]

    @property
    def nothing_to_do(self) -> bool:
        return not self.applied and not self.policy_changes


def discover(package: str = "cityops.storage", folder: str = "migrations") -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    parts: dict[int, dict[str, str]] = {}
    for entry in resources.files(package).joinpath(folder).iterdir():
        match = _FILE.match(entry.name)
        if match is None:
            continue
        version = int(match["version"])
        slot = parts.setdefault(version, {"name": match["name"]})
        if slot["name"] != match["name"]:
            raise MigrationError(f"migration {version:04d} has two names: {slot['name']!r} and "
                                 f"{match['name']!r}", version=version)
        slot[match["variant"] or "common"] = entry.read_text(encoding="utf-8")
    return [Migration(version=v, **parts[v]) for v in sorted(parts)]


async def status(db: Database, migrations: list[Migration] | None = None) -> MigrationStatus:
    migrations = discover() if migrations is None else migrations
    async with db.pool.acquire() as conn:
        backend = await read_backend(conn)
        applied = await _applied(conn)
    done = {m.version: m for m in applied}
    timescale = backend.is_timescale
    return MigrationStatus(
        backend=backend,
        applied=applied,
        pending=[m for m in migrations if m.version not in done],
        changed=[m.version for m in migrations
                 if m.version in done and done[m.version].checksum != m.checksum(timescale)],
    )


async def migrate(db: Database, storage: StorageSettings,
                  migrations: list[Migration] | None = None) -> MigrationReport:
    """Bring the schema up to date and the TimescaleDB policies in line with settings."""
    migrations = discover() if migrations is None else migrations
    async with db.pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            applied = await _applied(conn)
            timescale = await _choose_backend(conn, storage, applied)
            await conn.execute(_CREATE_TABLE)
            done = {m.version for m in applied}
            newly: list[Migration] = []
            for migration in migrations:
                if migration.version in done:
                    continue
                await _apply(conn, migration, timescale, storage.role_prefix)
                newly.append(migration)
            changes = await policies.sync(conn, storage) if timescale else []
            backend = await read_backend(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    await db.backend(refresh=True)
    return MigrationReport(backend=backend, applied=newly, policy_changes=changes)


async def _applied(conn: Connection) -> list[AppliedMigration]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    rows = await conn.fetch(
        "SELECT version, name, backend, checksum, applied_at FROM schema_migrations ORDER BY version")
    return [AppliedMigration(**dict(row)) for row in rows]


async def _choose_backend(conn: Connection, storage: StorageSettings,
                          applied: list[AppliedMigration]) -> bool:
    """Decide TimescaleDB or plain, creating the extension when wanted; True for TimescaleDB.

    A database keeps the back end its first migration was applied for, so that a
    later install of the extension never leaves half the schema plain.
    """
    backend = await read_backend(conn)
    if applied:
        recorded = applied[0].backend == "timescaledb"
        if storage.timescale == "require" and not recorded:
            raise ExtensionError(
                "this database was migrated as plain PostgreSQL; "
                "it cannot be switched to TimescaleDB in place",
                hint="migrate a new database with TimescaleDB and copy the data across, "
                     "or set CITYOPS_STORAGE__TIMESCALE=auto")
        if recorded and not backend.is_timescale:
            raise ExtensionError("this database was migrated for TimescaleDB but the extension is gone",
                                 hint="reinstall the timescaledb extension in this database")
        return recorded
    if storage.timescale == "off":
        return False
    if backend.is_timescale:
        return True
    if not backend.timescale_available:
        if storage.timescale == "require":
            raise ExtensionError(
                "CITYOPS_STORAGE__TIMESCALE=require but this PostgreSQL server has no timescaledb extension",
                hint="install TimescaleDB on the server, or set CITYOPS_STORAGE__TIMESCALE=auto")
        return False
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.InsufficientPrivilegeError:
        user = await conn.fetchval("SELECT current_user")
        raise ExtensionError(
            f"TimescaleDB is installed on the server but role {user!r} may not create the extension",
            hint="as a superuser run `CREATE EXTENSION timescaledb;` in this database, "
                 "or set CITYOPS_STORAGE__TIMESCALE=off to use plain PostgreSQL",
            sqlstate="42501") from None
    except asyncpg.PostgresError as exc:
        raise ExtensionError(
            f"CREATE EXTENSION timescaledb failed: {exc}",
            hint="add timescaledb to shared_preload_libraries and restart PostgreSQL, "
                 "or set CITYOPS_STORAGE__TIMESCALE=off",
            sqlstate=exc.sqlstate) from None
    log.info("created the timescaledb extension")
    return True


async def _apply(conn: Connection, migration: Migration, timescale: bool, role_prefix: str) -> None:
    sql = migration.sql_for(timescale)
    label = f"{migration.version:04d}_{migration.name}"
    log.info("applying migration %s", label)
    try:
        async with conn.transaction():
            # the services' role names (0023_roles.sql reads it; later migrations read db_roles)
            await conn.execute("SELECT set_config('cityops.role_prefix', $1, true)", role_prefix)
            if sql:
                await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, backend, checksum) VALUES ($1, $2, $3, $4)",
                migration.version, migration.name,
                "timescaledb" if timescale else "postgresql", migration.checksum(timescale))
    except asyncpg.PostgresError as exc:
        raise MigrationError(
            f"migration {label} failed and was rolled back: {exc}",
            version=migration.version, sqlstate=exc.sqlstate,
            hint="the database is unchanged by this migration; fix the cause above and run "
                 "`cityops db migrate` again") from None
