"""The bins runner: bin readings in, priorities, events and collection plans out (the adapter).

One run reads every active bin's readings of the last `lookback` days, its settings and
complaints; computes forecasts, fire/tilt events and priorities (rules.bins.assess); writes
one priority row per bin keyed by the time the data runs to (stamped with the time it was
computed); records new events for alerts; and, for each depot in `bin_depots`, plans the
next shift (rules.routing.plan) and stores the plan with its stops. Running it twice for
the same minute rewrites the priorities and adds another plan row (plans keep history).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from cityops.storage import Database
from rules.bins.assess import (
    DEFAULT_SHIFT_START,
    BinInput,
    FleetAssessment,
    assess_fleet,
    calibration_for,
    next_shift,
)
from rules.errors import InvalidBinSetup, RoutingError
from rules.routing.plan import CollectionPlan, Fleet, PlanBin, plan_collection

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
    bins = await _bins(db, now, settings)
    depots = await db.fetch("SELECT * FROM bin_depots ORDER BY depot_id")
    fleet = assess_fleet([b.data for b in bins], now, depots[0]["shift_start"] if depots else DEFAULT_SHIFT_START,
                         settings.threshold)
    report.bins, report.mandatory = len(bins), int(fleet.priorities.mandatory.sum())
    report.unknown = int(fleet.priorities.unknown.sum())
    report.new_events = await _write_assessments(db, bins, fleet, now)
    if settings.plan:
        for depot in depots:
            plan, shift_start = _plan_depot(depot, depots[0]["depot_id"], bins, fleet, now, settings)
            await _write_plan(db, depot, shift_start, plan)
            report.plans.append(f"depot {depot['depot_id']}: {len(plan.visited)} bins on {len(plan.routes)} trucks, "
                                f"{plan.distance_m / 1000:.1f} km" + ("" if plan.feasible else " (NOT feasible)"))
    report.seconds = time.perf_counter() - began
    log.info("%s", report.summary())
    return report


async def _bins(db: Database, now: datetime, settings: BinsRunSettings) -> list[_Bin]:
    rows = await db.fetch(
        "SELECT d.device_id, d.lon, d.lat, d.bin_depth_mm, d.sensor_height_mm, d.sensor_type, "
        "s.bin_type, s.place, s.volume_l, s.collection_weekdays, s.depot_id, "
        "(SELECT count(*) FROM bin_complaints c WHERE c.device_id = d.device_id AND c.reported_at > $1) AS complaints "
        "FROM devices d LEFT JOIN bin_settings s ON s.device_id = d.device_id "
        "WHERE d.kind = 'bin' AND d.status = 'active' ORDER BY d.device_id", now - settings.complaint_window)
    # a crew's recorded collection (bin_collections, from a completed job) joins the readings as an
    # empty bin, so the forecast sees the emptying even before the sensor reports again
    readings = await db.fetch(
        "SELECT device_id, extract(epoch FROM ts) / 3600.0 AS h, distance_mm, fill_fraction, temp_c, tilt_deg "
        "FROM bin_readings WHERE ts > $1 AND ts <= $2 UNION ALL "
        "SELECT device_id, extract(epoch FROM collected_at) / 3600.0, NULL::real, 0::real, NULL::real, NULL::real "
        "FROM bin_collections WHERE collected_at > $1 AND collected_at <= $2 ORDER BY device_id, h",
        now - settings.lookback, now)
    by_device: dict[str, list[asyncpg.Record]] = {}
    for r in readings:
        by_device.setdefault(r["device_id"], []).append(r)
    return [_bin(row, by_device.get(row["device_id"], [])) for row in rows]


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
                settings: BinsRunSettings) -> tuple[CollectionPlan, datetime]:
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
        plan = plan_collection(stops, fleet, seed=settings.seed, time_limit_s=settings.time_limit_s,
                               max_iterations=settings.max_iterations)
    except RoutingError as exc:
        plan = CollectionPlan([], [s.device_id for s in stops if not s.mandatory],
                              [s.device_id for s in stops if s.mandatory], False, 0, 0.0, [f"no plan: {exc}"])
    return plan, shift_start


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


async def _write_assessments(db: Database, bins: list[_Bin], fleet: FleetAssessment, now: datetime) -> int:
    forecasts = [a.forecast for a in fleet.assessed]
    events = [e for a in fleet.assessed for e in a.events]
    priorities = fleet.priorities
    async with db.transaction() as conn:
        await conn.execute(_WRITE_PRIORITIES, [b.data.device_id for b in bins], now, [f.status for f in forecasts],
                           *([_nullable(getattr(f, name)) for f in forecasts]
                             for name in ("fill_now", "hours_to_threshold", "hours_low", "hours_high",
                                          "overflow_risk")),
                           priorities.score.tolist(), priorities.mandatory.tolist(), fleet.reasons())
        status = await conn.execute(_WRITE_EVENTS, [e.device_id for e in events], [e.at_h for e in events],
                                    [e.kind for e in events], [e.value for e in events], [e.message for e in events])
    return int(status.split()[-1])


async def _write_plan(db: Database, depot: asyncpg.Record, shift_start: datetime, plan: CollectionPlan) -> None:
    geojson: list[dict[str, Any]] = [r.geojson((depot["lon"], depot["lat"])) for r in plan.routes]
    stops = [(r.truck, seq, s) for r in plan.routes for seq, s in enumerate(r.stops, start=1)]
    async with db.transaction() as conn:
        plan_id = await conn.fetchval(
            "INSERT INTO bin_plans (depot_id, shift_start, feasible, distance_m, solve_s, skipped, missed, notes, "
            "geojson) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING plan_id",
            depot["depot_id"], shift_start, plan.feasible, plan.distance_m, plan.seconds, json.dumps(plan.skipped),
            json.dumps(plan.missed_mandatory), json.dumps(plan.notes), json.dumps(geojson))
        await conn.execute(
            "INSERT INTO bin_plan_stops (plan_id, truck, seq, device_id, arrive, depart, trip, load_after_l) "
            "SELECT $1, * FROM unnest($2::int[], $3::int[], $4::text[], $5::timestamptz[], $6::timestamptz[], "
            "$7::int[], $8::int[])", plan_id, [t for t, _, _ in stops], [q for _, q, _ in stops],
            [s.device_id for _, _, s in stops], [s.arrive for _, _, s in stops], [s.leave for _, _, s in stops],
            [s.trip for _, _, s in stops], [s.load_after_l for _, _, s in stops])
