"""The gritting pipeline: network, road readings and forecasts in; decisions and route plans out.

It reads through the store (pipelines.gritting.store) the road network, the fixed road
sensors' recent readings, fresh gritter readings and the bought forecasts for the window;
runs rules.gritting.assess (pure); plans each route to send (rules.gritting.plan, PyVRP);
and writes through the store one `gritting_runs` row (inputs: sensors used, dead sensors and
why, forecast source, settings; warnings) with its segment decisions, route decisions and
plans, in one transaction. It also imports road networks and forecasts (`cityops roads ...`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cityops.settings import GrittingSettings
from cityops.storage import Database
from pipelines.gritting import store
from rules.errors import InvalidForecast, InvalidRateMatrix
from rules.gritting import decide
from rules.gritting.assess import Assessment, assess
from rules.gritting.decide import RouteDecision, latest_start
from rules.gritting.energy import SPIN_UP_HOURS
from rules.gritting.forecast import AREA_ALL, ForecastRow
from rules.gritting.network import RoadNetwork
from rules.gritting.plan import RoutePlan, Speeds, Treatment, plan_route
from rules.gritting.rates import MATRICES, RateMatrix, matrix_from_json

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
    known, pruned = await store.save_network(db, network, prune=prune)
    segments = len(network.segments)
    return ImportReport(segments, len(network.depots), len(network.routes), segments - known, pruned, network.notes)


_network_cache: dict[str, tuple[tuple[Any, ...], RoadNetwork]] = {}


async def _current_network(db: Database) -> RoadNetwork:
    """The stored network, kept between runs while it is unchanged (its arrays and spatial index are
    built once per network object: a city's 50,000 segments take about 0.1 s)."""
    version = await store.network_version(db)
    cached = _network_cache.get(db.url)
    if cached is not None and cached[0] == version:
        return cached[1]
    network = await store.load_network(db)
    _network_cache[db.url] = (version, network)
    return network


# --- forecasts -----------------------------------------------------------------------------

async def save_forecast(db: Database, rows: Sequence[ForecastRow], source: str) -> int:
    """Store a checked forecast (replacing the same target and time); unknown targets refuse the file."""
    sensors = sorted({r.target_id for r in rows if r.target_kind == "sensor"})
    segments = sorted({r.target_id for r in rows if r.target_kind == "segment"})
    areas = sorted({r.target_id for r in rows if r.target_kind == "area" and r.target_id != AREA_ALL})
    known = await store.known_targets(db, sensors, segments, areas)
    unknown = [f"sensor {s}" for s in sensors if s not in known.sensors] + \
        [f"segment {s}" for s in segments if s not in known.segments] + \
        [f"area {a} (not a route id, nor {AREA_ALL!r})" for a in areas if a not in known.areas]
    if unknown:
        raise InvalidForecast(f"{source}: {len(unknown)} unknown target(s), nothing imported: "
                              f"{', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}", source=source,
                              hint="sensor_id is a road device in the registry (cityops device list); segment_id "
                                   "a segment of the imported network (cityops roads show --segments)")
    await store.save_forecast(db, rows, source)
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
    lookback = timedelta(hours=max(settings.sensor_stale_h, SPIN_UP_HOURS + 1.0))
    sensors = await store.sensor_histories(db, now - lookback, now)
    mobile = await store.mobile_points(db, now - timedelta(minutes=settings.gritter_fresh_min), now)
    forecasts, sources = await store.forecasts(db, now - timedelta(hours=3),
                                               now + timedelta(hours=settings.window_h + 3))
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
    report.run_id = await store.save_run(db, result, [_route_row(r, plans.get(r.route_id), durations[r.route_id],
                                                                 result.now) for r in result.routes])
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


def _route_row(route: RouteDecision, plan: RoutePlan | None, duration_h: float, now: datetime) -> store.RouteRow:
    """The route decision as stored: its reason with the treatment time, the first hazard and
    the latest start (LATE when that has passed)."""
    start = latest_start(route.freeze_at, duration_h)
    reason = route.reason
    if route.send and start is not None:
        reason += (f". Treatment takes about {duration_h * 60:.0f} min"
                   f"{'' if plan else ' (spreading only: no plan)'}; first hazard {route.freeze_at:%H:%M} UTC, "
                   f"latest start {start:%H:%M} UTC")
        if start < now:
            reason += ": LATE, start now"
    return store.RouteRow(route, reason, start, duration_h, plan)

