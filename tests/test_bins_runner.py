"""The bins runner against the real PostgreSQL: priorities, events and a plan stored."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cityops.settings import StorageSettings
from cityops.storage import Database, migrate
from pipelines.bins.pipeline import BinsRunSettings, run_bins
from simulation.bins import BinSpec
from simulation.synthetic.bins import simulate_bin

START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 21
NOW = START + timedelta(days=DAYS)          # a Monday, 00:00
FAST = BinsRunSettings(time_limit_s=10, max_iterations=200)


@pytest.fixture(scope="module")
async def db(postgres_admin_url: str) -> AsyncIterator[Database]:
    """A database of this module's own: the runner plans every bin in the table, so other
    tests' bins (without a depot they go to the first one) must not land in these plans."""
    from tests.conftest import scratch_database

    async with scratch_database(postgres_admin_url) as url, Database.connect(url) as database:
        await migrate(database, StorageSettings())
        yield database


async def add_bin(db: Database, device_id: str, depot: str, *, height: int = 1300, depth: int = 1000,
                  weekdays: tuple[int, ...] = (3,)) -> None:
    await db.execute("INSERT INTO devices (device_id, kind, lon, lat, bin_depth_mm, sensor_height_mm, sensor_type) "
                     "VALUES ($1, 'bin', $2, $3, $4, $5, 'jsn-sr04t')", device_id,
                     -0.76 + 0.01 * (len(device_id) % 7), 52.04 + 0.005 * (len(device_id) % 5), depth, height)
    await db.execute("INSERT INTO bin_settings (device_id, collection_weekdays, depot_id, place) "
                     "VALUES ($1, $2, $3, 'town_centre')", device_id, list(weekdays), depot)


async def add_readings(db: Database, device_id: str, spec: BinSpec, seed: int, days: float = DAYS) -> None:
    history = simulate_bin(spec, START, days=days, seed=seed)
    times = [datetime.fromtimestamp(h * 3600, UTC) for h in history.times_h]
    distances = [None if np.isnan(d) else float(d) for d in history.distance_mm]
    await db.execute("INSERT INTO bin_readings (device_id, ts, distance_mm, temp_c, tilt_deg) "
                     "SELECT $1, * FROM unnest($2::timestamptz[], $3::real[], $4::real[], $5::real[])",
                     device_id, times, distances, history.temp_c.tolist(), history.tilt_deg.tolist())


async def test_a_run_stores_priorities_events_and_a_plan(db: Database, unique: str) -> None:
    depot = f"{unique}-depot"
    await db.execute("INSERT INTO bin_depots (depot_id, lon, lat, trucks, capacity_l, max_trips) "
                     "VALUES ($1, -0.76, 52.04, 1, 700, 3)", depot)
    busy, quiet, silent, fire, broken = (f"{unique}-{name}" for name in ("busy", "quiet", "silent", "fire", "broken"))
    for device in (busy, quiet, silent, fire):
        await add_bin(db, device, depot)
    await add_bin(db, broken, depot, height=1100)                          # full line inside the blind zone
    await add_bin(db, f"{silent}-due", depot, weekdays=(0,))               # silent, and due today (Monday)
    await add_readings(db, busy, BinSpec(base_fill_per_day=0.45, collection_weekday=3, fire_chance_per_day=0,
                                         tilt_chance_per_day=0), seed=1)
    await add_readings(db, quiet, BinSpec(base_fill_per_day=0.05, collection_weekday=3, fire_chance_per_day=0,
                                          tilt_chance_per_day=0), seed=2)
    await add_readings(db, silent, BinSpec(), seed=3, days=DAYS - 4)
    await add_readings(db, f"{silent}-due", BinSpec(), seed=4, days=DAYS - 4)
    await add_readings(db, fire, BinSpec(fire_chance_per_day=0.5, tilt_chance_per_day=0), seed=5)
    await add_readings(db, broken, BinSpec(), seed=6)

    report = await run_bins(db, now=NOW, settings=FAST)
    assert report.bins >= 6 and "depot" in report.summary()

    rows = {r["device_id"]: r for r in await db.fetch(
        "SELECT * FROM bin_priorities WHERE device_id LIKE $1 AND data_until = $2", f"{unique}-%", NOW)}
    assert len(rows) == 6
    assert rows[busy]["status"] == "ok" and rows[busy]["mandatory"]
    assert rows[quiet]["status"] == "ok" and not rows[quiet]["mandatory"]
    assert rows[busy]["score"] > rows[quiet]["score"]
    assert rows[silent]["status"] == "unknown" and "no reading for 4.0 days" in rows[silent]["reasons"]
    assert not rows[silent]["mandatory"] and rows[f"{silent}-due"]["mandatory"]
    assert "due by the fixed schedule" in rows[f"{silent}-due"]["reasons"]
    assert rows[broken]["status"] == "unknown" and "blind zone" in rows[broken]["reasons"]
    assert "town centre" in rows[quiet]["reasons"]

    events = await db.fetch("SELECT kind, message FROM bin_events WHERE device_id = $1", fire)
    assert events and {e["kind"] for e in events} == {"fire"}

    plan = await db.fetchrow("SELECT * FROM bin_plans WHERE depot_id = $1", depot)
    assert plan is not None and plan["feasible"] and plan["shift_start"] == NOW + timedelta(hours=6)
    stops = await db.fetch("SELECT device_id, arrive FROM bin_plan_stops WHERE plan_id = $1 ORDER BY truck, seq",
                           plan["plan_id"])
    visited = {s["device_id"] for s in stops}
    assert {busy, f"{silent}-due"} <= visited and silent not in visited
    assert json.loads(plan["geojson"])[0]["type"] == "FeatureCollection"
    loads = await db.fetch("SELECT trip, load_after_l FROM bin_plan_stops WHERE plan_id = $1", plan["plan_id"])
    assert max(r["load_after_l"] for r in loads) <= 700
    assert max(r["trip"] for r in loads) >= 2                # 700 l does not hold them all: it tips

    first_computed = rows[busy]["computed_at"]
    again = await run_bins(db, now=NOW, settings=FAST)
    assert again.new_events == 0                              # events are recorded once
    recount = await db.fetchval("SELECT count(*) FROM bin_priorities WHERE device_id LIKE $1", f"{unique}-%")
    assert recount == 6
    assert await db.fetchval("SELECT computed_at FROM bin_priorities WHERE device_id = $1 AND data_until = $2",
                             busy, NOW) > first_computed


async def test_a_bin_registered_but_never_heard_from_is_unknown_not_a_crash(db: Database, unique: str) -> None:
    # rolling_fill slid a 3-reading window over no readings and raised, failing the whole run
    depot = f"{unique}-depot"
    await db.execute("INSERT INTO bin_depots (depot_id, lon, lat, trucks, capacity_l) "
                     "VALUES ($1, -0.76, 52.04, 1, 700)", depot)
    await add_bin(db, f"{unique}-new", depot)
    await run_bins(db, now=NOW, settings=BinsRunSettings(plan=False))
    row = await db.fetchrow("SELECT status, reasons FROM bin_priorities WHERE device_id = $1", f"{unique}-new")
    assert row is not None and row["status"] == "unknown" and "no readings" in row["reasons"]
