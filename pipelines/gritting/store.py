"""The gritting tables in the database: the one owner of their SQL.

    road_depots, gritting_routes, road_segments   the road network (upserted by an import)
    road_forecasts                                 bought road-weather forecasts
    road_readings (read)                           fixed sensors' histories, the gritter's points
    gritting_runs, gritting_segment_decisions,     one run: its inputs and warnings, a decision
    gritting_route_decisions, gritting_plans       per segment and per route, the route plans
    gritting_decision_log                          officers' acknowledgements and overrides
                                                   (append-only, migration 0016)

The pipeline, the decision log, the API's reads (ops_api.queries), the jobs lifecycle, the
demo and the commands all come here; no other module writes these tables (a test checks
gritting_route_decisions). Rows come back as asyncpg records where the caller shapes them,
as the rules' types where the rules take them (the network, sensor histories, forecasts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from cityops.storage import Database
from cityops.storage.database import Connection
from pipelines.errors import RouteDecisionNotFound
from rules.gritting import decide
from rules.gritting.assess import Assessment, MobilePoints
from rules.gritting.decide import RouteDecision
from rules.gritting.forecast import ForecastRow
from rules.gritting.network import Depot, RoadNetwork, Route, Segment
from rules.gritting.plan import RoutePlan
from rules.gritting.sensors import SensorHistory

Querier = Database | Connection


# --- the network ---------------------------------------------------------------------------

async def save_network(db: Database, network: RoadNetwork, *, prune: bool = False) -> tuple[int, int]:
    """Upsert depots, routes and segments in one transaction; (segments already known, segments pruned)."""
    segs = network.segments
    mids = [s.midpoint for s in segs]
    async with db.transaction() as conn:
        known = await conn.fetchval("SELECT count(*) FROM road_segments WHERE segment_id = ANY($1)",
                                    [s.segment_id for s in segs])
        await conn.execute(
            "INSERT INTO road_depots (depot_id, name, lon, lat) SELECT * FROM unnest($1::text[], $2::text[], "
            "$3::float8[], $4::float8[]) ON CONFLICT (depot_id) DO UPDATE SET name = EXCLUDED.name, "
            "lon = EXCLUDED.lon, lat = EXCLUDED.lat, updated_at = now()",
            [d.depot_id for d in network.depots], [d.name for d in network.depots],
            [d.lon for d in network.depots], [d.lat for d in network.depots])
        await conn.execute(
            "INSERT INTO gritting_routes (route_id, name, depot_id, vehicles, salt_capacity_kg, max_trips) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::real[], $6::int[]) "
            "ON CONFLICT (route_id) DO UPDATE SET name = EXCLUDED.name, depot_id = EXCLUDED.depot_id, "
            "vehicles = EXCLUDED.vehicles, salt_capacity_kg = EXCLUDED.salt_capacity_kg, "
            "max_trips = EXCLUDED.max_trips, updated_at = now()",
            [r.route_id for r in network.routes], [r.name for r in network.routes],
            [r.depot_id for r in network.routes], [r.vehicles for r in network.routes],
            [r.salt_capacity_kg for r in network.routes], [r.max_trips for r in network.routes])
        await conn.execute(
            "INSERT INTO road_segments (segment_id, name, route_id, priority, length_m, width_m, thermal_offset_c, "
            "thermal_offsets, bridge, geometry, mid_lon, mid_lat, start_node, end_node, oneway) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::real[], $6::real[], "
            "$7::real[], $8::jsonb[], $9::boolean[], $10::jsonb[], $11::float8[], $12::float8[], $13::text[], "
            "$14::text[], $15::boolean[]) "
            "ON CONFLICT (segment_id) DO UPDATE SET name = EXCLUDED.name, route_id = EXCLUDED.route_id, "
            "priority = EXCLUDED.priority, length_m = EXCLUDED.length_m, width_m = EXCLUDED.width_m, "
            "thermal_offset_c = EXCLUDED.thermal_offset_c, thermal_offsets = EXCLUDED.thermal_offsets, "
            "bridge = EXCLUDED.bridge, geometry = EXCLUDED.geometry, mid_lon = EXCLUDED.mid_lon, "
            "mid_lat = EXCLUDED.mid_lat, start_node = EXCLUDED.start_node, end_node = EXCLUDED.end_node, "
            "oneway = EXCLUDED.oneway, updated_at = now()",
            [s.segment_id for s in segs], [s.name for s in segs], [s.route_id for s in segs],
            [s.priority for s in segs], [s.length_m for s in segs], [s.width_m for s in segs],
            [s.thermal_offset_c for s in segs],
            [json.dumps(dict(s.thermal_offsets)) if s.thermal_offsets else None for s in segs],
            [s.bridge for s in segs], [json.dumps(s.geojson()) for s in segs], [m[0] for m in mids],
            [m[1] for m in mids], [s.start_node for s in segs], [s.end_node for s in segs],
            [s.oneway for s in segs])
        pruned = 0
        if prune:
            status = await conn.execute("DELETE FROM road_segments WHERE NOT segment_id = ANY($1)",
                                        [s.segment_id for s in segs])
            pruned = int(status.split()[-1])
    return int(known), pruned


async def network_version(db: Database) -> tuple[Any, ...]:
    """What changes whenever the stored network does: counts and last updates of its three tables."""
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM road_segments), (SELECT max(updated_at) FROM road_segments), "
        "(SELECT count(*) FROM gritting_routes), (SELECT max(updated_at) FROM gritting_routes), "
        "(SELECT count(*) FROM road_depots), (SELECT max(updated_at) FROM road_depots)")
    return tuple(row) if row is not None else ()


async def load_network(db: Database) -> RoadNetwork:
    depots = [Depot(r["depot_id"], r["name"], r["lon"], r["lat"])
              for r in await db.fetch("SELECT * FROM road_depots ORDER BY depot_id")]
    routes = [Route(r["route_id"], r["name"], r["depot_id"], float(r["salt_capacity_kg"]), r["vehicles"],
                    r["max_trips"]) for r in await db.fetch("SELECT * FROM gritting_routes ORDER BY route_id")]
    rows = await db.fetch("SELECT segment_id, name, route_id, priority, length_m, width_m, thermal_offset_c, "
                          "thermal_offsets, bridge, geometry, oneway FROM road_segments ORDER BY segment_id")
    segments = []
    for r in rows:
        geometry = json.loads(r["geometry"])
        offsets = json.loads(r["thermal_offsets"]) if r["thermal_offsets"] else None
        segments.append(Segment(r["segment_id"], r["name"], r["priority"], float(r["length_m"]), float(r["width_m"]),
                                tuple((float(c[0]), float(c[1])) for c in geometry["coordinates"]),
                                float(r["thermal_offset_c"]), offsets, r["bridge"], r["route_id"], r["oneway"]))
    return RoadNetwork(tuple(segments), tuple(depots), tuple(routes))


# --- forecasts -----------------------------------------------------------------------------

@dataclass(frozen=True)
class KnownTargets:
    sensors: set[str]
    segments: set[str]
    areas: set[str]


async def known_targets(db: Database, sensors: list[str], segments: list[str], areas: list[str]) -> KnownTargets:
    """Which of these road sensors, segments and routes (areas) exist."""
    return KnownTargets(
        {r["device_id"] for r in await db.fetch(
            "SELECT device_id FROM devices WHERE kind = 'road' AND device_id = ANY($1)", sensors)},
        {r["segment_id"] for r in await db.fetch(
            "SELECT segment_id FROM road_segments WHERE segment_id = ANY($1)", segments)},
        {r["route_id"] for r in await db.fetch(
            "SELECT route_id FROM gritting_routes WHERE route_id = ANY($1)", areas)})


async def save_forecast(db: Database, rows: Sequence[ForecastRow], source: str) -> None:
    """Store forecast rows in one transaction, replacing the same target and time."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO road_forecasts (target_kind, target_id, valid_at, rst_c, air_temp_c, dew_point_c, rh_pct, "
            "precip, source) SELECT *, $9 FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::real[], "
            "$5::real[], $6::real[], $7::real[], $8::text[]) "
            "ON CONFLICT (target_kind, target_id, valid_at) DO UPDATE SET rst_c = EXCLUDED.rst_c, "
            "air_temp_c = EXCLUDED.air_temp_c, dew_point_c = EXCLUDED.dew_point_c, rh_pct = EXCLUDED.rh_pct, "
            "precip = EXCLUDED.precip, source = EXCLUDED.source, imported_at = now()",
            [r.target_kind for r in rows], [r.target_id for r in rows], [r.valid_at for r in rows],
            [r.rst_c for r in rows], [r.air_temp_c for r in rows], [r.dew_point_c for r in rows],
            [r.rh_pct for r in rows], [r.precip for r in rows], source)


async def forecasts(db: Database, start: datetime, end: datetime) -> tuple[list[ForecastRow], list[str]]:
    """The forecast rows valid in [start, end], and the sources they came from."""
    rows = await db.fetch(
        "SELECT * FROM road_forecasts WHERE valid_at >= $1 AND valid_at <= $2 ORDER BY target_kind, target_id, "
        "valid_at", start, end)
    found = [ForecastRow(r["target_kind"], r["target_id"], r["valid_at"],
                         None if r["rst_c"] is None else float(r["rst_c"]), r["air_temp_c"], r["dew_point_c"],
                         r["rh_pct"], r["precip"]) for r in rows]
    return found, sorted({r["source"] for r in rows})


# --- what the sensors say ------------------------------------------------------------------

async def sensor_histories(db: Database, start: datetime, now: datetime) -> list[SensorHistory]:
    """Each active fixed road sensor with a place: its readings in (start, now], and when a quiet
    one was last heard from."""
    devices = await db.fetch(
        "SELECT device_id, lon, lat, road_segment_id FROM devices WHERE kind = 'road' AND status = 'active' "
        "AND NOT mobile AND lon IS NOT NULL AND lat IS NOT NULL ORDER BY device_id")
    rows = await db.fetch(
        "SELECT device_id, extract(epoch FROM ts) / 3600.0 AS h, surface_temp_c, air_temp_c, rh_pct, surface_state "
        "FROM road_readings WHERE device_id = ANY($1) AND ts > $2 AND ts <= $3 ORDER BY device_id, ts",
        [d["device_id"] for d in devices], start, now)
    by_device: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        by_device.setdefault(r["device_id"], []).append(r)
    quiet = [d["device_id"] for d in devices if d["device_id"] not in by_device]
    last_seen = {r["device_id"]: float(r["h"]) for r in await db.fetch(
        "SELECT device_id, extract(epoch FROM max(ts)) / 3600.0 AS h FROM road_readings WHERE device_id = ANY($1) "
        "AND ts <= $2 GROUP BY device_id", quiet, now)} if quiet else {}
    out = []
    for d in devices:
        readings = by_device.get(d["device_id"], [])
        columns = np.array([[float(r["h"]), *(np.nan if r[k] is None else float(r[k])
                                              for k in ("surface_temp_c", "air_temp_c", "rh_pct"))]
                            for r in readings], dtype=np.float64).reshape(-1, 4)
        out.append(SensorHistory(d["device_id"], d["lon"], d["lat"], columns[:, 0], columns[:, 1], columns[:, 2],
                                 columns[:, 3], tuple(r["surface_state"] for r in readings), d["road_segment_id"],
                                 last_seen.get(d["device_id"])))
    return out


async def mobile_points(db: Database, start: datetime, now: datetime) -> MobilePoints:
    """The gritters' (mobile sensors') located readings in (start, now]."""
    rows = await db.fetch(
        "SELECT r.device_id, extract(epoch FROM r.ts) / 3600.0 AS h, r.lon, r.lat, r.surface_temp_c, r.surface_state "
        "FROM road_readings r JOIN devices d USING (device_id) WHERE d.mobile AND r.ts > $1 AND r.ts <= $2 "
        "AND r.lon IS NOT NULL AND r.lat IS NOT NULL ORDER BY r.device_id, r.ts", start, now)
    if not rows:
        return MobilePoints()
    return MobilePoints([r["device_id"] for r in rows], np.array([float(r["h"]) for r in rows]),
                        np.array([r["lon"] for r in rows], dtype=np.float64),
                        np.array([r["lat"] for r in rows], dtype=np.float64),
                        np.array([np.nan if r["surface_temp_c"] is None else r["surface_temp_c"] for r in rows],
                                 dtype=np.float64),
                        [r["surface_state"] for r in rows])


# --- a run ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RouteRow:
    """A route decision as stored: the rules' decision, its reason as written, the latest start."""

    decision: RouteDecision
    reason: str
    latest_start: datetime | None
    duration_h: float
    plan: RoutePlan | None


def _nullable(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


async def save_run(db: Database, result: Assessment, routes: Sequence[RouteRow]) -> int:
    """One run with its segment decisions, route decisions and plans, in one transaction; its run_id."""
    d = result.decisions
    times = result.times
    async with db.transaction() as conn:
        run_id = int(await conn.fetchval(
            "INSERT INTO gritting_runs (as_of, window_start, window_end, inputs, warnings) VALUES ($1, $2, $3, $4, $5) "
            "RETURNING run_id", result.now, times[0], times[-1], json.dumps(result.inputs, default=str),
            json.dumps(result.warnings)))
        n = len(result.segment_ids)
        await conn.execute(
            "INSERT INTO gritting_segment_decisions (run_id, segment_id, route_id, rst_now_c, rst_min_c, rst_min_at, "
            "frost_point_c, surface_state, source, action, reason, spread_rate_g_m2, treatments, salt_kg, hazard_at) "
            "SELECT $1, * FROM unnest($2::text[], $3::text[], $4::real[], $5::real[], $6::timestamptz[], $7::real[], "
            "$8::text[], $9::text[], $10::text[], $11::text[], $12::real[], $13::smallint[], $14::real[], "
            "$15::timestamptz[])",
            run_id, result.segment_ids, result.route_of, [_nullable(v) for v in d.rst_now],
            [_nullable(v) for v in d.rst_min], [times[i] if i >= 0 else None for i in d.rst_min_index.tolist()],
            [_nullable(v) for v in d.frost_point_at_min], d.surface, result.source,
            [decide.ACTIONS[a] for a in d.action.tolist()], d.reason,
            [float(v) if a == decide.TREAT else None for v, a in zip(d.rate_g_m2.tolist(), d.action.tolist(),
                                                                       strict=True)],
            d.treatments.tolist(), d.salt_kg.tolist(), [d.hazard_at(k, times) for k in range(n)])
        for row in routes:
            await _save_route(conn, run_id, row)
    return run_id


async def _save_route(conn: Connection, run_id: int, row: RouteRow) -> None:
    route = row.decision
    await conn.execute(
        "INSERT INTO gritting_route_decisions (run_id, route_id, send, decision, reason, treat_segments, salt_kg, "
        "freeze_at, latest_start, treat_km, duration_min) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        run_id, route.route_id, route.send, route.decision, row.reason, route.treat_segments, route.salt_kg,
        route.freeze_at, row.latest_start, route.treat_km, row.duration_h * 60)
    plan = row.plan
    if plan is not None:
        await conn.execute(
            "INSERT INTO gritting_plans (run_id, route_id, feasible, distance_m, trips, geojson, instructions, notes, "
            "solve_s, seed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            run_id, route.route_id, plan.feasible, plan.distance_m, plan.trips, json.dumps(plan.geojson),
            json.dumps(plan.instructions), json.dumps(plan.notes), plan.solve_s, plan.seed)


# --- reading runs back ---------------------------------------------------------------------

async def latest_run(db: Database) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM gritting_runs ORDER BY run_id DESC LIMIT 1")


async def latest_run_id(db: Database) -> int | None:
    run_id = await db.fetchval("SELECT max(run_id) FROM gritting_runs")
    return None if run_id is None else int(run_id)


async def route_decisions(db: Database, run_id: int) -> list[asyncpg.Record]:
    """A run's route decisions with the route's name and its plan's summary."""
    return await db.fetch(
        "SELECT d.*, r.name, p.feasible, p.distance_m, p.trips, p.instructions, p.notes "
        "FROM gritting_route_decisions d LEFT JOIN gritting_routes r USING (route_id) "
        "LEFT JOIN gritting_plans p ON p.run_id = d.run_id AND p.route_id = d.route_id "
        "WHERE d.run_id = $1 ORDER BY d.route_id", run_id)


async def route_decision_in_force(db: Database, run_id: int, route_id: str) -> asyncpg.Record | None:
    """A run's decision for a route (decision, reason, name) and the last officer override of it
    (`overridden`, None when there is none); None when the run decided nothing for the route."""
    return await db.fetchrow(
        "SELECT d.decision, d.reason, r.name, (SELECT l.decision FROM gritting_decision_log l "
        "WHERE l.run_id = d.run_id AND l.route_id = d.route_id AND l.action = 'override' "
        "ORDER BY l.entry_id DESC LIMIT 1) AS overridden "
        "FROM gritting_route_decisions d LEFT JOIN gritting_routes r USING (route_id) "
        "WHERE d.run_id = $1 AND d.route_id = $2", run_id, route_id)


async def planned_sends(db: Database, run_id: int, route_like: str = "%") -> list[str]:
    """The routes a run decided to send and planned, whose id is LIKE `route_like`."""
    return [r["route_id"] for r in await db.fetch(
        "SELECT d.route_id FROM gritting_route_decisions d JOIN gritting_plans p USING (run_id, route_id) "
        "WHERE d.run_id = $1 AND d.send AND d.route_id LIKE $2 ORDER BY d.route_id", run_id, route_like)]


async def segment_decisions(db: Database, run_id: int, route_id: str | None = None,
                            actions: Sequence[str] = ("treat", "monitor")) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT d.*, s.name, s.priority FROM gritting_segment_decisions d LEFT JOIN road_segments s USING (segment_id) "
        "WHERE d.run_id = $1 AND ($2::text IS NULL OR d.route_id = $2) AND d.action = ANY($3) "
        "ORDER BY d.route_id, d.action DESC, d.segment_id", run_id, route_id, list(actions))


async def segment_action_counts(db: Database, run_id: int) -> dict[str, int]:
    """How many segments a run decided to treat, to monitor and to leave."""
    return {r["action"]: r["n"] for r in await db.fetch(
        "SELECT action, count(*) AS n FROM gritting_segment_decisions WHERE run_id = $1 GROUP BY action", run_id)}


async def latest_segment_temperatures(db: Database) -> list[asyncpg.Record]:
    """The latest run's estimate per segment, with the segment's name, priority and geometry."""
    return await db.fetch(
        "SELECT d.segment_id, s.name, s.priority, d.rst_now_c, d.rst_min_c, d.rst_min_at, d.frost_point_c, "
        "d.surface_state, d.action, r.as_of, s.geometry FROM gritting_segment_decisions d "
        "JOIN gritting_runs r USING (run_id) JOIN road_segments s USING (segment_id) "
        "WHERE d.run_id = (SELECT max(run_id) FROM gritting_runs) ORDER BY d.segment_id")


# --- plans ---------------------------------------------------------------------------------

async def plan_ids(db: Database, run_id: int) -> dict[str, int]:
    """Per route, the id of the run's (last) plan for it."""
    return {r["route_id"]: r["plan_id"] for r in await db.fetch(
        "SELECT route_id, max(plan_id) AS plan_id FROM gritting_plans WHERE run_id = $1 GROUP BY route_id", run_id)}


async def plan_id(db: Database, run_id: int, route_id: str) -> int | None:
    found = await db.fetchval("SELECT max(plan_id) FROM gritting_plans WHERE run_id = $1 AND route_id = $2",
                              run_id, route_id)
    return None if found is None else int(found)


async def route_plan(db: Database, route_id: str, run_id: int | None = None) -> asyncpg.Record | None:
    """A route's plan with its decision, from the given run (default: the latest run that planned it)."""
    return await db.fetchrow(
        "SELECT p.*, r.name, d.send, d.reason, d.freeze_at, d.latest_start, d.salt_kg, d.treat_km, d.duration_min "
        "FROM gritting_plans p LEFT JOIN gritting_routes r USING (route_id) "
        "LEFT JOIN gritting_route_decisions d ON d.run_id = p.run_id AND d.route_id = p.route_id "
        "WHERE p.route_id = $1 AND ($2::bigint IS NULL OR p.run_id = $2) ORDER BY p.plan_id DESC LIMIT 1",
        route_id, run_id)


async def plan_by_id(db: Querier, plan_id: int | None) -> asyncpg.Record | None:
    """A plan's GeoJSON, instructions and summary (a plan never changes once written)."""
    return await db.fetchrow("SELECT geojson, instructions, distance_m, trips, feasible, notes FROM gritting_plans "
                             "WHERE plan_id = $1", plan_id)


# --- the decision log ----------------------------------------------------------------------

async def append_officer_entry(db: Database, run_id: int, route_id: str, *, check: Callable[[str], None],
                               override: str | None, reason: str | None, officer: str,
                               user_id: str | None) -> asyncpg.Record:
    """Append an acknowledgement (override None) or an override, after `check(decision in force)`
    passes, in one transaction: the row lock on the route decision puts officers acting on the
    same decision one after the other."""
    async with db.transaction() as conn:
        computed = await conn.fetchval("SELECT decision FROM gritting_route_decisions WHERE run_id = $1 "
                                       "AND route_id = $2 FOR UPDATE", run_id, route_id)
        if computed is None:
            if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM gritting_runs WHERE run_id = $1)", run_id):
                raise RouteDecisionNotFound(f"run {run_id} has no decision for route {route_id!r}", field="route")
            raise RouteDecisionNotFound(f"no gritting run {run_id}", field="run")
        earlier = await conn.fetchval("SELECT decision FROM gritting_decision_log WHERE run_id = $1 AND route_id = $2 "
                                      "AND action = 'override' ORDER BY entry_id DESC LIMIT 1", run_id, route_id)
        before = earlier or computed
        check(before)
        row = await conn.fetchrow(
            "INSERT INTO gritting_decision_log (run_id, route_id, action, decision_before, decision, reason, officer, "
            "user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
            run_id, route_id, "acknowledge" if override is None else "override", before, override, reason, officer,
            user_id)
    assert row is not None
    return row


_RUNS = """
SELECT r.run_id, r.as_of, r.computed_at, r.window_start, r.window_end,
       r.inputs -> 'forecast' -> 'sources' AS forecast_sources,
       CASE jsonb_typeof(r.inputs -> 'sensors_used') WHEN 'array' THEN jsonb_array_length(r.inputs -> 'sensors_used')
       END AS sensors_used,
       CASE jsonb_typeof(r.inputs -> 'sensors_dead') WHEN 'array' THEN jsonb_array_length(r.inputs -> 'sensors_dead')
       END AS sensors_left_out,
       CASE jsonb_typeof(r.warnings) WHEN 'array' THEN jsonb_array_length(r.warnings) END AS warnings,
       (SELECT n.computed_at FROM gritting_runs n WHERE n.run_id > r.run_id ORDER BY n.run_id LIMIT 1) AS next_at
FROM gritting_runs r WHERE r.as_of >= $1 AND r.as_of < $2 ORDER BY r.as_of, r.run_id
"""

_NAME = "coalesce(nullif({u}.display_name, ''), {u}.username, {col})"
_JOBS = f"""
SELECT w.run_id, j.job_id, j.run_id AS job_run_id, j.route_id, j.state, j.created_at, j.started_at, j.completed_at,
       j.note, {_NAME.format(u='ua', col='j.assigned_to')} AS assigned_to,
       {_NAME.format(u='ub', col='j.assigned_by')} AS assigned_by,
       {_NAME.format(u='uc', col='j.completed_by')} AS completed_by,
       t.salt_kg, cardinality(t.segments) AS segments_treated
FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS w (run_id, since, until)
JOIN jobs j ON j.kind = 'gritting' AND ($4::text IS NULL OR j.route_id = $4) AND (
     j.run_id = w.run_id
     OR (j.created_at >= w.since AND (w.until IS NULL OR j.created_at < w.until)
         AND NOT EXISTS (SELECT 1 FROM gritting_runs o WHERE o.run_id = j.run_id AND o.run_id <> w.run_id)))
LEFT JOIN users ua ON ua.user_id = j.assigned_to
LEFT JOIN users ub ON ub.user_id = j.assigned_by
LEFT JOIN users uc ON uc.user_id = j.completed_by
LEFT JOIN gritting_treatments t ON t.job_id = j.job_id
ORDER BY j.created_at, j.job_id
"""


@dataclass(frozen=True)
class LogRows:
    """A period of the decision log as stored: the runs, their route decisions, the officers'
    entries and the gritting jobs around each run (see pipelines.gritting.log)."""

    runs: list[asyncpg.Record]
    decisions: list[asyncpg.Record]
    entries: list[asyncpg.Record]
    jobs: list[asyncpg.Record]


async def log_rows(db: Database, start: datetime, end: datetime, route_id: str | None = None) -> LogRows:
    """The runs whose as_of is in [start, end), oldest first, with what the log shows of each."""
    runs = await db.fetch(_RUNS, start, end)
    ids = [r["run_id"] for r in runs]
    decisions = await db.fetch(
        "SELECT d.run_id, d.route_id, coalesce(g.name, '') AS name, d.decision, d.reason, d.treat_segments, "
        "d.salt_kg, d.freeze_at, d.latest_start FROM gritting_route_decisions d LEFT JOIN gritting_routes g "
        "USING (route_id) WHERE d.run_id = ANY($1) AND ($2::text IS NULL OR d.route_id = $2) "
        "ORDER BY d.run_id, d.route_id", ids, route_id)
    entries = await db.fetch("SELECT * FROM gritting_decision_log WHERE run_id = ANY($1) AND ($2::text IS NULL "
                             "OR route_id = $2) ORDER BY entry_id", ids, route_id)
    jobs = await db.fetch(_JOBS, ids, [r["computed_at"] for r in runs], [r["next_at"] for r in runs], route_id)
    return LogRows(runs, decisions, entries, jobs)
