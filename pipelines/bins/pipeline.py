"""The bins pipeline: bin readings in, priorities, events and collection plans out.

One run reads through the store (pipelines.bins.store) every active bin's readings of the
last `lookback` days, its settings and complaints; computes forecasts, fire/tilt events and
priorities (rules.bins.assess, pure); writes one priority row per bin keyed by the time the
data runs to (stamped with the time it was computed); records new events for alerts; and,
for each depot in `bin_depots`, plans the next shift (rules.routing.plan) and stores the
plan with its stops. Plans follow the road network imported for gritting (road_segments,
read once per run; rules.routing.roads), each stop named by its street with directions from
the one before; with no network imported they are straight lines, and say so. Running it
twice for the same minute rewrites the priorities and adds another plan row (plans keep history).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np

from cityops.settings import BinsSettings
from cityops.storage import Database
from pipelines.bins import store
from pipelines.gritting.store import load_network
from rules.bins.assess import (
    DEFAULT_SHIFT_START,
    BinInput,
    FleetAssessment,
    assess_fleet,
    calibration_for,
    next_shift,
)
from rules.errors import InvalidBinSetup, RoutingError
from rules.gritting.network import RoadNetwork
from rules.routing.plan import CollectionPlan, Fleet, PlanBin, plan_collection
from rules.routing.roads import RoadMatrices, road_matrices

log = logging.getLogger("pipelines.bins.pipeline")

DEFAULT_VOLUME_L = 240
OPTIONAL_MIN_SCORE = 20.0      # optional bins below this are not offered to the plan


@dataclass(frozen=True)
class BinsRunSettings:
    lookback: timedelta = timedelta(days=28)
    threshold: float = 0.8
    complaint_window: timedelta = timedelta(days=14)
    plan: bool = True
    time_limit_s: float = 30.0
    max_iterations: int | None = 2_000
    seed: int = 0
    roads: BinsSettings = field(default_factory=BinsSettings)   # speeds by road class, snapping distance


@dataclass
class BinsRunReport:
    data_until: datetime
    bins: int = 0
    mandatory: int = 0
    unknown: int = 0
    new_events: int = 0
    plans: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        plans = "; ".join(self.plans) or "no depot configured (bin_depots): no plan"
        return (f"bins: {self.bins} assessed to {self.data_until:%Y-%m-%d %H:%M} UTC, {self.mandatory} must be "
                f"emptied, {self.unknown} unknown, {self.new_events} new fire/tilt events; {plans} "
                f"({self.seconds:.2f} s)")


@dataclass(frozen=True)
class _Bin:
    data: BinInput
    lon: float
    lat: float
    volume_l: int
    depot_id: str | None


async def run_bins(db: Database, now: datetime | None = None, settings: BinsRunSettings | None = None
                   ) -> BinsRunReport:
    settings = settings or BinsRunSettings()
    began = time.perf_counter()
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    report = BinsRunReport(data_until=now)
    bins = [_bin(row, readings) for row, readings in await store.active_bins(
        db, now, now - settings.lookback, now - settings.complaint_window)]
    depots = await store.depots(db)
    fleet = assess_fleet([b.data for b in bins], now, depots[0]["shift_start"] if depots else DEFAULT_SHIFT_START,
                         settings.threshold)
    report.bins, report.mandatory = len(bins), int(fleet.priorities.mandatory.sum())
    report.unknown = int(fleet.priorities.unknown.sum())
    report.new_events = await store.save_assessments(db, [b.data.device_id for b in bins], fleet, now)
    if settings.plan and depots:
        network = await load_network(db)             # may be empty: no network imported
        for depot in depots:
            plan, shift_start = _plan_depot(depot, depots[0]["depot_id"], bins, fleet, now, settings, network)
            await store.save_plan(db, depot, shift_start, plan)
            report.plans.append(f"depot {depot['depot_id']}: {len(plan.visited)} bins on {len(plan.routes)} trucks, "
                                f"{plan.distance_m / 1000:.1f} km" + ("" if plan.feasible else " (NOT feasible)"))
    report.seconds = time.perf_counter() - began
    log.info("%s", report.summary())
    return report


def _bin(row: asyncpg.Record, readings: list[asyncpg.Record]) -> _Bin:
    columns = np.array([[r["h"], *(np.nan if r[k] is None else r[k]
                                   for k in ("distance_mm", "fill_fraction", "temp_c", "tilt_deg"))]
                        for r in readings], dtype=np.float64).reshape(-1, 5)
    calibration = calibration_for(row["device_id"], row["sensor_height_mm"], row["bin_depth_mm"], row["sensor_type"])
    if isinstance(calibration, InvalidBinSetup):
        log.warning("bin %s: %s", row["device_id"], calibration)
    data = BinInput(row["device_id"], calibration, times_h=columns[:, 0], distance_mm=columns[:, 1],
                    fill_fraction=columns[:, 2], temp_c=columns[:, 3], tilt_deg=columns[:, 4],
                    bin_type=row["bin_type"] or "general", place=row["place"] or "",
                    complaints=int(row["complaints"]),
                    collection_weekdays=tuple(row["collection_weekdays"] or (0,)))
    return _Bin(data, row["lon"] if row["lon"] is not None else float("nan"),
                row["lat"] if row["lat"] is not None else float("nan"),
                row["volume_l"] or DEFAULT_VOLUME_L, row["depot_id"])


def _plan_depot(depot: asyncpg.Record, first_depot: str, bins: list[_Bin], assessment: FleetAssessment, now: datetime,
                settings: BinsRunSettings, network: RoadNetwork) -> tuple[CollectionPlan, datetime]:
    shift_start = next_shift(now, depot["shift_start"])
    priorities = assessment.priorities
    fleet = Fleet(depot["lon"], depot["lat"], depot["trucks"], depot["capacity_l"], shift_start,
                  shift_h=depot["shift_h"], break_min=depot["break_min"], speed_kmh=depot["speed_kmh"],
                  max_trips=depot["max_trips"])
    stops: list[PlanBin] = []
    for i, b in enumerate(bins):
        if (b.depot_id or first_depot) != depot["depot_id"] or not np.isfinite([b.lon, b.lat]).all():
            continue
        mandatory = bool(priorities.mandatory[i])
        if not mandatory and priorities.score[i] < OPTIONAL_MIN_SCORE:
            continue
        fill = assessment.assessed[i].forecast.fill_now
        load = b.volume_l if not np.isfinite(fill) else max(1, round(fill * b.volume_l))
        stops.append(PlanBin(b.data.device_id, b.lon, b.lat, int(load), mandatory, float(priorities.score[i])))
    try:
        roads = on_roads(network, fleet, stops, settings.roads) if stops else None
        plan = plan_collection(stops, fleet, seed=settings.seed, time_limit_s=settings.time_limit_s,
                               max_iterations=settings.max_iterations, roads=roads)
    except RoutingError as exc:
        plan = CollectionPlan([], [s.device_id for s in stops if not s.mandatory],
                              [s.device_id for s in stops if s.mandatory], False, 0, 0.0, [f"no plan: {exc}"])
    return plan, shift_start


def on_roads(network: RoadNetwork, fleet: Fleet, stops: list[PlanBin], settings: BinsSettings
             ) -> RoadMatrices | None:
    """The depot's and the bins' matrices over the road network; None when no network is imported."""
    if not network.segments:
        return None
    return road_matrices(network, [fleet.depot_lon, *(b.lon for b in stops)],
                         [fleet.depot_lat, *(b.lat for b in stops)], speeds_kmh=settings.speeds_kmh(),
                         snap_max_m=settings.snap_max_m, detour_factor=fleet.detour_factor,
                         fallback_kmh=fleet.speed_kmh)
