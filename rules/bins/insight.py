"""Where bins are wrong, and what dynamic collection would change (pure numpy).

`bin_usage` reads each bin's fill history cycle by cycle (between emptyings): a bin full
in most cycles overflows often (add a bin or collect it more often); a bin that never
passes 40 % never fills (move it, or collect it less).

`simulate_policies` runs the same simulated street for weeks under two policies, one day
at a time, on a daily fill the caller describes (each bin's mean daily rise, a weekday
profile, Monday first, and a uniform day-to-day scatter of 0.5-1.5x):

    fixed     every bin emptied on a fixed round, sized to its average rate: every
              floor(0.8 / mean daily rise) days, 1..7, from its collection weekday
    dynamic   each morning, empty the bins at or past the threshold or expected to overflow
              by evening (their rate: the mean daily rise of the last week, from the sensor)

and counts collections, overflow days and driving distance (a nearest-neighbour tour
from the depot through the day's bins, great-circle x detour factor; the same measure
for both, no capacity limit: it compares policies, it is not a plan).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rules.bins.forecast import detect_emptyings
from rules.geo import distance_matrix_m

FloatArray = npt.NDArray[np.float64]

OFTEN_FULL_SHARE = 0.5
NEVER_FILLS_PEAK = 0.4
FULL = 0.98
MARGIN = 1.3                      # the dynamic policy allows for a busier day than the rate says

# (day, fill this morning, daily rises seen so far) -> which bins to empty today
Policy = Callable[[int, npt.NDArray[np.float64], npt.NDArray[np.float64]], npt.NDArray[np.bool_]]


@dataclass(frozen=True)
class BinUsage:
    device_id: str
    cycles: int
    full_share: float              # cycles that reached full
    mean_peak: float
    verdict: str                   # "overflows often", "never fills", "fine", "too little data"


def bin_usage(device_id: str, fill: npt.ArrayLike) -> BinUsage:
    values = np.asarray(fill, dtype=np.float64)
    bounds = [0, *detect_emptyings(values), values.size]
    peaks = [np.nanmax(values[a:b]) for a, b in itertools.pairwise(bounds)
             if b > a and np.isfinite(values[a:b]).any()]
    # the first and last cycles are cut by the window: use the whole cycles when there are any
    whole = peaks[1:-1] if len(peaks) > 2 else peaks
    if not whole:
        return BinUsage(device_id, 0, float("nan"), float("nan"), "too little data")
    share, mean_peak = float(np.mean(np.array(whole) >= FULL)), float(np.mean(whole))
    verdict = ("overflows often" if share >= OFTEN_FULL_SHARE else
               "never fills" if max(whole) < NEVER_FILLS_PEAK else "fine")
    return BinUsage(device_id, len(whole), share, mean_peak, verdict)


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    collections: int
    overflow_days: int
    distance_km: float

    def line(self) -> str:
        return (f"{self.policy}: {self.collections} collections, {self.overflow_days} bin-days overflowing, "
                f"{self.distance_km:.0f} km")


def simulate_policies(lon: FloatArray, lat: FloatArray, base_per_day: FloatArray, weekday: npt.NDArray[np.int64],
                      depot: tuple[float, float], *, weekday_factor: Sequence[float], weeks: int = 8,
                      threshold: float = 0.8, seed: int = 0, detour_factor: float = 1.3
                      ) -> tuple[PolicyResult, PolicyResult]:
    """(fixed schedule, dynamic) over `weeks` of the same simulated fill; `weekday_factor`:
    seven multipliers of the daily rise, Monday first."""
    if len(weekday_factor) != 7:
        raise ValueError("weekday_factor needs seven values, Monday first")
    WEEKDAY_FACTOR = tuple(weekday_factor)
    rng = np.random.default_rng(seed)
    days = weeks * 7
    rises = base_per_day[None, :] * np.array(WEEKDAY_FACTOR)[np.arange(days) % 7][:, None] \
        * rng.uniform(0.5, 1.5, (days, base_per_day.size))
    matrix = distance_matrix_m(np.concatenate([[depot[0]], lon]), np.concatenate([[depot[1]], lat])) * detour_factor
    interval = np.clip(np.floor(threshold / (base_per_day * np.mean(WEEKDAY_FACTOR))), 1, 7).astype(np.int64)
    fixed = _run(rises, matrix, lambda day, fill, history: np.asarray((day - weekday) % interval == 0))

    def dynamic(day: int, fill: FloatArray, history: FloatArray) -> npt.NDArray[np.bool_]:
        recent = history[max(0, day - 7):day]
        rate = recent.mean(axis=0) if recent.size else base_per_day
        today = rate * WEEKDAY_FACTOR[day % 7] / np.mean(WEEKDAY_FACTOR)
        return (fill >= threshold) | (fill + MARGIN * today >= 1.0)

    return PolicyResult("fixed schedule", *fixed), PolicyResult("dynamic", *_run(rises, matrix, dynamic))


def _run(rises: FloatArray, matrix: FloatArray, collect_today: Policy) -> tuple[int, int, float]:
    days, bins = rises.shape
    fill = np.full(bins, 0.1)
    seen = np.zeros_like(rises)            # what the sensors saw rise each day (unclipped)
    collections = overflow = 0
    metres = 0.0
    for day in range(days):
        chosen = collect_today(day, fill, seen)
        fill[chosen] = 0.02
        collections += int(chosen.sum())
        metres += _tour_m(matrix, np.flatnonzero(chosen) + 1)
        fill += rises[day]
        overflow += int((fill >= 1.0).sum())
        seen[day] = rises[day]
        fill = np.minimum(fill, 1.0)
    return collections, overflow, metres / 1000.0


def _tour_m(matrix: FloatArray, stops: npt.NDArray[np.int64]) -> float:
    """Nearest-neighbour tour from the depot (0) through `stops` and back."""
    left = set(stops.tolist())
    here, total = 0, 0.0
    while left:
        candidates = np.fromiter(left, dtype=np.int64)
        nearest = int(candidates[np.argmin(matrix[here, candidates])])
        total += matrix[here, nearest]
        left.remove(nearest)
        here = nearest
    return total + matrix[here, 0]
