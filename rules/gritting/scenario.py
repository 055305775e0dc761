"""One gritting decision from a file: the runner's own code (rules.gritting.assess) with no database.

A scenario (docs/gritting.md, "Deciding on a file") is a JSON object:

    {"now": ISO time,
     "network": <the GeoJSON FeatureCollection `cityops roads import` takes, with its routes>,
     "sensors": [{"sensor_id", "lon", "lat", "segment_id" (optional), "mobile" (optional, a gritter),
                  "readings": [<telemetry road readings: ts, surface_temp_c, air_temp_c, rh_pct,
                                surface_state, lat/lon on a gritter>]}],
     "forecasts": [<rows as `cityops roads forecast import` takes them, JSON form>],
     "settings": {<any CITYOPS_GRITTING__ setting, lower case>}}

`load_scenario` checks it all, naming the field of the first problem; `summary` turns the
assessment into the `--json` answer. Pure: parsing and deciding, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
from pydantic import ValidationError

from cityops.settings import GrittingSettings
from cityops.times import parse_utc
from contract.telemetry import RoadReading
from rules.errors import InvalidForecast, InvalidRoadNetwork, InvalidScenario
from rules.gritting import decide
from rules.gritting.assess import Assessment, MobilePoints
from rules.gritting.forecast import ForecastRow, parse_forecast
from rules.gritting.network import RoadNetwork, parse_network
from rules.gritting.sensors import SensorHistory

KEYS = {"now", "network", "sensors", "forecasts", "settings", "description", "expect", "source"}


@dataclass(frozen=True)
class Scenario:
    now: datetime
    network: RoadNetwork
    sensors: list[SensorHistory]
    mobile: MobilePoints
    forecasts: list[ForecastRow]
    settings: GrittingSettings


def load_scenario(data: Any, base: GrittingSettings | None = None) -> Scenario:
    """A checked scenario from parsed JSON; `base` settings under the scenario's own."""
    if not isinstance(data, Mapping):
        raise InvalidScenario(f"expected a JSON object, got {type(data).__name__}", field="(top)")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise InvalidScenario(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})",
                              field=unknown[0])
    now = _time(data.get("now"), "now")
    settings = _settings(data.get("settings", {}), base or GrittingSettings())
    if "network" not in data:
        raise InvalidScenario("missing: the road network GeoJSON, inline", field="network")
    try:
        network = parse_network(data["network"], "network")
    except InvalidRoadNetwork as exc:
        raise InvalidScenario(str(exc), field="network") from None
    sensors, mobile = _sensors(data.get("sensors", []))
    forecasts: list[ForecastRow] = []
    if data.get("forecasts"):
        try:
            forecasts = parse_forecast(json.dumps(data["forecasts"], default=str), "forecasts", "json")
        except InvalidForecast as exc:
            raise InvalidScenario(str(exc), field="forecasts") from None
    return Scenario(now, network, sensors, mobile, forecasts, settings)


def _time(value: Any, where: str) -> datetime:
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise InvalidScenario(str(exc), field=where) from None


def _settings(values: Any, base: GrittingSettings) -> GrittingSettings:
    if not isinstance(values, Mapping):
        raise InvalidScenario("expected an object of gritting settings", field="settings")
    try:
        return GrittingSettings.model_validate({**base.model_dump(), **values})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise InvalidScenario(first["msg"], field=f"settings.{where}") from None


def _sensors(entries: Any) -> tuple[list[SensorHistory], MobilePoints]:
    if not isinstance(entries, list):
        raise InvalidScenario("expected a list of sensors", field="sensors")
    fixed: list[SensorHistory] = []
    moving: list[tuple[str, RoadReading]] = []
    seen: set[str] = set()
    for k, entry in enumerate(entries):
        where = f"sensors[{k}]"
        if not isinstance(entry, Mapping):
            raise InvalidScenario("expected an object", field=where)
        sensor_id = str(entry.get("sensor_id") or "").strip()
        if not sensor_id:
            raise InvalidScenario("missing", field=f"{where}.sensor_id")
        if sensor_id in seen:
            raise InvalidScenario(f"{sensor_id!r} appears twice", field=f"{where}.sensor_id")
        seen.add(sensor_id)
        readings = _readings(entry.get("readings"), f"{where}.readings")
        if entry.get("mobile"):
            moving += [(sensor_id, r) for r in readings]
            continue
        lon, lat = _degrees(entry.get("lon"), f"{where}.lon", 180), _degrees(entry.get("lat"), f"{where}.lat", 90)
        fixed.append(_history(sensor_id, lon, lat, readings, entry.get("segment_id")))
    return fixed, _mobile(moving)


def _readings(values: Any, where: str) -> list[RoadReading]:
    if not isinstance(values, list):
        raise InvalidScenario("expected a list of readings", field=where)
    out = []
    for j, value in enumerate(values):
        try:
            out.append(msgspec.convert(value, RoadReading, strict=False))
        except msgspec.ValidationError as exc:
            raise InvalidScenario(str(exc), field=f"{where}[{j}]") from None
        rh = out[-1].rh_pct
        if rh is not None and not 0 <= rh <= 100:
            raise InvalidScenario(f"rh_pct {rh:g} is outside 0..100", field=f"{where}[{j}].rh_pct")
    return sorted(out, key=lambda r: r.ts)


def _degrees(value: Any, where: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or abs(value) > limit:
        raise InvalidScenario(f"{value!r} is not a number of degrees within +-{limit:g}", field=where)
    return float(value)


def _column(readings: Sequence[RoadReading], name: str) -> np.ndarray:
    return np.array([np.nan if getattr(r, name) is None else float(getattr(r, name)) for r in readings],
                    dtype=np.float64)


def _history(sensor_id: str, lon: float, lat: float, readings: list[RoadReading], segment: Any) -> SensorHistory:
    t = np.array([r.ts.timestamp() / 3600.0 for r in readings], dtype=np.float64)
    return SensorHistory(sensor_id, lon, lat, t, _column(readings, "surface_temp_c"), _column(readings, "air_temp_c"),
                         _column(readings, "rh_pct"), tuple(r.surface_state for r in readings),
                         str(segment) if segment else None)


def _mobile(points: list[tuple[str, RoadReading]]) -> MobilePoints:
    points = [(d, r) for d, r in points if r.lon is not None and r.lat is not None]
    if not points:
        return MobilePoints()
    points.sort(key=lambda p: (p[0], p[1].ts))
    readings = [r for _, r in points]
    return MobilePoints([d for d, _ in points], np.array([r.ts.timestamp() / 3600.0 for r in readings]),
                        _column(readings, "lon"), _column(readings, "lat"), _column(readings, "surface_temp_c"),
                        [r.surface_state for r in readings])


def _number(value: float) -> float | None:
    return round(float(value), 2) if np.isfinite(value) else None


def summary(result: Assessment) -> dict[str, Any]:
    """The `--json` answer: per segment the action, lowest RST, rate and reasons; per route the decision."""
    d = result.decisions
    segments = [{"segment_id": seg, "action": decide.ACTIONS[int(d.action[k])], "rst_min_c": _number(d.rst_min[k]),
                 "rst_bound_min_c": _number(d.rst_low_min[k]),
                 "rate_g_m2": float(d.rate_g_m2[k]) if d.action[k] == decide.TREAT else 0.0,
                 "source": result.source[k], "reasons": [d.reason[k]]}
                for k, seg in enumerate(result.segment_ids)]
    routes = [{"route_id": r.route_id, "decision": r.decision, "reasons": [r.reason]} for r in result.routes]
    return {"now": result.now.isoformat(), "segments": segments, "routes": routes, "warnings": result.warnings}
