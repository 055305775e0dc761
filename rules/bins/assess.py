"""From each bin's recent readings to forecasts, events and priorities (pure; the runner's core).

A bin with a calibration that cannot work, or with no usable reading for two days, is
"unknown": it keeps a row, with the reason, and is planned only when its fixed schedule
says it is due.

`assess_fleet` is the one entry point for the bins runner (readings from the database) and
`cityops bins assess` (readings from a CSV file): the pass to beat, the outdoor
temperature, forecasts, events, priorities and the reasons in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

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


DEFAULT_SHIFT_START = time(6, 0)          # UTC, when no depot says otherwise
DEFAULT_OUTDOOR_C = 10.0


@dataclass(frozen=True)
class BinInput:
    device_id: str
    calibration: BinCalibration | InvalidBinSetup | None     # None: the device reports fill fractions only
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
    measured = (rolling_fill(b.distance_mm, b.temp_c, b.calibration) if b.calibration is not None
                else np.full(b.distance_mm.shape, np.nan))
    fill = np.where(np.isfinite(b.distance_mm), measured, b.fill_fraction)
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


def calibration_for(device_id: str, sensor_height_mm: float | None, bin_depth_mm: float | None,
                    sensor_type: str | None) -> BinCalibration | InvalidBinSetup:
    """A bin's geometry as registered, or why it cannot be read (the bin is then unknown)."""
    try:
        if bin_depth_mm is None or sensor_height_mm is None:
            raise InvalidBinSetup("no bin depth or sensor height registered", device_id=device_id,
                                  setting="bin_depth_mm" if bin_depth_mm is None else "sensor_height_mm")
        return BinCalibration.for_sensor(sensor_height_mm, bin_depth_mm, sensor_type, device_id)
    except InvalidBinSetup as exc:
        return exc


def next_shift(now: datetime, shift_start: time = DEFAULT_SHIFT_START) -> datetime:
    """The next collection shift to start after `now` (UTC)."""
    shift = datetime.combine(now.astimezone(UTC).date(), shift_start, tzinfo=UTC)
    return shift if shift > now else shift + timedelta(days=1)


def outdoor_c(bins: list[BinInput]) -> float:
    """The bins' own median temperature over their last 48 readings stands in for the air temperature."""
    recent = [b.temp_c[-48:] for b in bins if b.temp_c.size]
    values = np.concatenate(recent) if recent else np.array([])
    return float(np.nanmedian(values)) if np.isfinite(values).any() else DEFAULT_OUTDOOR_C


@dataclass(frozen=True)
class BinVerdict:
    """One bin's answer, as `cityops bins assess` prints it."""

    device_id: str
    status: str
    fill_now: float                # NaN when unknown
    hours_to_threshold: float      # inf when not filling, NaN when unknown
    priority: float                # the score, 0..100
    mandatory: bool
    reasons: str


@dataclass(frozen=True)
class FleetAssessment:
    bins: list[BinInput]
    assessed: list[BinAssessment]
    priorities: Priorities
    pass_to_beat: datetime

    def reasons(self) -> list[str]:
        """Per bin: the forecast in words, then why it has its priority."""
        return [f"{a.forecast.reason}. {why}" for a, why in zip(self.assessed, self.priorities.reasons, strict=True)]

    def verdicts(self) -> list[BinVerdict]:
        p = self.priorities
        return [BinVerdict(b.device_id, a.forecast.status, a.forecast.fill_now, a.forecast.hours_to_threshold,
                           float(p.score[i]), bool(p.mandatory[i]), why)
                for i, (b, a, why) in enumerate(zip(self.bins, self.assessed, self.reasons(), strict=True))]


def assess_fleet(bins: list[BinInput], now: datetime, shift_start: time = DEFAULT_SHIFT_START,
                 threshold: float = 0.8) -> FleetAssessment:
    """Every bin's forecast, events and priority as of `now`, against the pass it has to beat."""
    # a bin left out of the next shift waits for the one after: that is the pass to beat
    pass_after = next_shift(now, shift_start) + timedelta(days=1)
    assessed, priorities = assess_all(bins, now.timestamp() / 3600.0, pass_after.timestamp() / 3600.0,
                                      outdoor_c(bins), threshold)
    return FleetAssessment(bins, assessed, priorities, pass_after)
