"""A bought road-weather forecast (CSV/JSON), checked row by row, and the night's weather class.

Councils buy road-weather forecasts per sensor site, per route segment, or for an area;
`parse_forecast` checks every row (naming the bad one) and returns ForecastRows. Over the
times it covers a forecast's RST is used in preference to the sensors' own night model
(rules.gritting.energy); its precipitation applies wherever it is attached, whatever the
sensors there can measure. An area is a gritting route's id, or `all` for the network.
`weather_class` turns the network's cooling rates into a thermal-mapping weather class.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from cityops.times import parse_utc
from rules.errors import InvalidForecast

FloatArray = npt.NDArray[np.float64]
TargetKind = Literal["sensor", "segment", "area"]
TARGET_COLUMNS = {"sensor_id": "sensor", "segment_id": "segment", "area_id": "area"}
AREA_ALL = "all"                  # an area forecast for the whole network
PRECIP = ("none", "rain", "light_snow", "heavy_snow", "freezing_rain")
PRECIP_ALIASES = {"": "none", "dry": "none", "snow": "light_snow", "medium_snow": "heavy_snow",
                  "sleet": "light_snow", "drizzle": "rain", "showers": "rain"}
TEMPERATURE_RANGE_C = (-50.0, 80.0)
MAX_ROWS_SHOWN = 20


@dataclass(frozen=True)
class ForecastRow:
    target_kind: TargetKind
    target_id: str
    valid_at: datetime
    rst_c: float | None           # an area forecast may give only precipitation
    air_temp_c: float | None = None
    dew_point_c: float | None = None
    rh_pct: float | None = None
    precip: str = "none"

    def __post_init__(self) -> None:
        if self.precip not in PRECIP:
            raise InvalidForecast(f"precip {self.precip!r} is not one of {', '.join(PRECIP)}", source="forecast",
                                  row=f"{self.target_kind} {self.target_id}")
        if self.valid_at.tzinfo is None:
            raise InvalidForecast(f"valid_at {self.valid_at} has no time zone", source="forecast")


# --- the bought forecast -------------------------------------------------------------

def parse_forecast(text: str, source: str, fmt: Literal["csv", "json"] | None = None) -> list[ForecastRow]:
    """Every row of a forecast file, checked; InvalidForecast lists every bad row."""
    fmt = fmt or ("json" if text.lstrip()[:1] in ("[", "{") else "csv")
    entries = _json_entries(text, source) if fmt == "json" else _csv_entries(text, source)
    rows: list[ForecastRow] = []
    problems: list[str] = []
    seen: dict[tuple[str, str, datetime], str] = {}
    for where, entry in entries:
        try:
            row = _row(entry)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        key = (row.target_kind, row.target_id, row.valid_at)
        if key in seen:
            problems.append(f"{where}: {row.target_kind} {row.target_id} at {row.valid_at.isoformat()} "
                            f"is also in {seen[key]}")
            continue
        seen[key] = where
        rows.append(row)
    if not rows and not problems:
        problems.append("no forecast rows")
    if problems:
        shown = "\n  ".join(problems[:MAX_ROWS_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_ROWS_SHOWN} more" if len(problems) > MAX_ROWS_SHOWN else ""
        raise InvalidForecast(f"{source}: {len(problems)} problem(s), nothing imported:\n  {shown}{more}",
                              source=source, row=problems[0].split(":")[0])
    return rows


def _csv_entries(text: str, source: str) -> list[tuple[str, Mapping[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise InvalidForecast(f"{source}: empty CSV (no header line)", source=source)
    header = {f.strip() for f in reader.fieldnames}
    needs_rst = "rst_c" not in header and "area_id" not in header    # an area may give only precipitation
    if not (set(TARGET_COLUMNS) & header) or not ({"valid_at", "time"} & header) or needs_rst:
        raise InvalidForecast(f"{source}: the CSV header needs sensor_id, segment_id or area_id, valid_at and rst_c; "
                              f"it has {', '.join(sorted(header))}", source=source, row="line 1")
    return [(f"line {k}", {key.strip(): (v.strip() if isinstance(v, str) else v) for key, v in row.items() if key})
            for k, row in enumerate(reader, start=2)]


def _json_entries(text: str, source: str) -> list[tuple[str, Mapping[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidForecast(f"{source}: not valid JSON: {exc}", source=source) from None
    if isinstance(data, Mapping):
        data = data.get("forecasts", data.get("series"))
    if not isinstance(data, list):
        raise InvalidForecast(f"{source}: expected a list of rows or series (or {{\"forecasts\": [...]}})",
                              source=source)
    entries: list[tuple[str, Mapping[str, Any]]] = []
    for k, item in enumerate(data):
        if not isinstance(item, Mapping):
            entries.append((f"entry {k}", {"_bad": item}))
        elif "times" in item:           # a series: {"segment_id": .., "times": [..], "rst_c": [..], ..}
            entries += _series_rows(item, f"entry {k}")
        else:
            entries.append((f"entry {k}", item))
    return entries


def _series_rows(series: Mapping[str, Any], where: str) -> list[tuple[str, Mapping[str, Any]]]:
    times = series["times"]
    if not isinstance(times, list):
        return [(where, {"_bad": "times must be a list"})]
    columns = ("rst_c", "air_temp_c", "dew_point_c", "rh_pct", "precip")
    for name in columns:
        value = series.get(name)
        if isinstance(value, list) and len(value) != len(times):
            return [(where, {"_bad": f"{name} has {len(value)} values for {len(times)} times"})]
    ident = {k: series[k] for k in TARGET_COLUMNS if k in series}
    rows: list[tuple[str, Mapping[str, Any]]] = []
    for j, at in enumerate(times):
        row: dict[str, Any] = {**ident, "valid_at": at}
        for name in columns:
            value = series.get(name)
            row[name] = value[j] if isinstance(value, list) else value
        rows.append((f"{where} time {j}", row))
    return rows


def _float(entry: Mapping[str, Any], key: str, required: bool = False) -> float | None:
    value = entry.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"no {key}")
        return None
    if isinstance(value, bool):
        raise ValueError(f"{key} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{key} {value!r} is not a finite number")
    return number


def _row(entry: Mapping[str, Any]) -> ForecastRow:
    if "_bad" in entry:
        raise ValueError(f"not a forecast row: {entry['_bad']!r}")
    targets = [(kind, str(entry.get(column) or "").strip()) for column, kind in TARGET_COLUMNS.items()]
    given = [(kind, ident) for kind, ident in targets if ident]
    if len(given) != 1:
        raise ValueError("give exactly one of sensor_id, segment_id and area_id (a route id, or 'all')")
    kind, ident = given[0]
    raw_time = entry.get("valid_at", entry.get("time"))
    try:
        valid_at = parse_utc(raw_time)
    except ValueError as exc:
        raise ValueError(f"valid_at {exc}") from None
    rst = _float(entry, "rst_c", required=kind != "area")
    air = _float(entry, "air_temp_c")
    dew = _float(entry, "dew_point_c")
    rh = _float(entry, "rh_pct")
    for name, value in (("rst_c", rst), ("air_temp_c", air), ("dew_point_c", dew)):
        if value is not None and not TEMPERATURE_RANGE_C[0] <= value <= TEMPERATURE_RANGE_C[1]:
            raise ValueError(f"{name} {value:g} is outside {TEMPERATURE_RANGE_C[0]:g}..{TEMPERATURE_RANGE_C[1]:g} degC")
    if rh is not None:
        if not 0 <= rh <= 100:
            raise ValueError(f"rh_pct {rh:g} is outside 0..100")
        if 0 < rh <= 1 and not isinstance(entry.get("rh_pct"), int):
            raise ValueError(f"rh_pct {rh:g} looks like a fraction: give percent (0.85 -> 85)")
        if air is None:
            raise ValueError("rh_pct needs air_temp_c (to turn it into a dew point)")
    if dew is not None and air is not None and dew > air + 0.5:
        raise ValueError(f"dew_point_c {dew:g} is above air_temp_c {air:g}")
    precip = str(entry.get("precip") or "none").strip().lower()
    precip = PRECIP_ALIASES.get(precip, precip)
    if precip not in PRECIP:
        raise ValueError(f"precip {entry.get('precip')!r} is not one of {', '.join(PRECIP)} (or snow, sleet)")
    return ForecastRow(kind, ident, valid_at, rst, air, dew, rh, precip)  # type: ignore[arg-type]


# --- the night's class --------------------------------------------------------------

def weather_class(slopes_c_per_h: Sequence[float]) -> str:
    """The thermal-mapping weather class the network's median cooling rate suggests."""
    values = [s for s in slopes_c_per_h if math.isfinite(s)]
    if not values:
        return "intermediate"
    median = float(np.median(values))
    if median <= -1.0:
        return "extreme"           # clear and calm: fast radiative cooling
    return "damped" if median > -0.3 else "intermediate"


def on_grid(rows: Sequence[ForecastRow], grid_h: FloatArray, field: str = "rst_c", max_gap_h: float = 3.0
            ) -> FloatArray:
    """A forecast's values interpolated onto the grid (hours since epoch); NaN outside its span."""
    pairs = sorted((r.valid_at.timestamp() / 3600.0, getattr(r, field)) for r in rows
                   if getattr(r, field) is not None)
    out = np.full(grid_h.shape, np.nan)
    if not pairs:
        return out
    t = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs], dtype=np.float64)
    if t.size == 1:
        out[np.abs(grid_h - t[0]) <= max_gap_h / 2] = v[0]
        return out
    inside = (grid_h >= t[0] - 1e-9) & (grid_h <= t[-1] + 1e-9)
    out[inside] = np.interp(grid_h[inside], t, v)
    # a gap between forecast times longer than max_gap_h is not bridged
    after = np.searchsorted(t, grid_h[inside], side="left").clip(1, t.size - 1)
    gaps = ((t[after] - t[after - 1]) > max_gap_h) & ~np.isin(grid_h[inside], t)   # a forecast's own times stay
    values = out[inside]
    values[gaps] = np.nan
    out[inside] = values
    return out
