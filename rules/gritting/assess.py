"""One gritting run, pure: network, sensor histories, gritter points, forecasts in; decisions out.

The order of precedence for a segment's road surface temperature over the window:
1. a bought forecast for the segment, over the times it covers;
2. otherwise the fixed sensors, each projected over the window (its bought forecast where it
   has one, else the night-cooling extrapolation, rules.gritting.forecast), less the sensor's
   own thermal offset, distance-weighted (rules.gritting.estimate), plus the segment's offset;
   a segment with no sensor in range takes its route's average, then the network's;
3. a fresh gritter reading snapped to the segment overrides "now", and shifts the rest of the
   window by the same difference (the gritter saw that this road runs colder or warmer).
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
from rules.errors import InvalidReading
from rules.gritting import decide
from rules.gritting.decide import Conditions, Decisions, DecisionSettings, RouteDecision, RoutePolicy
from rules.gritting.estimate import fill_from_groups, frost_point_from_dew, idw
from rules.gritting.forecast import CoolingFit, ForecastRow, fit_cooling, on_grid, weather_class
from rules.gritting.network import RoadNetwork
from rules.gritting.rates import SNOW_HEAVY, SNOW_LIGHT, SNOW_NONE
from rules.gritting.sensors import SensorHistory, why_dead
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
           lines: SegmentLines | None = None) -> Assessment:
    times = time_grid(now, settings)
    grid_h = np.array([_hours(t) for t in times])
    now_h = grid_h[0]
    m = len(times)
    segs = network.segments
    n = len(segs)
    warnings: list[str] = []
    inputs: dict[str, Any] = {"settings": settings.model_dump(mode="json"), "segments": n,
                              "routes": [r.route_id for r in network.routes]}
    projection = lines.projection if lines else network.projection()
    lines = lines or SegmentLines.build([s.coords for s in segs], [s.oneway for s in segs], projection)
    seg_x, seg_y = lines.midpoints()
    index_of = {s.segment_id: k for k, s in enumerate(segs)}
    route_ids = sorted({s.route_id for s in segs if s.route_id is not None})
    route_index = {r: k for k, r in enumerate(route_ids)}
    group = np.array([route_index.get(s.route_id, -1) if s.route_id else -1 for s in segs], dtype=np.int64)

    by_sensor: dict[str, list[ForecastRow]] = defaultdict(list)
    by_segment: dict[str, list[ForecastRow]] = defaultdict(list)
    for row in forecasts:
        (by_sensor if row.target_kind == "sensor" else by_segment)[row.target_id].append(row)

    # --- fixed sensors: which to use, their projection over the window ------------------
    good: list[tuple[SensorHistory, CoolingFit]] = []
    dead: list[dict[str, str]] = []
    for sensor in sensors:
        why = why_dead(sensor, now_h, settings.sensor_stale_h)
        dew_now = _dew_point(sensor)
        if why is None:
            try:
                fit = fit_cooling(sensor.t_h, sensor.rst_c, now_h, frost_point_from_dew(dew_now).item())
            except ValueError as exc:
                why = str(exc)
        if why is not None:
            dead.append({"device_id": sensor.device_id, "why": why})
            continue
        good.append((sensor, fit))
    if dead:
        warnings.append(f"{len(dead)} road sensor(s) left out: " +
                        "; ".join(f"{d['device_id']}: {d['why']}" for d in dead[:LISTED]))
    night = settings.weather_class if settings.weather_class != "auto" else \
        weather_class([fit.slope_c_per_h for _, fit in good if fit.note is None or fit.slope_c_per_h < 0])
    offsets = np.array([s.offset_for(night) for s in segs], dtype=np.float64)

    k = len(good)
    sen_lon = np.array([s.lon for s, _ in good], dtype=np.float64)
    sen_lat = np.array([s.lat for s, _ in good], dtype=np.float64)
    sen_x, sen_y = projection.xy(sen_lon, sen_lat) if k else (np.zeros(0), np.zeros(0))
    base = np.full((k, m), np.nan)
    dew = np.full((k, m), np.nan)
    sen_state = np.full(k, decide.UNKNOWN, dtype=np.int64)
    sen_precip: list[tuple[int, int, int]] = []
    used: list[dict[str, Any]] = []
    unknown_offset: list[str] = []
    forecast_sensors = 0
    for j, (sensor, fit) in enumerate(good):
        own = _own_offset(sensor, index_of, segs, night, lines, float(sen_x[j]), float(sen_y[j]))
        if own is None:
            unknown_offset.append(sensor.device_id)
        series = fit.series(grid_h - now_h)
        rows = by_sensor.get(sensor.device_id, [])
        method = "extrapolated" if fit.note is None else f"held level ({fit.note})"
        if rows:
            bought = on_grid(rows, grid_h)
            series = np.where(np.isfinite(bought), bought, series)
            forecast_sensors += 1
            method = "forecast"
        base[j] = series - (own or 0.0)
        dew[j] = _forecast_dew(rows, grid_h, _dew_point(sensor))
        sen_state[j] = STATE_CODE.get(sensor.latest_state or "", decide.UNKNOWN)
        sen_precip.append(_precip(rows, grid_h))
        used.append({"device_id": sensor.device_id, "rst_now_c": round(fit.rst_now, 2),
                     "cooling_c_per_h": round(fit.slope_c_per_h, 2), "own_offset_c": own, "projection": method})
    if unknown_offset:
        warnings.append(f"{len(unknown_offset)} sensor(s) with no segment (registry road_segment_id, or a segment "
                        f"within {SENSOR_SEGMENT_M:g} m): own thermal offset taken as 0: {_listed(unknown_offset)}")
    inputs.update(sensors_used=used, sensors_dead=dead, weather_class=night,
                  forecast={"sensors": forecast_sensors, "segments": sum(1 for s in by_segment if s in index_of),
                            "rows": len(forecasts)})
    if not good:
        warnings.append("no working road sensor: temperatures only from forecasts and the gritter")

    weighted = idw(seg_x, seg_y, sen_x, sen_y, [base], settings.sensor_range_m,
                   nearest_mask=sen_state != decide.UNKNOWN)
    humid = np.flatnonzero(np.isfinite(dew).any(axis=1))      # sensors that know the air's humidity
    dew_humid = dew[humid]
    steady = np.array_equal(dew_humid, np.repeat(dew_humid[:, :1], m, axis=1), equal_nan=True)  # no forecast
    dew_seg = idw(seg_x, seg_y, sen_x[humid], sen_y[humid], [dew_humid[:, :1] if steady else dew_humid],
                  settings.sensor_range_m).values[0]
    dew_seg = np.repeat(dew_seg, m, axis=1) if steady else dew_seg
    est = weighted.values[0]
    covered = weighted.used > 0
    est, by_route, overall = fill_from_groups(est, covered, group)
    dew_seg, _, _ = fill_from_groups(dew_seg, np.asarray(np.isfinite(dew_seg).any(axis=1)), group)
    source: npt.NDArray[np.object_] = np.where(covered, "sensors", np.where(by_route, "route_average",
                                                   np.where(overall, "network_average", "none"))).astype(object)
    if by_route.any() or overall.any():
        far = [segs[i].segment_id for i in np.flatnonzero(by_route | overall)]
        warnings.append(f"{len(far)} segment(s) with no sensor within {settings.sensor_range_m:g} m: "
                        f"{int(by_route.sum())} took their route's average, {int(overall.sum())} the network's: "
                        f"{_listed(far)}")
    rst = est + offsets[:, None]
    state = np.where(weighted.nearest >= 0, sen_state[np.maximum(weighted.nearest, 0)], decide.UNKNOWN) \
        if k else np.full(n, decide.UNKNOWN, dtype=np.int64)
    rain_from = np.full(n, m, dtype=np.int64)
    snow = np.full(n, SNOW_NONE, dtype=np.int64)
    snow_from = np.full(n, m, dtype=np.int64)
    if k:
        precip = np.array(sen_precip, dtype=np.int64).reshape(k, 3)
        near = weighted.nearest
        has = near >= 0
        rain_from[has], snow[has], snow_from[has] = precip[near[has]].T

    # --- bought forecasts per segment ---------------------------------------------------
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
            source[i] = "forecast"
        dew_seg[i] = _forecast_dew(rows, grid_h, float(dew_seg[i, 0]))
        rain_from[i], snow[i], snow_from[i] = _precip(rows, grid_h)

    # --- the gritter ---------------------------------------------------------------------
    gritted = _gritter(mobile, lines, now_h, settings, rst, state, source, warnings, inputs)
    inputs["gritter_segments"] = gritted

    conditions = Conditions(times, rst, frost_point_from_dew(dew_seg), state.astype(np.int64), rain_from, snow,
                            snow_from, np.array([s.length_m for s in segs]), np.array([s.width_m for s in segs]))
    decisions = decide.decide_segments(conditions, DecisionSettings(
        settings.trigger_c, settings.monitor_margin_c, settings.frost_margin_c, settings.prewet))
    policy = RoutePolicy(settings.send_priority, settings.send_share)
    priority = np.array([s.priority for s in segs], dtype=np.int64)
    names = [s.name for s in segs]
    length = np.array([s.length_m for s in segs])
    routes = [decide.decide_route(r.route_id, np.flatnonzero(group == route_index[r.route_id])
                                  if r.route_id in route_index else np.zeros(0, dtype=np.int64),
                                  priority, names, decisions, length, times, policy) for r in network.routes]
    return Assessment(now, times, [s.segment_id for s in segs], [s.route_id for s in segs], decisions,
                      [str(x) for x in source], routes, night, warnings, inputs)


def _dew_point(sensor: SensorHistory) -> float:
    air, rh = sensor.latest(sensor.air_c), sensor.latest(sensor.rh_pct)
    if not (math.isfinite(air) and math.isfinite(rh)):
        return float("nan")
    try:
        return float(psychro.dew_point(air, rh))
    except InvalidReading:
        return float("nan")


def _forecast_dew(rows: Sequence[ForecastRow], grid_h: FloatArray, fallback: float) -> FloatArray:
    """Dew point over the grid: the forecast's (given, or from air and RH), else held at `fallback`."""
    out = np.full(grid_h.shape, fallback)
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


def _own_offset(sensor: SensorHistory, index_of: dict[str, int], segs: Sequence[Any], night: str,
                lines: SegmentLines, x: float, y: float) -> float | None:
    if sensor.segment_id is not None and sensor.segment_id in index_of:
        return float(segs[index_of[sensor.segment_id]].offset_for(night))
    import shapely

    if len(lines.lines) == 0:
        return None
    near = lines.tree.query_nearest(shapely.Point(x, y), max_distance=SENSOR_SEGMENT_M)
    return float(segs[int(near[0])].offset_for(night)) if len(near) else None


def _gritter(mobile: MobilePoints, lines: SegmentLines, now_h: float, settings: GrittingSettings,
             rst: FloatArray, state: IntArray, source: npt.NDArray[np.object_], warnings: list[str],
             inputs: dict[str, Any]) -> int:
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
            rst[seg, 0] = value
            source[seg] = "gritter"
            touched += 1
        states = [mobile.states[p] for p in this_pass if mobile.states[p]]
        if states:
            state[seg] = STATE_CODE.get(str(states[-1]), int(state[seg]))
    return touched
