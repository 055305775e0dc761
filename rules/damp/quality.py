"""Data faults in a home's hourly readings, found before any risk is computed.

A fault makes hours unusable (the mould state holds through them, the risk says how much
data it rests on) and is reported in plain words; it never turns into a confident risk:

    missing hours        no readings in an hour (box off, offline, spool lost)
    stuck humidity       RH pinned at 0 or 100 % for a day or more: a wet or broken sensor
    fraction as percent  RH arriving as 0..1: the box's software sends the wrong unit
    impossible values    RH outside 0..100 %, temperatures outside -40..60 degC
    clock jumped         more readings in an hour than the box takes (clock set back), or
                         readings dated in the future (clock ahead)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

log = logging.getLogger("rules.damp.quality")

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

READINGS_PER_HOUR = 12          # one every 5 minutes
STUCK_RUN_HOURS = 24
PINNED_LOW_PCT = 0.5
PINNED_HIGH_PCT = 99.5
INDOOR_TEMP_RANGE_C = (-40.0, 60.0)


@dataclass(frozen=True)
class HourlySeries:
    """Homes x hours of hourly statistics, the last column the latest complete hour.

    NaN (and readings == 0) where an hour has no data."""

    hours: npt.NDArray[np.datetime64]   # (hours,) datetime64[h], consecutive
    air_temp: FloatArray
    rh: FloatArray
    rh_min: FloatArray
    rh_max: FloatArray
    readings: IntArray

    @property
    def homes(self) -> int:
        return int(self.air_temp.shape[0])


@dataclass(frozen=True)
class DataQuality:
    usable: BoolArray                  # homes x hours
    faults: list[list[str]]            # per home, plain words


def longest_runs(mask: BoolArray, min_length: int) -> BoolArray:
    """Cells that belong to a run of True at least min_length long, along the last axis."""
    out = np.zeros_like(mask)
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    for home in np.flatnonzero(mask.any(axis=1)):
        starts = np.flatnonzero(edges[home] == 1)
        ends = np.flatnonzero(edges[home] == -1)
        for start, end in zip(starts, ends, strict=True):
            if end - start >= min_length:
                out[home, start:end] = True
    return out


@dataclass(frozen=True)
class HourChecks:
    """Per hour (any shape): has data; impossible values; RH pinned at 0/100; clock jumped back."""

    present: BoolArray
    impossible: BoolArray
    pinned: BoolArray
    clock: BoolArray


def check_hours(air_temp: FloatArray, rh: FloatArray, rh_min: FloatArray, rh_max: FloatArray,
                readings: IntArray, readings_per_hour: int = READINGS_PER_HOUR) -> HourChecks:
    present = (readings > 0) & np.isfinite(air_temp) & np.isfinite(rh)
    with np.errstate(invalid="ignore"):
        impossible = present & ((rh_min < 0) | (rh_max > 100) | (air_temp < INDOOR_TEMP_RANGE_C[0])
                                | (air_temp > INDOOR_TEMP_RANGE_C[1]))
        plausible = present & ~impossible
        pinned = plausible & ((rh_max <= PINNED_LOW_PCT) | (rh_min >= PINNED_HIGH_PCT))
    clock = plausible & (readings > readings_per_hour * 1.5)
    return HourChecks(present, impossible, pinned, clock)


def screen(series: HourlySeries, future_readings: npt.ArrayLike | None = None,
           readings_per_hour: int = READINGS_PER_HOUR) -> DataQuality:
    """Mark the usable hours and describe each home's faults."""
    homes, hours = series.air_temp.shape
    checks = check_hours(series.air_temp, series.rh, series.rh_min, series.rh_max, series.readings,
                         readings_per_hour)
    present, impossible, clock = checks.present, checks.impossible, checks.clock
    plausible = present & ~impossible
    with np.errstate(invalid="ignore"):
        fraction = (plausible.any(axis=1) & np.all(~plausible | (series.rh_max <= 1.0), axis=1)
                    & np.any(plausible & (series.rh_max > 0), axis=1))
    stuck = longest_runs(checks.pinned, STUCK_RUN_HOURS)
    usable = present & ~impossible & ~stuck & ~clock & ~fraction[:, None]
    future = np.zeros(homes, dtype=np.int64) if future_readings is None else np.asarray(future_readings)

    missing_hours = hours - present.sum(axis=1)
    troubled = ((missing_hours > 0) | fraction | stuck.any(axis=1) | impossible.any(axis=1)
                | clock.any(axis=1) | (future > 0))
    faults: list[list[str]] = [[] for _ in range(homes)]
    for home in np.flatnonzero(troubled):
        stuck_high = bool(stuck[home].any() and np.nanmean(series.rh[home][stuck[home]]) > 50)
        faults[home] = fault_sentences(
            FaultCounts(hours=hours, missing=int(missing_hours[home]), fraction=bool(fraction[home]),
                        stuck=int(stuck[home].sum()), stuck_high=stuck_high,
                        impossible=int(impossible[home].sum()), clock=int(clock[home].sum()),
                        future=int(future[home])),
            gap=_missing_where(present[home], series.hours) if missing_hours[home] else "")
    if stuck.any() or clock.any() or fraction.any():
        log.info("data faults: %d homes stuck, %d clock, %d fraction", int(stuck.any(axis=1).sum()),
                 int(clock.any(axis=1).sum()), int(fraction.sum()))
    return DataQuality(usable=usable, faults=faults)


@dataclass(frozen=True)
class FaultCounts:
    """One home's faults over a window, in hours (future: readings)."""

    hours: int
    missing: int = 0
    fraction: bool = False
    stuck: int = 0
    stuck_high: bool = True
    impossible: int = 0
    clock: int = 0
    future: int = 0


def fault_sentences(counts: FaultCounts, gap: str = "") -> list[str]:
    """The faults in plain words, the way a householder or officer reads them."""
    found: list[str] = []
    if counts.missing:
        found.append(f"No readings for {counts.missing} of {counts.hours} hours" + (f": {gap}." if gap else "."))
    if counts.fraction:
        found.append("Humidity arrives as a fraction (0..1) instead of a percentage: the box's software "
                     "sends the wrong unit, so its readings were not used.")
    if counts.stuck:
        level = "100" if counts.stuck_high else "0"
        found.append(f"Humidity read {level} % without moving for {counts.stuck / 24:.1f} days: "
                     f"a wet or failed sensor, not a measurement; those hours were not used.")
    if counts.impossible:
        found.append(f"{counts.impossible} hours had impossible values (humidity outside "
                     f"0..100 % or temperature outside -40..60 °C) and were not used.")
    if counts.clock:
        found.append(f"{counts.clock} hours had more readings than the box takes: its clock "
                     f"jumped back; those hours were not used.")
    if counts.future:
        found.append(f"{counts.future} readings are dated in the future: the box's clock is ahead.")
    return found


def _missing_where(present: BoolArray, hours: npt.NDArray[np.datetime64]) -> str:
    """The longest gap, in words, e.g. 'longest gap 30 hours from 2026-01-03 04:00'."""
    gaps = longest_runs(~present[None, :], 1)[0]
    if not gaps.any():
        return "none"
    padded = np.concatenate(([0], gaps.astype(np.int8), [0]))
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1)
    longest = int(np.argmax(ends - starts))
    when = str(hours[starts[longest]]).replace("T", " ") + ":00"
    return f"longest gap {ends[longest] - starts[longest]} hours from {when} UTC"
