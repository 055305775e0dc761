"""What the pages' browser tests sign in to: a householder with a week of readings, a
gritting crew member with a planned route as a job. Written straight to the database, as
the pipelines would have left it."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.api import week_of_readings
from cityops.storage import Database
from ops_api.accounts.store import create_user
from tests.api_helpers import ALWAYS


async def householder_with_a_week_of_readings(db: Database, unique: str, now: datetime | None = None
                                              ) -> tuple[str, str, str]:
    """A householder whose frog box read every 5 minutes for a week up to a minute before `now`
    (the real time unless given), assessed "medium" by its mould index of 0.7 (docs/damp.md:
    medium from 0.5, high from 1)."""
    household, device = f"hh-{unique}", f"{unique}-frog"
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    readings = week_of_readings(device, now - timedelta(minutes=5))
    readings.append((device, now - timedelta(minutes=1), 19.3, 71.0))  # the current reading
    await db.execute("INSERT INTO devices (device_id, kind, household_id) VALUES ($1, 'frog', $2)", device, household)
    async with db.pool.acquire() as conn:
        await conn.copy_records_to_table("frog_readings", records=readings,
                                         columns=["device_id", "ts", "air_temp_c", "rh_pct"])
    await db.execute(
        "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d, "
        "condensation_hours_7d, reasons, changes, faults, metrics) "
        "VALUES ($1, $2, $3, 'medium', 0.7, 30, 4, $4, '[]', '[]', '{}')",
        device, now.replace(minute=0, second=0), household, json.dumps(["the coldest wall is often damp"]))
    password = secrets.token_urlsafe(12)
    await create_user(db, username=f"home-{unique}", password=password, role="householder",
                      household_id=household, display_name="Alex Householder", member_since=ALWAYS)
    return household, f"home-{unique}", password


BRISTOL_ROUTE = [  # lon/lat of a few streets, driven in this order
    ([[-2.600, 51.450], [-2.596, 51.452], [-2.590, 51.453]], True),
    ([[-2.590, 51.453], [-2.585, 51.456]], True),
    ([[-2.585, 51.456], [-2.588, 51.459], [-2.594, 51.460]], False),   # deadheading
    ([[-2.594, 51.460], [-2.600, 51.458], [-2.602, 51.452]], True),
]


async def gritting_job_for_a_crew_member(db: Database, unique: str) -> tuple[int, int, str, str]:
    """A gritting run with one planned route, assigned as a job to a new crew member."""
    now = datetime.now(UTC)
    run_id = await db.fetchval(
        "INSERT INTO gritting_runs (as_of, window_start, window_end, inputs, warnings) "
        "VALUES ($1, $1, $2, '{}', '[]') RETURNING run_id", now, now + timedelta(hours=12))
    depot = {"type": "Point", "coordinates": [-2.601, 51.449]}
    features: list[dict[str, Any]] = [{"type": "Feature", "geometry": depot,
                                       "properties": {"role": "depot", "name": "Test depot"}}]
    for seq, (line, service) in enumerate(BRISTOL_ROUTE, start=1):
        features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
                         "properties": {"seq": seq, "trip": 1, "segment_id": f"{unique}-s{seq}", "service": service,
                                        "mode": "service" if service else "deadhead",
                                        "salt_kg": 12.5 if service else 0.0}})
    instructions = [{"trip": 1, "vehicle": 1, "step": i, "text": text} for i, text in enumerate(
        ["Leave Test depot with 2.0 t of salt.", "Spread Park Street at 10 g/m².",
         "Drive (no spreading) to Queens Road.", "Spread Queens Road at 10 g/m².", "Return to Test depot."], 1)]
    plan_id = await db.fetchval(
        "INSERT INTO gritting_plans (run_id, route_id, feasible, distance_m, trips, geojson, instructions) "
        "VALUES ($1, $2, true, 2400, 1, $3, $4) RETURNING plan_id", run_id, f"route-{unique}",
        json.dumps({"type": "FeatureCollection", "features": features}), json.dumps(instructions))
    password = secrets.token_urlsafe(12)
    crew = await create_user(db, username=f"crew-{unique}", password=password, role="gritting_crew",
                             display_name="Sam Gritter")
    job_id = await db.fetchval(
        "INSERT INTO jobs (kind, title, route_id, run_id, gritting_plan_id, assigned_to, assigned_by) "
        "VALUES ('gritting', $1, $2, $3, $4, $5, 'test') RETURNING job_id",
        f"Grit route {unique}", f"route-{unique}", run_id, plan_id, crew.user_id)
    return job_id, run_id, crew.username, password
