"""One damp and mould risk level per home, with its reasons in plain words.

Inputs are homes x hours arrays (quality.HourlySeries), each home's fRsi, mould class and
outdoor temperature. From them: cold-spot surface temperature and RH, hours of
condensation (surface RH 100 %), hours at or above 80 % (mould can grow), the ASHRAE 160
30-day running means, and the VTT mould index. The level:

    unknown  fewer than half of the last week's hours are usable: no confident answer
    severe   mould index >= 3 (visible growth), or >= 1 with 48 h of condensation this week
    high     mould index >= 1, or 24 h of condensation this week, or the ASHRAE 160 30-day
             limit broken with half the week damp at the surface
    medium   mould index >= 0.5, or 24 h at >= 80 % surface RH this week, any condensation,
             or the ASHRAE 160 30-day limit broken
    low      any hour at >= 80 % surface RH this week, indoor RH averaging 60 % or more,
             or a mould index above 0
    none     otherwise
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rules.damp import mould, surface
from rules.damp.quality import DataQuality, HourlySeries, screen

log = logging.getLogger("rules.damp.risk")

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

LEVELS = ("none", "low", "medium", "high", "severe")
UNKNOWN = "unknown"
WEEK_H = 168
MONTH_H = 720
ASHRAE_RH_LIMIT = 80.0
ASHRAE_T_RANGE_C = (5.0, 40.0)
CONDENSATION_RH = 100.0
DAMP_INDOOR_RH = 60.0
MIN_USABLE_FRACTION = 0.5


@dataclass(frozen=True)
class HomeInputs:
    """Per home (arrays over homes): the wall, the mould class, the weather outside."""

    f_rsi: FloatArray
    classes: mould.ClassArrays
    outdoor_c: FloatArray            # homes x hours
    fallback_note: list[str] = field(default_factory=list)  # per home, '' when measured outside


@dataclass(frozen=True)
class SurfaceSeries:
    temp_c: npt.NDArray[np.float32]  # homes x hours, NaN where unusable
    rh_pct: npt.NDArray[np.float32]  # may exceed 100: condensation


def surface_series(series: HourlySeries, inputs: HomeInputs, quality: DataQuality) -> SurfaceSeries:
    """Cold-spot conditions for every usable hour (NaN elsewhere), in float32."""
    air = np.where(quality.usable, series.air_temp, np.nan)
    rh = np.where(quality.usable, series.rh, np.nan)
    return SurfaceSeries(*surface.cold_spot_float32(air, rh, inputs.outdoor_c, inputs.f_rsi[:, None]))


@dataclass(frozen=True)
class Metrics:
    """Per home, over the week and the 30 days ending at one hour."""

    usable_hours_7d: npt.NDArray[np.int64]
    damp_hours_7d: npt.NDArray[np.int64]          # surface RH >= 80 %
    condensation_hours_7d: npt.NDArray[np.int64]  # surface RH >= 100 %
    damp_hours_30d: npt.NDArray[np.int64]
    condensation_hours_30d: npt.NDArray[np.int64]
    surface_rh_30d: FloatArray                    # ASHRAE 160 running means
    surface_t_30d: FloatArray
    indoor_t_7d: FloatArray
    indoor_rh_7d: FloatArray
    ashrae_exceeded: BoolArray                    # 30-day mean RH >= 80 % while mean T is 5..40 degC


def _nanmean(values: npt.NDArray[np.floating[Any]]) -> FloatArray:
    counts = np.isfinite(values).sum(axis=1)
    sums = np.nansum(values, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), dtype=np.float64)


def window_metrics(series: HourlySeries, cold: SurfaceSeries, quality: DataQuality, end: int) -> Metrics:
    """Metrics over the windows that end just before column `end` (exclusive)."""
    week = slice(max(end - WEEK_H, 0), end)
    month = slice(max(end - MONTH_H, 0), end)
    with np.errstate(invalid="ignore"):
        damp = cold.rh_pct >= surface.MOULD_SURFACE_RH
        wet = cold.rh_pct >= CONDENSATION_RH - 1e-9
    usable = quality.usable
    indoor_t = np.where(usable[:, week], series.air_temp[:, week], np.nan)
    indoor_rh = np.where(usable[:, week], series.rh[:, week], np.nan)
    surface_rh_30d = _nanmean(np.minimum(cold.rh_pct[:, month], 100.0))
    surface_t_30d = _nanmean(cold.temp_c[:, month])
    with np.errstate(invalid="ignore"):
        ashrae = ((surface_rh_30d >= ASHRAE_RH_LIMIT) & (surface_t_30d >= ASHRAE_T_RANGE_C[0])
                  & (surface_t_30d <= ASHRAE_T_RANGE_C[1]))
    return Metrics(
        usable_hours_7d=usable[:, week].sum(axis=1),
        damp_hours_7d=damp[:, week].sum(axis=1),
        condensation_hours_7d=wet[:, week].sum(axis=1),
        damp_hours_30d=damp[:, month].sum(axis=1),
        condensation_hours_30d=wet[:, month].sum(axis=1),
        surface_rh_30d=surface_rh_30d,
        surface_t_30d=surface_t_30d,
        indoor_t_7d=_nanmean(indoor_t),
        indoor_rh_7d=_nanmean(indoor_rh),
        ashrae_exceeded=ashrae,
    )


def levels(metrics: Metrics, mould_index: FloatArray) -> npt.NDArray[np.str_]:
    """The level per home, from the rules in this module's docstring."""
    m = mould_index
    ashrae = metrics.ashrae_exceeded
    with np.errstate(invalid="ignore"):
        rules = [
            (m >= 3) | ((m >= 1) & (metrics.condensation_hours_7d >= 48)),
            (m >= 1) | (metrics.condensation_hours_7d >= 24)
            | (ashrae & (metrics.damp_hours_7d >= WEEK_H // 2)),
            (m >= 0.5) | (metrics.damp_hours_7d >= 24) | (metrics.condensation_hours_7d > 0) | ashrae,
            (metrics.damp_hours_7d > 0) | (metrics.indoor_rh_7d >= DAMP_INDOOR_RH) | (m > 0.01),
        ]
    out = np.select(rules, ["severe", "high", "medium", "low"], default="none")
    enough = metrics.usable_hours_7d >= WEEK_H * MIN_USABLE_FRACTION
    return np.where(enough, out, UNKNOWN)


@dataclass(frozen=True)
class Assessment:
    level: str
    mould_index: float
    reasons: tuple[str, ...]
    changes: tuple[str, ...]
    faults: tuple[str, ...]
    metrics: dict[str, float | None]


def mould_words(index: float) -> str:
    if index < 0.5:
        return "no growth expected"
    if index < 1:
        return "conditions have started to allow growth"
    if index < 3:
        return "growth that shows under a microscope, not yet to the eye"
    if index < 4:
        return "visible spots of mould are likely"
    return "visible mould likely covers part of the wall"


def _num(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 2)


def describe(home: int, level: str, metrics: Metrics, index: float, fallback_note: str
             ) -> tuple[list[str], dict[str, float | None]]:
    """Reasons in plain words for one home, and the numbers behind them."""
    usable = int(metrics.usable_hours_7d[home])
    damp = int(metrics.damp_hours_7d[home])
    wet = int(metrics.condensation_hours_7d[home])
    rh30 = float(metrics.surface_rh_30d[home])
    t30 = float(metrics.surface_t_30d[home])
    reasons: list[str] = []
    if level == UNKNOWN:
        reasons.append(f"Not enough good readings to judge: {usable} of the last {WEEK_H} hours were usable.")
    if damp:
        reasons.append(f"The coldest wall was damp enough for mould to grow (80 % humidity or more at the "
                       f"surface) for {damp} of the last {usable} hours with readings.")
    elif level != UNKNOWN:
        reasons.append(f"The coldest wall stayed below 80 % humidity for all {usable} hours with readings "
                       f"this week.")
    if wet:
        reasons.append(f"Water condensed on the coldest wall for {wet} hours this week.")
    shown = round(index, 1)
    reasons.append(f"Mould index {shown:.1f} of 6: {mould_words(shown)}.")
    if bool(metrics.ashrae_exceeded[home]):
        reasons.append(f"Over 30 days the coldest wall averaged {rh30:.0f} % humidity at {t30:.1f} °C; "
                       f"ASHRAE 160 asks for a 30-day average under 80 %.")
    if np.isfinite(metrics.indoor_t_7d[home]):
        reasons.append(f"Indoors averaged {metrics.indoor_t_7d[home]:.1f} °C and "
                       f"{metrics.indoor_rh_7d[home]:.0f} % humidity this week.")
    if usable and usable < WEEK_H * 0.9 and level != UNKNOWN:
        reasons.append(f"Based on {usable} of {WEEK_H} hours this week: treat it as a guide.")
    if fallback_note:
        reasons.append(fallback_note)
    numbers = {"usable_hours_7d": float(usable), "damp_hours_7d": float(damp),
               "condensation_hours_7d": float(wet), "damp_hours_30d": float(metrics.damp_hours_30d[home]),
               "condensation_hours_30d": float(metrics.condensation_hours_30d[home]),
               "surface_rh_30d": _num(rh30), "surface_t_30d": _num(t30),
               "indoor_t_7d": _num(float(metrics.indoor_t_7d[home])),
               "indoor_rh_7d": _num(float(metrics.indoor_rh_7d[home])), "mould_index": _num(index)}
    return reasons, numbers


def what_changed(level_now: str, level_before: str | None, index_now: float, index_before: float | None,
                 damp_now: int, damp_before: int | None) -> list[str]:
    changes: list[str] = []
    if level_before is not None and level_before != UNKNOWN and level_now != UNKNOWN:
        order = {name: i for i, name in enumerate(LEVELS)}
        if order[level_now] > order[level_before]:
            changes.append(f"Risk went up this week, from {level_before} to {level_now}.")
        elif order[level_now] < order[level_before]:
            changes.append(f"Risk went down this week, from {level_before} to {level_now}.")
        else:
            changes.append(f"Risk is the same as last week ({level_now}).")
    if index_before is not None and abs(index_now - index_before) >= 0.05:
        verb = "rose" if index_now > index_before else "fell"
        changes.append(f"The mould index {verb} from {index_before:.1f} to {index_now:.1f}.")
    if damp_before is not None and damp_now != damp_before:
        changes.append(f"Hours damp enough for mould at the coldest wall: {damp_now} this week, "
                       f"{damp_before} the week before.")
    return changes


def assess(series: HourlySeries, inputs: HomeInputs, quality: DataQuality, cold: SurfaceSeries,
           mould_now: FloatArray, mould_week_ago: FloatArray | None = None) -> list[Assessment]:
    """Assessments for every home at the last hour of the series."""
    hours = series.air_temp.shape[1]
    now = window_metrics(series, cold, quality, hours)
    before = window_metrics(series, cold, quality, hours - WEEK_H) if hours > WEEK_H else None
    return assessments_from(now, before, mould_now, mould_week_ago, quality.faults, inputs.fallback_note)


def assessments_from(now: Metrics, before: Metrics | None, mould_now: FloatArray,
                     mould_week_ago: FloatArray | None, faults: list[list[str]], fallback_notes: list[str]
                     ) -> list[Assessment]:
    """Levels, reasons and changes for every home from this week's and last week's metrics."""
    level_now = levels(now, mould_now)
    known_before = np.zeros(mould_now.shape, dtype=bool)
    level_before = level_now
    if before is not None and mould_week_ago is not None:
        level_before = levels(before, np.nan_to_num(mould_week_ago))
        known_before = np.isfinite(mould_week_ago)
    out: list[Assessment] = []
    for home in range(mould_now.shape[0]):
        index = float(mould_now[home])
        reasons, numbers = describe(home, str(level_now[home]), now, index,
                                    fallback_notes[home] if fallback_notes else "")
        known = bool(known_before[home])
        changes = what_changed(
            str(level_now[home]), str(level_before[home]) if known else None,
            index, float(mould_week_ago[home]) if known and mould_week_ago is not None else None,
            int(now.damp_hours_7d[home]), int(before.damp_hours_7d[home]) if before is not None else None)
        out.append(Assessment(level=str(level_now[home]), mould_index=index, reasons=tuple(reasons),
                              changes=tuple(changes), faults=tuple(faults[home]), metrics=numbers))
    return out


def recompute(series: HourlySeries, inputs: HomeInputs, state: mould.MouldState | None = None,
              future_readings: npt.ArrayLike | None = None
              ) -> tuple[list[Assessment], mould.MouldState]:
    """The whole pipeline over a window, the mould state run from `state` (zero) across it."""
    quality = screen(series, future_readings)
    cold = surface_series(series, inputs, quality)
    start = state if state is not None else mould.MouldState.zeros(series.homes)
    final, history = mould.run_hours(start, cold.temp_c, cold.rh_pct, inputs.classes, keep_history=True)
    assert history is not None
    hours = series.air_temp.shape[1]
    week_ago = history[:, hours - WEEK_H - 1].astype(np.float64) if hours > WEEK_H else None
    return assess(series, inputs, quality, cold, final.index, week_ago), final
