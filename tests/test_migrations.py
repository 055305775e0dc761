"""Migrations on plain PostgreSQL: in order, recorded, once, under a lock, all or nothing."""

import asyncio

import pytest

from cityops.errors import ExtensionError, MigrationError
from cityops.settings import StorageSettings
from cityops.storage import Database, migrate, status
from cityops.storage.migrations import Migration, discover

PLAIN = StorageSettings(timescale="off")


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in discover()]
    assert versions == list(range(1, len(versions) + 1))


async def test_migrate_applies_everything_then_has_nothing_to_do(fresh_database_url: str) -> None:
    async with Database.connect(fresh_database_url) as db:
        first = await migrate(db, StorageSettings())
        second = await migrate(db, StorageSettings())
        state = await status(db)
        tables = {r["table_name"] for r in await db.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert [m.version for m in first.applied] == [m.version for m in discover()]
    assert second.nothing_to_do
    assert not state.pending and not state.changed
    assert {r.backend for r in state.applied} == {"postgresql"}
    assert {"devices", "dead_letters", "frog_readings", "road_readings", "bin_readings",
            "frog_hourly", "road_hourly", "bin_hourly", "schema_migrations"} <= tables


async def test_two_processes_migrating_at_once_apply_each_migration_once(fresh_database_url: str) -> None:
    async with Database.connect(fresh_database_url) as one, Database.connect(fresh_database_url) as two:
        reports = await asyncio.gather(migrate(one, PLAIN), migrate(two, PLAIN))
        recorded = await one.fetch("SELECT version FROM schema_migrations ORDER BY version")
    applied = sorted(m.version for report in reports for m in report.applied)
    assert applied == [m.version for m in discover()]
    assert [r["version"] for r in recorded] == applied


async def test_a_failing_migration_rolls_back_whole_and_stops(fresh_database_url: str) -> None:
    good = Migration(1, "good", common="CREATE TABLE good_one (x int);")
    bad = Migration(2, "bad", common="CREATE TABLE half_made (x int);\nSELECT no_such_function();")
    never = Migration(3, "never", common="CREATE TABLE never_made (x int);")
    async with Database.connect(fresh_database_url) as db:
        with pytest.raises(MigrationError) as caught:
            await migrate(db, PLAIN, [good, bad, never])
        assert caught.value.version == 2
        assert caught.value.sqlstate == "42883"
        assert "rolled back" in str(caught.value) and caught.value.hint
        exists = {name: await db.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
                  for name in ("good_one", "half_made", "never_made")}
        state = await status(db, [good, bad, never])
    assert exists == {"good_one": True, "half_made": False, "never_made": False}
    assert [m.version for m in state.pending] == [2, 3]


async def test_status_reports_a_migration_edited_after_it_was_applied(fresh_database_url: str) -> None:
    original = Migration(1, "t", common="CREATE TABLE t (x int);")
    edited = Migration(1, "t", common="CREATE TABLE t (x bigint);")
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, PLAIN, [original])
        assert (await status(db, [edited])).changed == [1]


async def test_requiring_timescaledb_on_a_server_without_it_is_refused(fresh_database_url: str) -> None:
    async with Database.connect(fresh_database_url) as db:
        backend = await db.backend()
        if backend.timescale_available:
            pytest.skip("this server has TimescaleDB; the refusal needs one without it")
        with pytest.raises(ExtensionError, match="no timescaledb extension") as caught:
            await migrate(db, StorageSettings(timescale="require"))
        assert "CITYOPS_STORAGE__TIMESCALE" in caught.value.hint
        assert await db.fetchval("SELECT to_regclass('schema_migrations')") is None
