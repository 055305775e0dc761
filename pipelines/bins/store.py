"""The bins tables in the database: the one owner of their SQL.

    bin_settings, bin_complaints, bin_depots (read)   what the council set up and was told
    bin_readings, bin_collections (read)              fill readings, and the crews' emptyings
    bin_priorities, bin_events                        one priority row per bin and run; fire/tilt events
    bin_plans, bin_plan_stops                         collection plans (history kept) and their stops

The pipeline, the API's reads (ops_api.queries), the jobs lifecycle and the demo come here;
no other module writes bin_priorities, bin_events, bin_plans or bin_plan_stops.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from cityops.storage import Database
from cityops.storage.database import Connection
from rules.bins.assess import FleetAssessment
from rules.routing.plan import CollectionPlan

Querier = Database | Connection


# --- what the pipeline reads ---------------------------------------------------------------

async def active_bins(db: Database, now: datetime, readings_since: datetime, complaints_since: datetime
                      ) -> list[tuple[asyncpg.Record, list[asyncpg.Record]]]:
    """Each active bin (its calibration, settings and complaints since `complaints_since`) with its
    readings in (readings_since, now], oldest first, hours since the epoch in `h`."""
    rows = await db.fetch(
        "SELECT d.device_id, d.lon, d.lat, d.bin_depth_mm, d.sensor_height_mm, d.sensor_type, "
        "s.bin_type, s.place, s.volume_l, s.collection_weekdays, s.depot_id, "
        "(SELECT count(*) FROM bin_complaints c WHERE c.device_id = d.device_id AND c.reported_at > $1) AS complaints "
        "FROM devices d LEFT JOIN bin_settings s ON s.device_id = d.device_id "
        "WHERE d.kind = 'bin' AND d.status = 'active' ORDER BY d.device_id", complaints_since)
    # a crew's recorded collection (bin_collections, from a completed job) joins the readings as an
    # empty bin, so the forecast sees the emptying even before the sensor reports again
    readings = await db.fetch(
        "SELECT device_id, extract(epoch FROM ts) / 3600.0 AS h, distance_mm, fill_fraction, temp_c, tilt_deg "
        "FROM bin_readings WHERE ts > $1 AND ts <= $2 UNION ALL "
        "SELECT device_id, extract(epoch FROM collected_at) / 3600.0, NULL::real, 0::real, NULL::real, NULL::real "
        "FROM bin_collections WHERE collected_at > $1 AND collected_at <= $2 ORDER BY device_id, h",
        readings_since, now)
    by_device: dict[str, list[asyncpg.Record]] = {}
    for r in readings:
        by_device.setdefault(r["device_id"], []).append(r)
    return [(row, by_device.get(row["device_id"], [])) for row in rows]


async def depots(db: Database) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM bin_depots ORDER BY depot_id")


async def depot_places(db: Database) -> dict[str, asyncpg.Record]:
    """Each depot's lon and lat, by depot_id."""
    return {r["depot_id"]: r for r in await db.fetch("SELECT depot_id, lon, lat FROM bin_depots")}


# --- what the pipeline writes --------------------------------------------------------------

_WRITE_PRIORITIES = """
INSERT INTO bin_priorities (device_id, data_until, status, fill, hours_to_threshold, hours_low, hours_high,
                            overflow_risk, score, mandatory, reasons)
SELECT d, $2, s, f, h, lo, hi, r, sc, m, why
FROM unnest($1::text[], $3::text[], $4::real[], $5::real[], $6::real[], $7::real[], $8::real[], $9::real[],
            $10::boolean[], $11::text[]) AS t(d, s, f, h, lo, hi, r, sc, m, why)
ON CONFLICT (device_id, data_until) DO UPDATE SET computed_at = now(), status = EXCLUDED.status,
    fill = EXCLUDED.fill, hours_to_threshold = EXCLUDED.hours_to_threshold, hours_low = EXCLUDED.hours_low,
    hours_high = EXCLUDED.hours_high, overflow_risk = EXCLUDED.overflow_risk, score = EXCLUDED.score,
    mandatory = EXCLUDED.mandatory, reasons = EXCLUDED.reasons
"""

_WRITE_EVENTS = """
INSERT INTO bin_events (device_id, ts, kind, value, message)
SELECT d, to_timestamp(h * 3600), k, v, m
FROM unnest($1::text[], $2::float8[], $3::text[], $4::real[], $5::text[]) AS t(d, h, k, v, m)
ON CONFLICT DO NOTHING
"""


def _nullable(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


async def save_assessments(db: Database, device_ids: Sequence[str], fleet: FleetAssessment, now: datetime) -> int:
    """One priority row per bin as of `now` (rewritten when run again) and the new events, in one
    transaction; how many events were new."""
    forecasts = [a.forecast for a in fleet.assessed]
    events = [e for a in fleet.assessed for e in a.events]
    priorities = fleet.priorities
    async with db.transaction() as conn:
        await conn.execute(_WRITE_PRIORITIES, list(device_ids), now, [f.status for f in forecasts],
                           *([_nullable(getattr(f, name)) for f in forecasts]
                             for name in ("fill_now", "hours_to_threshold", "hours_low", "hours_high",
                                          "overflow_risk")),
                           priorities.score.tolist(), priorities.mandatory.tolist(), fleet.reasons())
        status = await conn.execute(_WRITE_EVENTS, [e.device_id for e in events], [e.at_h for e in events],
                                    [e.kind for e in events], [e.value for e in events], [e.message for e in events])
    return int(status.split()[-1])


async def save_plan(db: Database, depot: asyncpg.Record, shift_start: datetime, plan: CollectionPlan) -> None:
    """A depot's collection plan for a shift, with its stops, in one transaction (plans keep history)."""
    geojson: list[dict[str, Any]] = [r.geojson((depot["lon"], depot["lat"])) for r in plan.routes]
    stops = [(r.truck, seq, s) for r in plan.routes for seq, s in enumerate(r.stops, start=1)]
    async with db.transaction() as conn:
        plan_id = await conn.fetchval(
            "INSERT INTO bin_plans (depot_id, shift_start, feasible, distance_m, solve_s, skipped, missed, notes, "
            "geojson) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING plan_id",
            depot["depot_id"], shift_start, plan.feasible, plan.distance_m, plan.seconds, json.dumps(plan.skipped),
            json.dumps(plan.missed_mandatory), json.dumps(plan.notes), json.dumps(geojson))
        await conn.execute(
            "INSERT INTO bin_plan_stops (plan_id, truck, seq, device_id, arrive, depart, trip, load_after_l, "
            "street, directions) "
            "SELECT $1, t, q, d, a, l, tr, lo, st, di::jsonb FROM unnest($2::int[], $3::int[], $4::text[], "
            "$5::timestamptz[], $6::timestamptz[], $7::int[], $8::int[], $9::text[], $10::text[]) "
            "AS x(t, q, d, a, l, tr, lo, st, di)", plan_id, [t for t, _, _ in stops], [q for _, q, _ in stops],
            [s.device_id for _, _, s in stops], [s.arrive for _, _, s in stops], [s.leave for _, _, s in stops],
            [s.trip for _, _, s in stops], [s.load_after_l for _, _, s in stops], [s.street for _, _, s in stops],
            [json.dumps(list(s.directions)) for _, _, s in stops])


# --- what the API, the jobs and the demo read ----------------------------------------------

async def latest_priorities(db: Database, depot_id: str | None = None) -> list[asyncpg.Record]:
    """The latest run's priority per active bin (each run rates every active bin), with its place,
    type, depot and when a crew last emptied it."""
    return await db.fetch(
        "SELECT p.device_id, p.data_until, p.computed_at, p.status, p.fill, "
        "p.hours_to_threshold, p.hours_low, p.hours_high, p.overflow_risk, p.score, p.mandatory, p.reasons, "
        "d.lon, d.lat, coalesce(s.bin_type, 'general') AS bin_type, s.depot_id, "
        "(SELECT max(c.collected_at) FROM bin_collections c WHERE c.device_id = p.device_id) AS last_collected_at "
        "FROM bin_priorities p JOIN devices d ON d.device_id = p.device_id AND d.status = 'active' "
        "LEFT JOIN bin_settings s ON s.device_id = p.device_id "
        "WHERE p.data_until = (SELECT max(data_until) FROM bin_priorities) "   # each run rates every active bin
        "AND ($1::text IS NULL OR s.depot_id = $1)", depot_id)


async def latest_fill(db: Database) -> list[asyncpg.Record]:
    """The latest run's fill per active bin, with its place, type and depot (the first depot when it has none)."""
    return await db.fetch(
        "SELECT p.device_id, coalesce(s.bin_type, 'general') AS bin_type, p.fill, p.status, "
        "p.data_until, d.lon, d.lat, coalesce(s.depot_id, (SELECT min(depot_id) FROM bin_depots)) AS depot_id "
        "FROM bin_priorities p JOIN devices d ON d.device_id = p.device_id AND d.status = 'active' "
        "LEFT JOIN bin_settings s ON s.device_id = p.device_id "
        "WHERE p.data_until = (SELECT max(data_until) FROM bin_priorities) ORDER BY p.device_id")


async def plan(db: Database, plan_id: int) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM bin_plans WHERE plan_id = $1", plan_id)


async def plan_ids_on(db: Database, start: datetime, end: datetime, depot_id: str | None = None) -> list[int]:
    """Each depot's latest plan for a shift starting in [start, end)."""
    return [r["plan_id"] for r in await db.fetch(
        "SELECT DISTINCT ON (depot_id) plan_id FROM bin_plans WHERE shift_start >= $1 AND shift_start < $2 "
        "AND ($3::text IS NULL OR depot_id = $3) ORDER BY depot_id, plan_id DESC", start, end, depot_id)]


async def plan_stops(db: Database, plan_id: int, truck: int | None = None) -> list[asyncpg.Record]:
    """A plan's stops (one truck's, or all) in driving order, with each bin's place."""
    return await db.fetch(
        "SELECT s.plan_id, s.truck, s.seq, s.device_id, s.arrive, s.depart, s.trip, s.load_after_l, s.street, "
        "s.directions, d.lon, d.lat "
        "FROM bin_plan_stops s LEFT JOIN devices d USING (device_id) WHERE s.plan_id = $1 "
        "AND ($2::int IS NULL OR s.truck = $2) ORDER BY s.truck, s.seq", plan_id, truck)


async def truck_bins(db: Querier, plan_id: int, truck: int) -> list[str]:
    """The bins on one truck of a plan, in driving order (a plan never changes once written)."""
    return [r["device_id"] for r in await db.fetch(
        "SELECT device_id FROM bin_plan_stops WHERE plan_id = $1 AND truck = $2 ORDER BY seq", plan_id, truck)]


async def plan_trucks(db: Database, plan_id: int) -> list[int]:
    return [r["truck"] for r in await db.fetch(
        "SELECT DISTINCT truck FROM bin_plan_stops WHERE plan_id = $1 ORDER BY truck", plan_id)]
