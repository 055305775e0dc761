"""One gritting run, pure: network, sensor histories, gritter points, forecasts in; decisions out.

The order of precedence for a segment's road surface temperature over the window:
1. a bought forecast for the segment, over the times it covers;
2. otherwise the fixed sensors, each projected over the window (its bought forecast where it
   has one, else the energy-balance night model, rules.gritting.energy, with its cautious
   bound), less the sensor's own thermal offset, distance-weighted (rules.gritting.estimate),
   plus the segment's offset; a segment with no sensor in range takes its route's average,
   then the network's;
3. a fresh gritter reading snapped to the segment overrides "now", and shifts the rest of the
   window by the same difference (the gritter saw that this road runs colder or warmer).
Precipitation in a forecast applies wherever the forecast is attached: its segment, the
segments its sensor serves (the nearest forecast-carrying sensor in range), or an area (a
route, or 'all'); the worst of those that apply wins, whatever the sensors can measure.
Every fallback, dead sensor and unsnapped point is written into `warnings` / `inputs`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from cityops.settings import GrittingSettings
from rules import psychro
from rules.gritting import decide, energy
from rules.gritting.decide import Conditions, Decisions, DecisionSettings, RouteDecision, RoutePolicy
from rules.gritting.estimate import fill_from_groups, frost_point_from_dew, idw
from rules.gritting.forecast import AREA_ALL, ForecastRow, on_grid, weather_class
from rules.gritting.network import RoadNetwork
from rules.gritting.rates import MATRICES, SNOW_HEAVY, SNOW_LIGHT, SNOW_NONE, RateMatrix
from rules.gritting.sensors import (
    NEIGHBOUR_MOVED_C,
    STUCK_HOURS,
    SensorHistory,
    flat_hours,
    movement,
    why_dead,
    why_stuck,
)
from rules.gritting.snap import SegmentLines, snap_points

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
STATE_CODE = {"dry": decide.DRY, "damp": decide.DAMP, "wet": decide.WET, "ice": decide.ICE}
SNOW_CODE = {"light_snow": SNOW_LIGHT, "heavy_snow": SNOW_HEAVY, "freezing_rain": SNOW_HEAVY}
SENSOR_SEGMENT_M = 50.0          # a sensor without a registered segment: the nearest within this
GRITTER_PASS_MIN = 10.0          # a segment's gritter value: the mean of its latest pass (this long)
LISTED = 20                      # names listed in one warning


@dataclass(frozen=True)
class MobilePoints:
    """Gritter readings, sorted by device then time (hours since the epoch)."""

    device: Sequence[str] = ()
    t_h: FloatArray = field(default_factory=lambda: np.zeros(0))
    lon: FloatArray = field(default_factory=lambda: np.zeros(0))
    lat: FloatArray = field(default_factory=lambda: np.zeros(0))
    rst_c: FloatArray = field(default_factory=lambda: np.zeros(0))
    states: Sequence[str | None] = ()


@dataclass
class Assessment:
    now: datetime
    times: list[datetime]
    segment_ids: list[str]
    route_of: list[str | None]
    decisions: Decisions
    source: list[str]
    routes: list[RouteDecision]
    weather_class: str
    warnings: list[str]
    inputs: dict[str, Any]

    def counts(self) -> dict[str, int]:
        return {name: int((self.decisions.action == code).sum()) for code, name in enumerate(decide.ACTIONS)}


def time_grid(now: datetime, settings: GrittingSettings) -> list[datetime]:
    steps = math.ceil(settings.window_h * 60 / settings.step_min)
    return [now + timedelta(minutes=settings.step_min * j) for j in range(steps + 1)]


def _hours(moment: datetime) -> float:
    return moment.timestamp() / 3600.0


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names[:LISTED]) + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def assess(network: RoadNetwork, sensors: Sequence[SensorHistory], mobile: MobilePoints,
           forecasts: Sequence[ForecastRow], now: datetime, settings: GrittingSettings,
           lines: SegmentLines | None = None, matrix: RateMatrix | None = None) -> Assessment:
    times = time_grid(now, settings)
    grid_h = np.array([_hours(t) for t in times])
    now_h = grid_h[0]
    m = len(times)
    segs = network.segments
    n = len(segs)
    warnings: list[str] = []
    matrix = matrix or MATRICES[settings.rate_matrix]
    inputs: dict[str, Any] = {"settings": settings.model_dump(mode="json"), "segments": n,
                              "routes": [r.route_id for r in network.routes], "rate_matrix": matrix.source}
    lines = lines or network.lines
    projection = lines.projection
    columns = network.columns
    seg_x, seg_y = lines.midpoints()
    index_of = columns.index_of
    route_ids = sorted({r for r in columns.route_of if r is not None})
    route_index = {r: k for k, r in enumerate(route_ids)}
    group = np.array([route_index.get(r, -1) if r else -1 for r in columns.route_of], dtype=np.int64)

    by_target: dict[str, dict[str, list[ForecastRow]]] = {"sensor": defaultdict(list), "segment": defaultdict(list),
                                                           "area": defaultdict(list)}
    for row in forecasts:
        by_target[row.target_kind][row.target_id].append(row)
    by_sensor, by_segment, by_area = by_target["sensor"], by_target["segment"], by_target["area"]

    # --- fixed sensors: which to use, and their night ------------------------------------------
    good, dead = _working_sensors(sensors, now_h, settings, projection)
    if dead:
        warnings.append(f"{len(dead)} road sensor(s) left out: " +
                        "; ".join(f"{d['device_id']}: {d['why']}" for d in dead[:LISTED]))
    k = len(good)
    night_model = energy.project([_night_input(s) for s in good], now_h, grid_h - now_h)
    night = settings.weather_class if settings.weather_class != "auto" else \
        weather_class([float(r) for r, note in zip(night_model.rate_c_per_h, night_model.note, strict=True)
                       if note is None])
    offsets = columns.offsets_for(night)

    sen_x, sen_y = projection.xy(np.array([s.lon for s in good], dtype=np.float64),
                                 np.array([s.lat for s in good], dtype=np.float64)) if k else (np.zeros(0), np.zeros(0))
    base = np.full((k, m), np.nan)
    base_low = np.full((k, m), np.nan)
    dew = np.full((k, m), np.nan)
    sen_state = np.full(k, decide.UNKNOWN, dtype=np.int64)
    sen_precip: list[tuple[int, int, int]] = []
    has_precip = np.zeros(k, dtype=bool)
    used: list[dict[str, Any]] = []
    unknown_offset: list[str] = []
    forecast_sensors = 0
    for j, sensor in enumerate(good):
        own = _own_offset(sensor, index_of, offsets, lines, float(sen_x[j]), float(sen_y[j]))
        if own is None:
            unknown_offset.append(sensor.device_id)
        central, low = night_model.central_c[j], night_model.lower_c[j]
        rows = by_sensor.get(sensor.device_id, [])
        note = night_model.note[j]
        method = "energy balance" if note is None else f"held level ({note})"
        if rows:
            bought = on_grid(rows, grid_h)
            central = np.where(np.isfinite(bought), bought, central)
            low = np.where(np.isfinite(bought), bought, low)
            forecast_sensors += 1
            method = "forecast"
        base[j] = central - (own or 0.0)
        base_low[j] = low - (own or 0.0)
        dew[j] = _forecast_dew(rows, grid_h, night_model.dew_c[j])
        sen_state[j] = STATE_CODE.get(sensor.latest_state or "", decide.UNKNOWN)
        sen_precip.append(_precip(rows, grid_h))
        has_precip[j] = sen_precip[-1][0] < m
        used.append({"device_id": sensor.device_id, "rst_now_c": round(float(central[0]), 2),
                     "cooling_c_per_h": round(float(night_model.rate_c_per_h[j]), 2),
                     "net_loss_w_m2": round(float(night_model.loss_w_m2[j]), 1),
                     "rst_min_c": round(float(np.nanmin(central)), 2), "bound_min_c": round(float(np.nanmin(low)), 2),
                     "own_offset_c": own, "projection": method})
    if unknown_offset:
        warnings.append(f"{len(unknown_offset)} sensor(s) with no segment (registry road_segment_id, or a segment "
                        f"within {SENSOR_SEGMENT_M:g} m): own thermal offset taken as 0: {_listed(unknown_offset)}")
    inputs.update(sensors_used=used, sensors_dead=dead, weather_class=night,
                  forecast={"sensors": forecast_sensors, "segments": sum(1 for s in by_segment if s in index_of),
                            "areas": sorted(by_area), "rows": len(forecasts)})
    if not good:
        warnings.append("no working road sensor: temperatures only from forecasts and the gritter")

    # the frost point (over ice below 0 degC) is weighed, not the dew point: one conversion per sensor
    weighted = idw(seg_x, seg_y, sen_x, sen_y, [base, base_low, frost_point_from_dew(dew)], settings.sensor_range_m,
                   nearest_masks=[sen_state != decide.UNKNOWN, has_precip])
    est, est_low, frost_seg = weighted.values
    covered = weighted.used > 0
    est, by_route, overall = fill_from_groups(est, covered, group)
    est_low, _, _ = fill_from_groups(est_low, covered, group)
    frost_seg, _, _ = fill_from_groups(frost_seg, np.asarray(np.isfinite(frost_seg).any(axis=1)), group)
    source: npt.NDArray[np.object_] = np.where(covered, "sensors", np.where(by_route, "route_average",
                                                   np.where(overall, "network_average", "none"))).astype(object)
    if by_route.any() or overall.any():
        far = [columns.ids[i] for i in np.flatnonzero(by_route | overall)]
        warnings.append(f"{len(far)} segment(s) with no sensor within {settings.sensor_range_m:g} m: "
                        f"{int(by_route.sum())} took their route's average, {int(overall.sum())} the network's: "
                        f"{_listed(far)}")
    rst = est + offsets[:, None]
    rst_low = est_low + offsets[:, None]
    nearest_state, nearest_precip = weighted.nearest
    state = np.where(nearest_state >= 0, sen_state[np.maximum(nearest_state, 0)], decide.UNKNOWN) \
        if k else np.full(n, decide.UNKNOWN, dtype=np.int64)
    precip = Precipitation.none(n, m)
    if k and has_precip.any():
        table = np.array(sen_precip, dtype=np.int64).reshape(k, 3)
        has = nearest_precip >= 0
        precip.worst(has, *table[nearest_precip[has]].T)
    for area, rows in by_area.items():
        members = np.ones(n, dtype=bool) if area == AREA_ALL else np.array([r == area for r in columns.route_of])
        if not members.any():
            warnings.append(f"forecast rows for area {area!r}: no such route (use a route id or {AREA_ALL!r}), ignored")
            continue
        precip.worst(members, *(np.full(int(members.sum()), v) for v in _precip(rows, grid_h)))

    # --- bought forecasts per segment ---------------------------------------------------------
    unknown_targets = sorted(t for t in by_segment if t not in index_of)
    if unknown_targets:
        warnings.append(f"forecast rows for {len(unknown_targets)} segment(s) not in the network, ignored: "
                        f"{_listed(unknown_targets)}")
    for target, rows in by_segment.items():
        i = index_of.get(target)
        if i is None:
            continue
        bought = on_grid(rows, grid_h)
        if np.isfinite(bought).any():
            rst[i] = np.where(np.isfinite(bought), bought, rst[i])
            rst_low[i] = np.where(np.isfinite(bought), bought, rst_low[i])
            source[i] = "forecast"
        bought_dew = _forecast_dew(rows, grid_h, np.full(m, np.nan))
        frost_seg[i] = np.where(np.isfinite(bought_dew), frost_point_from_dew(bought_dew), frost_seg[i])
        mask = np.zeros(n, dtype=bool)
        mask[i] = True
        precip.worst(mask, *(np.array([v]) for v in _precip(rows, grid_h)))

    # --- the gritter ---------------------------------------------------------------------------
    gritted = _gritter(mobile, lines, now_h, settings, rst, rst_low, state, source, warnings, inputs)
    inputs["gritter_segments"] = gritted

    conditions = Conditions(times, rst, frost_seg, state.astype(np.int64), precip.rain_from,
                            precip.snow, precip.snow_from, columns.length_m, columns.width_m, rst_low)
    decisions = decide.decide_segments(conditions, DecisionSettings(
        settings.trigger_c, settings.monitor_margin_c, settings.frost_margin_c, settings.salt, matrix))
    policy = RoutePolicy(settings.send_priority, settings.send_share, settings.in_winter(now))
    priority, names, length = columns.priority, columns.names, columns.length_m
    usable = ~np.isin(source, ("network_average", "none"))      # a far network average is no reading of a road
    routes = [decide.decide_route(r.route_id, np.flatnonzero(group == route_index[r.route_id])
                                  if r.route_id in route_index else np.zeros(0, dtype=np.int64),
                                  priority, names, decisions, length, times, policy, usable) for r in network.routes]
    return Assessment(now, times, list(columns.ids), list(columns.route_of), decisions,
                      [str(x) for x in source], routes, night, warnings, inputs)


@dataclass
class Precipitation:
    """Per segment: first grid index of rain or snow, the worst snow class, its first index (m: none)."""

    rain_from: IntArray
    snow: IntArray
    snow_from: IntArray

    @classmethod
    def none(cls, n: int, m: int) -> Precipitation:
        return cls(np.full(n, m, dtype=np.int64), np.full(n, SNOW_NONE, dtype=np.int64), np.full(n, m, dtype=np.int64))

    def worst(self, mask: npt.NDArray[np.bool_], rain_from: IntArray, snow: IntArray, snow_from: IntArray) -> None:
        """Combine a forecast's precipitation into the rows of `mask`: earliest rain, worst snow."""
        self.rain_from[mask] = np.minimum(self.rain_from[mask], rain_from)
        old_snow, old_from = self.snow[mask], self.snow_from[mask]
        worse = snow > old_snow
        same = (snow == old_snow) & (snow != SNOW_NONE)
        self.snow[mask] = np.where(worse, snow, old_snow)
        self.snow_from[mask] = np.where(worse, snow_from, np.where(same, np.minimum(old_from, snow_from), old_from))


def _night_input(sensor: SensorHistory) -> energy.SensorNight:
    n = sensor.t_h.size
    air = sensor.air_c if sensor.air_c.size == n else np.full(n, np.nan)
    rh = sensor.rh_pct if sensor.rh_pct.size == n else np.full(n, np.nan)
    ok = np.isfinite(air) & np.isfinite(rh) & (rh > 0) & (rh <= 100)
    dew = np.full(n, np.nan)
    if ok.any():
        dew[ok] = psychro.dew_point(air[ok], rh[ok])
    return energy.SensorNight(sensor.t_h, sensor.rst_c, air, dew)


def _working_sensors(sensors: Sequence[SensorHistory], now_h: float, settings: GrittingSettings, projection: Any
                     ) -> tuple[list[SensorHistory], list[dict[str, str]]]:
    """The sensors to use tonight, and those left out with the reason (stuck judged against neighbours)."""
    alive: list[SensorHistory] = []
    dead: list[dict[str, str]] = []
    for sensor in sensors:
        why = why_dead(sensor, now_h, settings.sensor_stale_h)
        if why is None:
            alive.append(sensor)
        else:
            dead.append({"device_id": sensor.device_id, "why": why})
    flat = np.array([flat_hours(s, now_h) for s in alive])
    if not (flat >= STUCK_HOURS).any():
        return alive, dead
    x, y = projection.xy(np.array([s.lon for s in alive], dtype=np.float64),
                         np.array([s.lat for s in alive], dtype=np.float64))
    good = []
    for j, sensor in enumerate(alive):
        why = None
        if flat[j] >= STUCK_HOURS:
            distance = np.hypot(x - x[j], y - y[j])
            near = np.flatnonzero((distance <= settings.sensor_range_m) & (flat < STUCK_HOURS))
            since = now_h - flat[j]
            moved = next((m for m in (movement(alive[i], since, now_h) for i in near[np.argsort(distance[near])])
                          if m >= NEIGHBOUR_MOVED_C), 0.0 if near.size else None)     # the nearest that moved
            why = why_stuck(float(flat[j]), float(sensor.rst_c[np.isfinite(sensor.rst_c)][-1]), moved)
        if why is None:
            good.append(sensor)
        else:
            dead.append({"device_id": sensor.device_id, "why": why})
    return good, dead


def _forecast_dew(rows: Sequence[ForecastRow], grid_h: FloatArray, fallback: FloatArray) -> FloatArray:
    """Dew point over the grid: the forecast's (given, or from air and RH), else `fallback`'s."""
    out = np.array(fallback, dtype=np.float64)
    with_dew = [r for r in rows if r.dew_point_c is not None]
    if with_dew:
        values = on_grid(with_dew, grid_h, "dew_point_c")
        out = np.where(np.isfinite(values), values, out)
    from_rh = [(r.valid_at, float(psychro.dew_point(r.air_temp_c, r.rh_pct))) for r in rows
               if r.dew_point_c is None and r.rh_pct is not None and r.air_temp_c is not None and r.rh_pct > 0]
    if from_rh:
        t = np.array([_hours(a) for a, _ in from_rh])
        order = np.argsort(t)
        v = np.array([d for _, d in from_rh])[order]
        inside = (grid_h >= t[order][0]) & (grid_h <= t[order][-1])
        out[inside] = np.interp(grid_h[inside], t[order], v)
    return out


def _precip(rows: Sequence[ForecastRow], grid_h: FloatArray) -> tuple[int, int, int]:
    """(first index of rain or snow, worst snow class, first index of that snow) in the window."""
    m = grid_h.size
    rain_from, snow, snow_from = m, SNOW_NONE, m
    step = grid_h[1] - grid_h[0] if m > 1 else 1.0
    for row in rows:
        t = _hours(row.valid_at)
        if row.precip == "none" or t < grid_h[0] - step or t > grid_h[-1]:
            continue
        index = int(np.clip(np.searchsorted(grid_h, t), 0, m - 1))
        rain_from = min(rain_from, index)
        code = SNOW_CODE.get(row.precip, SNOW_NONE)
        if code > snow:
            snow, snow_from = code, index
        elif code == snow and code != SNOW_NONE:
            snow_from = min(snow_from, index)
    return rain_from, snow, snow_from


def _own_offset(sensor: SensorHistory, index_of: dict[str, int], offsets: FloatArray, lines: SegmentLines,
                x: float, y: float) -> float | None:
    """The thermal offset of the segment a sensor watches: its registered one, or the nearest within
    SENSOR_SEGMENT_M; None when neither."""
    if sensor.segment_id is not None and sensor.segment_id in index_of:
        return float(offsets[index_of[sensor.segment_id]])
    import shapely

    if len(lines.lines) == 0:
        return None
    near = lines.tree.query_nearest(shapely.Point(x, y), max_distance=SENSOR_SEGMENT_M)
    return float(offsets[int(near[0])]) if len(near) else None


def _gritter(mobile: MobilePoints, lines: SegmentLines, now_h: float, settings: GrittingSettings,
             rst: FloatArray, rst_low: FloatArray, state: IntArray, source: npt.NDArray[np.object_],
             warnings: list[str], inputs: dict[str, Any]) -> int:
    """Override segments with fresh gritter readings; return how many segments it touched."""
    fresh = (mobile.t_h <= now_h) & (mobile.t_h >= now_h - settings.gritter_fresh_min / 60.0) \
        & np.isfinite(mobile.lon) & np.isfinite(mobile.lat)
    total = int(fresh.sum())
    inputs["gritter_points"] = {"fresh": total, "snapped": 0, "not_snapped": 0}
    if not total:
        return 0
    idx = np.flatnonzero(fresh)
    snapped = snap_points(lines, [mobile.device[i] for i in idx.tolist()], mobile.t_h[idx] * 3600.0, mobile.lon[idx],
                          mobile.lat[idx], settings.snap_tolerance_m)
    inputs["gritter_points"].update(snapped=total - snapped.unsnapped, not_snapped=snapped.unsnapped)
    if snapped.unsnapped:
        warnings.append(f"{snapped.unsnapped} of {total} fresh gritter point(s) more than "
                        f"{settings.snap_tolerance_m:g} m from any road: not snapped")
    by_segment: dict[int, list[int]] = defaultdict(list)
    for j, seg in enumerate(snapped.segment.tolist()):
        if seg >= 0:
            by_segment[seg].append(int(idx[j]))
    touched = 0
    for seg, points in by_segment.items():
        latest = max(mobile.t_h[p] for p in points)
        this_pass = [p for p in points if mobile.t_h[p] >= latest - GRITTER_PASS_MIN / 60.0]
        values = np.array([mobile.rst_c[p] for p in this_pass])
        values = values[np.isfinite(values)]
        if values.size:
            value = float(values.mean())
            shift = value - rst[seg, 0]
            rst[seg] = rst[seg] + shift if np.isfinite(shift) else np.full(rst.shape[1], value)
            rst_low[seg] = rst_low[seg] + shift if np.isfinite(shift) else np.full(rst.shape[1], value)
            rst[seg, 0] = rst_low[seg, 0] = value
            source[seg] = "gritter"
            touched += 1
        states = [mobile.states[p] for p in this_pass if mobile.states[p]]
        if states:
            state[seg] = STATE_CODE.get(str(states[-1]), int(state[seg]))
    return touched
