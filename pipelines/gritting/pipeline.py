"""The gritting runner: network, road readings and forecasts in; decisions and route plans out.

The adapter around rules.gritting (which is pure): it loads the road network, the fixed
road sensors' recent readings, fresh gritter readings and the bought forecasts for the
window; runs rules.gritting.assess; plans each route to send (rules.gritting.plan, PyVRP);
and writes one `gritting_runs` row (inputs: sensors used, dead sensors and why, forecast
source, settings; warnings) with its segment decisions, route decisions and plans, in one
transaction. It also imports road networks and forecasts (`cityops roads ...`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from cityops.settings import GrittingSettings
from cityops.storage import Database
from rules.errors import InvalidForecast, InvalidRateMatrix
from rules.gritting import decide
from rules.gritting.assess import Assessment, MobilePoints, assess
from rules.gritting.decide import RouteDecision, latest_start
from rules.gritting.energy import SPIN_UP_HOURS
from rules.gritting.forecast import AREA_ALL, ForecastRow
from rules.gritting.network import Depot, RoadNetwork, Route, Segment
from rules.gritting.plan import RoutePlan, Speeds, Treatment, plan_route
from rules.gritting.rates import MATRICES, RateMatrix, matrix_from_json
from rules.gritting.sensors import SensorHistory

log = logging.getLogger("pipelines.gritting.pipeline")


# --- the network ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportReport:
    segments: int
    depots: int
    routes: int
    new_segments: int
    pruned: int
    notes: tuple[str, ...]

    def summary(self) -> str:
        lines = [f"imported {self.segments} segments ({self.new_segments} new, {self.segments - self.new_segments} "
                 f"updated), {self.depots} depots, {self.routes} routes" +
                 (f"; removed {self.pruned} segments not in the file" if self.pruned else "")]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


async def save_network(db: Database, network: RoadNetwork, *, prune: bool = False) -> ImportReport:
    """Upsert depots, routes and segments in one transaction (a re-import updates in place)."""
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
    return ImportReport(len(segs), len(network.depots), len(network.routes), len(segs) - int(known), pruned,
                        network.notes)


_network_cache: dict[str, tuple[tuple[Any, ...], RoadNetwork]] = {}


async def _current_network(db: Database) -> RoadNetwork:
    """The stored network, kept between runs while it is unchanged (its arrays and spatial index are
    built once per network object: a city's 50,000 segments take about 0.1 s)."""
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM road_segments), (SELECT max(updated_at) FROM road_segments), "
        "(SELECT count(*) FROM gritting_routes), (SELECT max(updated_at) FROM gritting_routes), "
        "(SELECT count(*) FROM road_depots), (SELECT max(updated_at) FROM road_depots)")
    version = tuple(row) if row is not None else ()
    cached = _network_cache.get(db.url)
    if cached is not None and cached[0] == version:
        return cached[1]
    network = await load_network(db)
    _network_cache[db.url] = (version, network)
    return network


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

async def save_forecast(db: Database, rows: Sequence[ForecastRow], source: str) -> int:
    """Store a checked forecast (replacing the same target and time); unknown targets refuse the file."""
    sensors = sorted({r.target_id for r in rows if r.target_kind == "sensor"})
    segments = sorted({r.target_id for r in rows if r.target_kind == "segment"})
    areas = sorted({r.target_id for r in rows if r.target_kind == "area" and r.target_id != AREA_ALL})
    known_sensors = {r["device_id"] for r in await db.fetch(
        "SELECT device_id FROM devices WHERE kind = 'road' AND device_id = ANY($1)", sensors)}
    known_segments = {r["segment_id"] for r in await db.fetch(
        "SELECT segment_id FROM road_segments WHERE segment_id = ANY($1)", segments)}
    known_areas = {r["route_id"] for r in await db.fetch(
        "SELECT route_id FROM gritting_routes WHERE route_id = ANY($1)", areas)}
    unknown = [f"sensor {s}" for s in sensors if s not in known_sensors] + \
        [f"segment {s}" for s in segments if s not in known_segments] + \
        [f"area {a} (not a route id, nor {AREA_ALL!r})" for a in areas if a not in known_areas]
    if unknown:
        raise InvalidForecast(f"{source}: {len(unknown)} unknown target(s), nothing imported: "
                              f"{', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}", source=source,
                              hint="sensor_id is a road device in the registry (cityops device list); segment_id "
                                   "a segment of the imported network (cityops roads show --segments)")
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
    return len(rows)


# --- the run -------------------------------------------------------------------------------

@dataclass
class GrittingRunReport:
    as_of: datetime
    run_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    routes: list[str] = field(default_factory=list)
    warnings: int = 0
    seconds: float = 0.0
    message: str | None = None

    def summary(self) -> str:
        if self.message:
            return f"gritting: {self.message}"
        counts = ", ".join(f"{self.counts.get(a, 0)} {a}" for a in ("treat", "monitor", "none"))
        routes = "; ".join(self.routes) or "no gritting routes defined"
        return (f"gritting: run {self.run_id} as of {self.as_of:%Y-%m-%d %H:%M} UTC: {sum(self.counts.values())} "
                f"segments ({counts}); {routes}; {self.warnings} warning(s) in gritting_runs "
                f"({self.seconds:.2f} s)")


async def run_gritting(db: Database, now: datetime | None = None, settings: GrittingSettings | None = None, *,
                       plan: bool = True, max_iterations: int | None = None) -> GrittingRunReport:
    """Decide, plan and store one gritting run as of `now` (default: the current time)."""
    settings = settings or GrittingSettings()
    began = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    report = GrittingRunReport(as_of=now)
    network = await _current_network(db)
    if not network.segments:
        report.message = "no road network imported yet: nothing to decide (cityops roads import FILE.geojson)"
        return report
    sensors = await _sensor_histories(db, now, settings)
    mobile = await _mobile_points(db, now, settings)
    forecasts, sources = await _forecasts(db, now, settings)
    result = assess(network, sensors, mobile, forecasts, now, settings, matrix=rate_matrix(settings))
    result.inputs["forecast"]["sources"] = sources
    plans: dict[str, RoutePlan] = {}
    durations: dict[str, float] = {}
    for decision in result.routes:
        route = next(r for r in network.routes if r.route_id == decision.route_id)
        if decision.send and plan:
            plans[route.route_id] = plan_route(
                network, route, _treatments(result, route.route_id), seed=settings.seed,
                time_limit_s=settings.plan_seconds,
                max_iterations=max_iterations if max_iterations is not None else settings.plan_iterations,
                speeds=Speeds(settings.spreading_kmh, settings.deadhead_kmh, settings.reload_min))
            durations[route.route_id] = plans[route.route_id].duration_h
        else:
            durations[route.route_id] = decision.treat_km / settings.spreading_kmh / route.vehicles
    report.run_id = await _write_run(db, result, plans, durations)
    report.counts = result.counts()
    report.warnings = len(result.warnings)
    for decision in result.routes:
        start = latest_start(decision.freeze_at, durations[decision.route_id])
        outcome = {"send": "SEND", "unknown": "UNKNOWN (decide by patrol)"}.get(decision.decision, "not sent")
        text = f"{decision.route_id} {outcome}"
        if decision.send and start is not None:
            text += f" (start by {start:%H:%M})"
        if decision.route_id in plans and not plans[decision.route_id].feasible:
            text += " (plan NOT feasible, see notes)"
        report.routes.append(text)
    report.seconds = time.perf_counter() - began
    log.info("%s", report.summary())
    return report


def rate_matrix(settings: GrittingSettings) -> RateMatrix:
    """The spread-rate matrix the settings name, or the council's own file."""
    path = settings.rate_matrix_file
    if path is None:
        return MATRICES[settings.rate_matrix]
    try:
        return matrix_from_json(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRateMatrix(f"cannot read the rate matrix file {path}: {exc}") from None


def _treatments(result: Assessment, route_id: str) -> dict[str, Treatment]:
    d = result.decisions
    out = {}
    for k, seg in enumerate(result.segment_ids):
        if result.route_of[k] == route_id and d.action[k] == decide.TREAT:
            passes = max(1, int(d.treatments[k]))
            out[seg] = Treatment(float(d.per_pass_g_m2[k]), passes, float(d.salt_kg[k]) / passes)
    return out


async def _sensor_histories(db: Database, now: datetime, settings: GrittingSettings) -> list[SensorHistory]:
    devices = await db.fetch(
        "SELECT device_id, lon, lat, road_segment_id FROM devices WHERE kind = 'road' AND status = 'active' "
        "AND NOT mobile AND lon IS NOT NULL AND lat IS NOT NULL ORDER BY device_id")
    lookback = timedelta(hours=max(settings.sensor_stale_h, SPIN_UP_HOURS + 1.0))
    rows = await db.fetch(
        "SELECT device_id, extract(epoch FROM ts) / 3600.0 AS h, surface_temp_c, air_temp_c, rh_pct, surface_state "
        "FROM road_readings WHERE device_id = ANY($1) AND ts > $2 AND ts <= $3 ORDER BY device_id, ts",
        [d["device_id"] for d in devices], now - lookback, now)
    by_device: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        by_device[r["device_id"]].append(r)
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


async def _mobile_points(db: Database, now: datetime, settings: GrittingSettings) -> MobilePoints:
    rows = await db.fetch(
        "SELECT r.device_id, extract(epoch FROM r.ts) / 3600.0 AS h, r.lon, r.lat, r.surface_temp_c, r.surface_state "
        "FROM road_readings r JOIN devices d USING (device_id) WHERE d.mobile AND r.ts > $1 AND r.ts <= $2 "
        "AND r.lon IS NOT NULL AND r.lat IS NOT NULL ORDER BY r.device_id, r.ts",
        now - timedelta(minutes=settings.gritter_fresh_min), now)
    if not rows:
        return MobilePoints()
    return MobilePoints([r["device_id"] for r in rows], np.array([float(r["h"]) for r in rows]),
                        np.array([r["lon"] for r in rows], dtype=np.float64),
                        np.array([r["lat"] for r in rows], dtype=np.float64),
                        np.array([np.nan if r["surface_temp_c"] is None else r["surface_temp_c"] for r in rows],
                                 dtype=np.float64),
                        [r["surface_state"] for r in rows])


async def _forecasts(db: Database, now: datetime, settings: GrittingSettings) -> tuple[list[ForecastRow], list[str]]:
    rows = await db.fetch(
        "SELECT * FROM road_forecasts WHERE valid_at >= $1 AND valid_at <= $2 ORDER BY target_kind, target_id, "
        "valid_at", now - timedelta(hours=3), now + timedelta(hours=settings.window_h + 3))
    forecasts = [ForecastRow(r["target_kind"], r["target_id"], r["valid_at"],
                             None if r["rst_c"] is None else float(r["rst_c"]), r["air_temp_c"], r["dew_point_c"],
                             r["rh_pct"], r["precip"]) for r in rows]
    return forecasts, sorted({r["source"] for r in rows})


def _nullable(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


async def _write_run(db: Database, result: Assessment, plans: dict[str, RoutePlan], durations: dict[str, float]
                     ) -> int:
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
        for route in result.routes:
            await _write_route(conn, run_id, route, plans.get(route.route_id), durations[route.route_id], result.now)
    return run_id


async def _write_route(conn: Any, run_id: int, route: RouteDecision, plan: RoutePlan | None, duration_h: float,
                       now: datetime) -> None:
    start = latest_start(route.freeze_at, duration_h)
    reason = route.reason
    if route.send and start is not None:
        reason += (f". Treatment takes about {duration_h * 60:.0f} min"
                   f"{'' if plan else ' (spreading only: no plan)'}; first hazard {route.freeze_at:%H:%M} UTC, "
                   f"latest start {start:%H:%M} UTC")
        if start < now:
            reason += ": LATE, start now"
    await conn.execute(
        "INSERT INTO gritting_route_decisions (run_id, route_id, send, decision, reason, treat_segments, salt_kg, "
        "freeze_at, latest_start, treat_km, duration_min) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        run_id, route.route_id, route.send, route.decision, reason, route.treat_segments, route.salt_kg,
        route.freeze_at, start, route.treat_km, duration_h * 60)
    if plan is not None:
        await conn.execute(
            "INSERT INTO gritting_plans (run_id, route_id, feasible, distance_m, trips, geojson, instructions, notes, "
            "solve_s, seed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            run_id, route.route_id, plan.feasible, plan.distance_m, plan.trips, json.dumps(plan.geojson),
            json.dumps(plan.instructions), json.dumps(plan.notes), plan.solve_s, plan.seed)


# --- reading back -------------------------------------------------------------------------

async def latest_run(db: Database) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM gritting_runs ORDER BY run_id DESC LIMIT 1")


async def route_decisions(db: Database, run_id: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT d.*, r.name, p.feasible, p.distance_m, p.trips, p.instructions, p.notes "
        "FROM gritting_route_decisions d LEFT JOIN gritting_routes r USING (route_id) "
        "LEFT JOIN gritting_plans p ON p.run_id = d.run_id AND p.route_id = d.route_id "
        "WHERE d.run_id = $1 ORDER BY d.route_id", run_id)


async def segment_decisions(db: Database, run_id: int, route_id: str | None = None,
                            actions: Sequence[str] = ("treat", "monitor")) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT d.*, s.name, s.priority FROM gritting_segment_decisions d LEFT JOIN road_segments s USING (segment_id) "
        "WHERE d.run_id = $1 AND ($2::text IS NULL OR d.route_id = $2) AND d.action = ANY($3) "
        "ORDER BY d.route_id, d.action DESC, d.segment_id", run_id, route_id, list(actions))
