"""Collection priority: a 0..100 score per bin, with the reasons in words (vectorised).

    urgency   up to 60 points as the predicted time to the threshold falls from 3 days to 0
              (food waste counts its time as shorter in warm weather: it smells sooner)
    risk      up to 20 points: the probability of overflowing before the next planned pass
    place     town centre +10, school +8 (seen by many, litter blows about)
    complaints +5 each, up to 15
    events    a possible fire or a knocked-over bin: 100, someone has to go

A bin is MANDATORY on today's plan when it would overflow before the next pass (risk >= 0.5
or the threshold falls before it), has a fire or tilt event, or its state is unknown and
it is due by its fixed schedule. An unknown bin not due is left out and said so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

HORIZON_H = 72.0
FOOD_WARM_C = 15.0                # above this, food waste is collected sooner
FOOD_WARM_FACTOR = 0.5            # its time to threshold counts half when warm
PLACE_POINTS = {"town_centre": 10.0, "school": 8.0}
COMPLAINT_POINTS, COMPLAINT_CAP = 5.0, 15.0
MANDATORY_RISK = 0.5


@dataclass(frozen=True)
class PriorityInputs:
    """One row per bin; NaN hours/risk means the bin's state is unknown."""

    device_ids: list[str]
    hours_to_threshold: FloatArray
    overflow_risk: FloatArray
    hours_to_next_pass: FloatArray
    bin_type: npt.NDArray[np.str_]            # "general", "recycling", "food"
    place: npt.NDArray[np.str_]               # "", "town_centre", "school"
    complaints: npt.NDArray[np.int64]
    outdoor_c: FloatArray
    due_by_schedule: BoolArray
    has_event: BoolArray

    def __post_init__(self) -> None:
        n = len(self.device_ids)
        for name in ("hours_to_threshold", "overflow_risk", "hours_to_next_pass", "bin_type", "place",
                     "complaints", "outdoor_c", "due_by_schedule", "has_event"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows for {n} bins")


@dataclass(frozen=True)
class Priorities:
    device_ids: list[str]
    score: FloatArray
    mandatory: BoolArray
    unknown: BoolArray
    reasons: list[str]

    def ranked(self) -> list[int]:
        """Row indices, most urgent first (mandatory before optional, then score)."""
        return [int(i) for i in np.lexsort((-self.score, ~self.mandatory))]


def score_bins(bins: PriorityInputs) -> Priorities:
    hours = bins.hours_to_threshold.astype(np.float64)
    unknown = ~np.isfinite(hours) & ~np.isposinf(hours)
    warm_food = (bins.bin_type == "food") & (bins.outdoor_c >= FOOD_WARM_C)
    effective = np.where(warm_food, hours * FOOD_WARM_FACTOR, hours)
    urgency = 60.0 * np.clip(1.0 - np.nan_to_num(effective, nan=HORIZON_H, posinf=HORIZON_H) / HORIZON_H, 0, 1)
    risk = np.nan_to_num(bins.overflow_risk, nan=0.0)
    place = np.select([bins.place == name for name in PLACE_POINTS], list(PLACE_POINTS.values()), 0.0)
    complaints = np.minimum(bins.complaints * COMPLAINT_POINTS, COMPLAINT_CAP)
    score = np.where(bins.has_event, 100.0, np.clip(urgency + 20.0 * risk + place + complaints, 0, 100))
    before_pass = effective <= bins.hours_to_next_pass
    mandatory = bins.has_event | (risk >= MANDATORY_RISK) | np.nan_to_num(before_pass, nan=False).astype(bool) \
        | (unknown & bins.due_by_schedule)
    reasons = [_words(i, bins, hours, risk, warm_food, unknown) for i in range(len(bins.device_ids))]
    return Priorities(list(bins.device_ids), score, mandatory, unknown, reasons)


def _words(i: int, bins: PriorityInputs, hours: FloatArray, risk: FloatArray, warm_food: BoolArray,
           unknown: BoolArray) -> str:
    parts: list[str] = []
    if bins.has_event[i]:
        parts.append("an alert is open (fire or knocked over)")
    if unknown[i]:
        parts.append("no recent readings: state unknown, " +
                     ("due by the fixed schedule" if bins.due_by_schedule[i] else "not due by the schedule"))
    elif hours[i] == 0:
        parts.append("at or past the threshold now")
    elif np.isfinite(hours[i]):
        parts.append(f"threshold in about {hours[i]:.0f} h")
    if risk[i] >= 0.05:
        parts.append(f"{risk[i]:.0%} chance of overflowing before the next pass")
    if warm_food[i]:
        parts.append(f"food waste in {bins.outdoor_c[i]:.0f} °C: collected sooner")
    if bins.place[i]:
        parts.append(str(bins.place[i]).replace("_", " "))
    if bins.complaints[i]:
        parts.append(f"{bins.complaints[i]} complaint{'s' if bins.complaints[i] > 1 else ''}")
    return "; ".join(parts) or "not filling"
