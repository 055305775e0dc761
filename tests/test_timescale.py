"""The TimescaleDB conformance tier: every migration and Timescale-specific query through
asyncpg against PGlite with the TimescaleDB extension (one connection at a time)."""

from datetime import UTC, datetime, timedelta

import pytest

from cityops.settings import StorageSettings
from cityops.storage import Database, hourly_stats, insert_readings, migrate, status
from cityops.storage.migrations import discover

pytestmark = pytest.mark.timescale

T0 = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
REQUIRE = StorageSettings(timescale="require", pool_min_size=1, pool_max_size=1)


@pytest.fixture(scope="module")
async def migrated(timescale_db: Database) -> Database:
    report = await migrate(timescale_db, REQUIRE)
    assert report.backend.is_timescale
    return timescale_db


async def test_every_migration_applies_with_timescaledb_and_a_rerun_has_nothing_to_do(
        migrated: Database) -> None:
    state = await status(migrated)
    assert [r.version for r in state.applied] == [m.version for m in discover()]
    assert {r.backend for r in state.applied} == {"timescaledb"}
    assert (await migrate(migrated, REQUIRE)).nothing_to_do


async def test_readings_tables_are_compressed_hypertables(migrated: Database) -> None:
    rows = await migrated.fetch(
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables")
    readings = {r["hypertable_name"]: r["compression_enabled"] for r in rows
                if r["hypertable_name"].endswith("_readings")}
    assert readings == {"frog_readings": True, "road_readings": True, "bin_readings": True}


async def test_hourly_continuous_aggregates_exist_and_are_real_time(migrated: Database) -> None:
    rows = await migrated.fetch(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates")
    assert {r["view_name"]: r["materialized_only"] for r in rows} == {
        "frog_hourly": False, "road_hourly": False, "bin_hourly": False}


async def test_compression_retention_and_refresh_policies_exist(migrated: Database) -> None:
    rows = await migrated.fetch(
        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
        "WHERE proc_name IN ('policy_compression', 'policy_retention', "
        "'policy_refresh_continuous_aggregate')")
    by_proc: dict[str, set[str]] = {}
    for row in rows:
        by_proc.setdefault(row["proc_name"], set()).add(row["hypertable_name"])
    tables = {"frog_readings", "road_readings", "bin_readings"}
    assert by_proc["policy_compression"] == tables
    assert by_proc["policy_retention"] == tables
    assert len(by_proc["policy_refresh_continuous_aggregate"]) == 3


async def test_changed_policy_settings_are_applied_then_stable(migrated: Database) -> None:
    changed = StorageSettings(**{**REQUIRE.model_dump(), "compress_after": timedelta(days=3),
                                 "retain_for": timedelta(0)})
    report = await migrate(migrated, changed)
    assert "frog_readings: compress after 3 days" in report.policy_changes
    assert "frog_readings: keep forever" in report.policy_changes
    assert (await migrate(migrated, changed)).nothing_to_do
    retention = await migrated.fetchval(
        "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'")
    assert retention == 0
    assert (await migrate(migrated, REQUIRE)).policy_changes  # back to the defaults


async def test_the_write_path_drops_duplicates_on_a_hypertable(migrated: Database, unique: str) -> None:
    rows = [(unique, T0 + timedelta(minutes=5 * i), 19.0, 61.0) for i in range(10)]
    assert await insert_readings(migrated, "frog", rows) == 10
    assert await insert_readings(migrated, "frog", rows + rows[:2]) == 0


async def test_hourly_stats_agree_between_timescaledb_and_plain_postgresql(
        migrated: Database, db: Database, unique: str) -> None:
    """The same readings into both back ends give the same hourly statistics."""
    device = f"{unique}-agree"
    frog = [(device, T0 + timedelta(minutes=7 * i, seconds=i % 13), 15.0 + (i * 37 % 50) / 10,
             40.0 + (i * 11 % 55)) for i in range(60)]
    road = [(device, T0 + timedelta(minutes=10 * i), -3.0 + i / 10, 1.0 - i / 20,
             ("dry", "damp", "wet", "ice")[i % 4], None, None) for i in range(40)]
    bins = [(device, T0 + timedelta(minutes=30 * i), 900.0 - 20 * i, min(1.0, i / 12), 10.0 + i % 3, 0.0)
            for i in range(12)]
    window = (T0, T0 + timedelta(hours=8))
    for kind, rows in (("frog", frog), ("road", road), ("bin", bins)):
        assert await insert_readings(migrated, kind, rows) == len(rows)
        assert await insert_readings(db, kind, rows) == len(rows)
        timescale = await hourly_stats(migrated, kind, *window, [device])
        plain = await hourly_stats(db, kind, *window, [device])
        assert len(timescale) >= 2
        assert [(s.bucket, s.readings) for s in timescale] == [(s.bucket, s.readings) for s in plain]
        for ts_stat, plain_stat in zip(timescale, plain, strict=True):
            assert ts_stat.values == pytest.approx(plain_stat.values, rel=1e-9), kind


async def test_hourly_stats_come_from_the_continuous_aggregate_once_materialised(
        migrated: Database, unique: str) -> None:
    rows = [(unique, T0 + timedelta(minutes=15 * i), 10.0 + i, 70.0) for i in range(8)]
    await insert_readings(migrated, "frog", rows)
    await migrated.execute(
        "CALL refresh_continuous_aggregate('frog_hourly', $1::timestamptz, $2::timestamptz)",
        T0, T0 + timedelta(hours=2))
    stats = await hourly_stats(migrated, "frog", T0, T0 + timedelta(hours=2), [unique])
    assert [(s.readings, s.values["air_temp_avg"]) for s in stats] == [(4, 11.5), (4, 15.5)]


async def test_a_role_that_may_not_create_the_extension_gets_the_cause_and_what_to_do(
        timescale_node, tmp_path) -> None:
    """A server with TimescaleDB available, a role without the right: refused, nothing changed."""
    from cityops.errors import ExtensionError
    from tests.conftest import pglite_pool, pglite_server

    async with pglite_server(timescale_node, tmp_path) as url:
        owner = await pglite_pool(url)
        await owner.execute("CREATE ROLE app; GRANT CREATE ON SCHEMA public TO app")
        owner.terminate()  # PGlite does not answer a Terminate message; cut the socket
        app = Database(await pglite_pool(url, "SET ROLE app"), url)
        try:
            with pytest.raises(ExtensionError, match="role 'app' may not create the extension") as caught:
                await migrate(app, StorageSettings(timescale="auto"))
            assert caught.value.sqlstate == "42501"
            assert "CREATE EXTENSION timescaledb" in caught.value.hint
            assert "CITYOPS_STORAGE__TIMESCALE=off" in caught.value.hint
            backend = await app.backend(refresh=True)
            assert backend.timescale_available and not backend.is_timescale
            assert await app.fetchval("SELECT to_regclass('schema_migrations')") is None
        finally:
            app.pool.terminate()
