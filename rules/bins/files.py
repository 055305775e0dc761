"""Bins and their readings from CSV text, for `cityops bins assess` (pure: text in, BinInputs out).

    bins file      device_id[,bin_depth_mm,sensor_height_mm][,sensor_type][,bin_type][,place]
                   [,complaints][,collection_weekdays]
    readings file  device_id,ts, fill_fraction and/or distance_mm [,temp_c][,tilt_deg]
                   (a blank distance_mm is a ping with no echo, as the runner stores it)

The geometry means what it means in the registry and the rules (rules.bins.fill):
sensor_height_mm is the sensor's height above the bottom of the empty bin, bin_depth_mm the
depth the bin holds; a device that sends distances needs both. The first problem raises
InvalidBinsFile naming the file, the line (the header is line 1) and the field.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from cityops.times import parse_utc
from rules.bins.assess import BinInput
from rules.bins.fill import BinCalibration
from rules.bins.priority import PLACE_POINTS
from rules.errors import InvalidBinSetup, InvalidBinsFile

BIN_COLUMNS = ("device_id", "bin_depth_mm", "sensor_height_mm", "sensor_type", "bin_type", "place", "complaints",
               "collection_weekdays")
READING_COLUMNS = ("device_id", "ts", "fill_fraction", "distance_mm", "temp_c", "tilt_deg")
BIN_TYPES = ("general", "recycling", "food")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WEEKDAYS = (0,)           # the runner's default when a bin has no settings: Monday


@dataclass(frozen=True)
class BinSetup:
    device_id: str
    calibration: BinCalibration | None = None       # None: no geometry given (fill fractions only)
    bin_type: str = "general"
    place: str = ""
    complaints: int = 0
    collection_weekdays: tuple[int, ...] = DEFAULT_WEEKDAYS


@dataclass
class _Series:
    rows: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # h, distance, fill, T, tilt
    first_line: dict[float, int] = field(default_factory=dict)


def parse_bins(text: str, source: str) -> dict[str, BinSetup]:
    """Each bin's geometry and settings, by device id."""
    bins: dict[str, BinSetup] = {}
    first_line: dict[str, int] = {}
    for line, row, bad in _rows(text, source, BIN_COLUMNS, required=("device_id",)):
        device_id = _device_id(row, bad)
        if device_id in bins:
            raise bad("device_id", f"{device_id!r} is also on line {first_line[device_id]}")
        depth, height = _number(row, "bin_depth_mm", bad), _number(row, "sensor_height_mm", bad)
        calibration = None
        if (depth is None) != (height is None):
            missing = "bin_depth_mm" if depth is None else "sensor_height_mm"
            raise bad(missing, "give bin_depth_mm and sensor_height_mm together (or neither, for fill fractions)")
        if depth is not None and height is not None:
            try:
                calibration = BinCalibration.for_sensor(height, depth, row.get("sensor_type") or None, device_id)
            except InvalidBinSetup as exc:
                raise bad(exc.setting, f"{exc} ({exc.hint})") from None
        bin_type = row.get("bin_type") or "general"
        if bin_type not in BIN_TYPES:
            raise bad("bin_type", f"{bin_type!r} is not one of {', '.join(BIN_TYPES)}")
        place = row.get("place") or ""
        if place and place not in PLACE_POINTS:
            raise bad("place", f"{place!r} is not one of {', '.join(PLACE_POINTS)} (or empty)")
        complaints = _number(row, "complaints", bad) or 0.0
        if complaints < 0 or not complaints.is_integer():
            raise bad("complaints", f"{row['complaints']!r} is not a count")
        bins[device_id] = BinSetup(device_id, calibration, bin_type, place, int(complaints),
                                   _weekdays(row.get("collection_weekdays") or "", bad))
        first_line[device_id] = line
    return bins


def parse_readings(text: str, source: str, bins: dict[str, BinSetup]) -> list[BinInput]:
    """Every bin in either file with its readings in time order (a bin without readings has none)."""
    series: dict[str, _Series] = {}
    rows = _rows(text, source, READING_COLUMNS, required=("device_id", "ts"), one_of=("fill_fraction", "distance_mm"))
    for line, row, bad in rows:
        device_id = _device_id(row, bad)
        at_h = _timestamp(row, bad)
        fill = _number(row, "fill_fraction", bad)
        distance = _number(row, "distance_mm", bad)
        geometry = bins.get(device_id, BinSetup(device_id)).calibration
        if fill is None and distance is None and (geometry is None or "distance_mm" not in row):
            raise bad("fill_fraction", "a reading needs fill_fraction or distance_mm (a blank distance_mm is a "
                                       "ping with no echo, for a bin with its geometry in the bins file)")
        if fill is not None and not 0.0 <= fill <= 1.0:
            raise bad("fill_fraction", f"{fill:g} is not a fraction 0..1" + (" (a percentage?)" if 1 < fill <= 100
                                                                               else ""))
        if distance is not None:
            if distance < 0:
                raise bad("distance_mm", f"{distance:g} is negative")
            if geometry is None:
                raise bad("distance_mm", f"{device_id} sends distances: the bins file must give its bin_depth_mm "
                                         "and sensor_height_mm")
        bin_series = series.setdefault(device_id, _Series())
        if at_h in bin_series.first_line:
            raise bad("ts", f"{device_id} has a reading at {row['ts']} on line {bin_series.first_line[at_h]} too")
        bin_series.first_line[at_h] = line
        bin_series.rows.append((at_h, _or_nan(distance), _or_nan(fill), _or_nan(_number(row, "temp_c", bad)),
                                _or_nan(_number(row, "tilt_deg", bad))))
    if not series:
        raise InvalidBinsFile("no readings after the header", source=source, line=2)
    return [_bin_input(bins.get(device_id, BinSetup(device_id)), series.get(device_id, _Series()))
            for device_id in sorted(bins.keys() | series.keys())]


def _bin_input(setup: BinSetup, series: _Series) -> BinInput:
    columns = np.array(sorted(series.rows), dtype=np.float64).reshape(-1, 5)
    return BinInput(setup.device_id, setup.calibration, times_h=columns[:, 0], distance_mm=columns[:, 1],
                    fill_fraction=columns[:, 2], temp_c=columns[:, 3], tilt_deg=columns[:, 4],
                    bin_type=setup.bin_type, place=setup.place, complaints=setup.complaints,
                    collection_weekdays=setup.collection_weekdays)


# --- one row at a time ------------------------------------------------------------------

Bad = Callable[[str, str], InvalidBinsFile]


def _rows(text: str, source: str, known: tuple[str, ...], *, required: tuple[str, ...],
          one_of: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, str], Bad]]:
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    needs = [c for c in required if c not in header]
    if one_of and not set(one_of) & set(header):
        needs.append(" or ".join(one_of))
    if needs:
        raise InvalidBinsFile(f"the header needs {', '.join(needs)}; it has {', '.join(header) or 'nothing'}",
                              source=source, line=1)
    for name in header:
        if name not in known or header.count(name) > 1:
            raise InvalidBinsFile(f"{'unknown' if name not in known else 'repeated'} column {name!r} (known: "
                                  f"{', '.join(known)})", source=source, line=1, field=name)
    for values in reader:
        line = reader.line_num

        def bad(name: str, reason: str, line: int = line) -> InvalidBinsFile:
            return InvalidBinsFile(reason, source=source, line=line, field=name)

        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise bad("row", f"{len(values)} fields, the header has {len(header)}")
        yield line, {k: v.strip() for k, v in zip(header, values, strict=True)}, bad


def _device_id(row: dict[str, str], bad: Bad) -> str:
    if not row["device_id"]:
        raise bad("device_id", "empty")
    return row["device_id"]


def _number(row: dict[str, str], name: str, bad: Bad) -> float | None:
    text = row.get(name) or ""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise bad(name, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise bad(name, f"{text!r} is not a finite number")
    return value


def _timestamp(row: dict[str, str], bad: Bad) -> float:
    text = row["ts"]
    try:
        return parse_utc(text).timestamp() / 3600.0
    except ValueError as exc:
        raise bad("ts", str(exc)) from None


def _weekdays(text: str, bad: Bad) -> tuple[int, ...]:
    names = text.lower().replace(";", " ").split()
    unknown = [n for n in names if n not in WEEKDAYS]
    if unknown:
        raise bad("collection_weekdays", f"{unknown[0]!r} is not a weekday ({' '.join(WEEKDAYS)}; e.g. 'mon;thu')")
    return tuple(sorted({WEEKDAYS.index(n) for n in names})) or DEFAULT_WEEKDAYS


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value
