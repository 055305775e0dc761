"""Data for the resource API tests, written through the storage helpers and the real runners.

`runner_world(admin_url)` builds a database of its own (the runners read whole tables):
the hand-made road network with a wet, cooling sensor on Main Road, one gritting run that
sends route R1 with a plan; one bin depot with three bins (one full), one bins run with a plan.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from cityops.settings import GrittingSettings, StorageSettings
from cityops.storage import Database, insert_readings, migrate
from pipelines.bins.pipeline import BinsRunSettings, run_bins
from pipelines.gritting.pipeline import run_gritting, save_network
from rules.gritting.network import parse_network
from simulation.bins import BinSpec
from simulation.synthetic.bins import simulate_bin
from tests.conftest import scratch_database

ROADS = Path(__file__).parent / "data" / "roads"
GRIT_NOW = datetime(2026, 1, 6, 20, 0, tzinfo=UTC)
BIN_START = datetime(2026, 1, 5, tzinfo=UTC)
BIN_NOW = BIN_START + timedelta(days=21)          # a Monday 00:00; the plan is for 06:00
FAST_BINS = BinsRunSettings(time_limit_s=5, max_iterations=100)


@dataclass(frozen=True)
class World:
    db: Database
    url: str
    run_id: int
    bin_plan_id: int
    full_bin: str
    quiet_bin: str


async def add_frog_readings(db: Database, device_id: str, start: datetime, hours: float, *,
                            temp: float = 19.0, rh: float = 65.0, every_min: int = 5) -> int:
    """Regular frog readings with a small daily wave."""
    n = int(hours * 60 / every_min)
    rows = [(device_id, start + timedelta(minutes=every_min * k), temp + np.sin(k / 40.0), rh + 3 * np.cos(k / 50.0))
            for k in range(n)]
    return await insert_readings(db, "frog", [(d, t, float(a), float(h)) for d, t, a, h in rows])


async def add_bin(db: Database, device_id: str, depot: str, spec: BinSpec, seed: int) -> None:
    await db.execute("INSERT INTO devices (device_id, kind, lon, lat, bin_depth_mm, sensor_height_mm, sensor_type) "
                     "VALUES ($1, 'bin', $2, $3, 1000, 1300, 'jsn-sr04t')", device_id,
                     -0.76 + 0.003 * seed, 52.04 + 0.002 * seed)
    await db.execute("INSERT INTO bin_settings (device_id, collection_weekdays, depot_id, place) "
                     "VALUES ($1, '{3}', $2, 'town_centre')", device_id, depot)
    history = simulate_bin(spec, BIN_START, days=21, seed=seed)
    times = [datetime.fromtimestamp(h * 3600, UTC) for h in history.times_h]
    distances = [None if np.isnan(d) else float(d) for d in history.distance_mm]
    await db.execute("INSERT INTO bin_readings (device_id, ts, distance_mm, temp_c, tilt_deg) "
                     "SELECT $1, * FROM unnest($2::timestamptz[], $3::real[], $4::real[], $5::real[])",
                     device_id, times, distances, history.temp_c.tolist(), history.tilt_deg.tolist())


async def _gritting(db: Database) -> int:
    network = parse_network(json.loads((ROADS / "network.geojson").read_text()), "test")
    await save_network(db, network)
    s1 = next(s for s in network.segments if s.segment_id == "s1")
    await db.execute("INSERT INTO devices (device_id, kind, lon, lat, road_segment_id, registered_at) "
                     "VALUES ('road-wet', 'road', $1, $2, 's1', '2026-01-01')", *s1.midpoint)
    stamps = [GRIT_NOW - timedelta(minutes=10 * k) for k in range(18, -1, -1)]
    cooling = [0.5 - 0.8 * (ts - GRIT_NOW).total_seconds() / 3600 + (0.01 if k % 2 else 0.0)
               for k, ts in enumerate(stamps)]       # 0.8 degC an hour down to 0.5 now, wet
    await insert_readings(db, "road", [("road-wet", ts, rst, 1.5, "wet", None, None, 90.0)
                                       for ts, rst in zip(stamps, cooling, strict=True)])
    report = await run_gritting(db, now=GRIT_NOW, settings=GrittingSettings(plan_seconds=3), max_iterations=200)
    assert report.run_id is not None
    return report.run_id


async def _bins(db: Database) -> tuple[int, str, str]:
    await db.execute("INSERT INTO bin_depots (depot_id, lon, lat, trucks, capacity_l, max_trips) "
                     "VALUES ('bdep', -0.76, 52.04, 1, 2000, 2)")
    full, quiet = "bin-full", "bin-quiet"
    await add_bin(db, full, "bdep", BinSpec(base_fill_per_day=0.45, collection_weekday=3, fire_chance_per_day=0,
                                            tilt_chance_per_day=0), seed=1)
    await add_bin(db, quiet, "bdep", BinSpec(base_fill_per_day=0.05, collection_weekday=3, fire_chance_per_day=0,
                                             tilt_chance_per_day=0), seed=2)
    await run_bins(db, now=BIN_NOW, settings=FAST_BINS)
    plan_id = await db.fetchval("SELECT max(plan_id) FROM bin_plans")
    return int(plan_id), full, quiet


@asynccontextmanager
async def runner_world(admin_url: str) -> AsyncIterator[World]:
    async with scratch_database(admin_url) as url, Database.connect(url) as db:
        await migrate(db, StorageSettings())
        run_id = await _gritting(db)
        plan_id, full, quiet = await _bins(db)
        yield World(db, url, run_id, plan_id, full, quiet)
