"""From each bin's recent readings to forecasts, events and priorities (pure; the runner's core).

A bin with a calibration that cannot work, or with no usable reading for two days, is
"unknown": it keeps a row, with the reason, and is planned only when its fixed schedule
says it is due.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rules.bins.fill import BinCalibration, rolling_fill
from rules.bins.forecast import (
    EPOCH_WEEKDAY,
    BinEvent,
    Forecast,
    detect_emptyings,
    detect_events,
    forecast_bin,
    learn_weekday_profile,
)
from rules.bins.priority import Priorities, PriorityInputs, score_bins
from rules.errors import InvalidBinSetup

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BinInput:
    device_id: str
    calibration: BinCalibration | InvalidBinSetup
    times_h: FloatArray
    distance_mm: FloatArray               # NaN where the device sent a fill fraction instead
    fill_fraction: FloatArray             # as reported by the device, NaN when not
    temp_c: FloatArray
    tilt_deg: FloatArray
    bin_type: str = "general"
    place: str = ""
    complaints: int = 0
    collection_weekdays: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class BinAssessment:
    forecast: Forecast
    events: list[BinEvent]


def weekday_of(hours: float) -> int:
    return math.floor(hours / 24.0 + EPOCH_WEEKDAY) % 7


def assess_bin(b: BinInput, now_h: float, next_pass_h: float, threshold: float) -> BinAssessment:
    events = detect_events(b.device_id, b.times_h, b.temp_c, b.tilt_deg)
    if isinstance(b.calibration, InvalidBinSetup):
        nan = float("nan")
        return BinAssessment(Forecast("unknown", nan, nan, nan, nan, nan, nan, None,
                                      f"state unknown: {b.calibration}"), events)
    fill = rolling_fill(b.distance_mm, b.temp_c, b.calibration)
    fill = np.where(np.isfinite(b.distance_mm), fill, b.fill_fraction)
    profile = learn_weekday_profile(b.times_h, fill, detect_emptyings(fill))
    return BinAssessment(forecast_bin(b.times_h, fill, now_h, next_pass_h, threshold, profile), events)


def assess_all(bins: list[BinInput], now_h: float, next_pass_h: float, outdoor_c: float,
               threshold: float = 0.8) -> tuple[list[BinAssessment], Priorities]:
    """Every bin's forecast and events, and the priorities for today's plan."""
    assessed = [assess_bin(b, now_h, next_pass_h, threshold) for b in bins]
    today = weekday_of(now_h)
    recent = now_h - 24.0
    inputs = PriorityInputs(
        device_ids=[b.device_id for b in bins],
        hours_to_threshold=np.array([a.forecast.hours_to_threshold for a in assessed], dtype=np.float64),
        overflow_risk=np.array([a.forecast.overflow_risk for a in assessed], dtype=np.float64),
        hours_to_next_pass=np.full(len(bins), next_pass_h - now_h),
        bin_type=np.array([b.bin_type for b in bins], dtype=np.str_),
        place=np.array([b.place for b in bins], dtype=np.str_),
        complaints=np.array([b.complaints for b in bins], dtype=np.int64),
        outdoor_c=np.full(len(bins), outdoor_c),
        due_by_schedule=np.array([today in b.collection_weekdays for b in bins], dtype=np.bool_),
        has_event=np.array([any(e.at_h >= recent for e in a.events) for a in assessed], dtype=np.bool_),
    )
    return assessed, score_bins(inputs)
