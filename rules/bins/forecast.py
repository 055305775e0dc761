"""Emptying detection, fill rate, time to a threshold, overflow risk; fire and tilt events.

Times are hours since the Unix epoch (float); fills are 0..1 with NaN for unusable readings.

- Emptying: the median of the next few fills is at least `min_drop` below the median of the
  few before (so a single noisy ping never counts); one event per drop.
- Fill rate: least squares of fill against "usage hours" since the cycle's first reading,
  where a usage profile weights each hour of the week (by default daytime hours, every
  weekday alike; `learn_weekday_profile` fits the weekday shape from a bin's own history).
  A falling slope is noise (a bin only empties in one drop): the line is refitted flat, so
  the fill now is the series' mean.
- Time to threshold: usage hours still needed at that rate, turned back into clock time;
  the interval comes from the rate's standard error (about +-2 sigma).
- Overflow risk: the probability that the bin reaches 100 % before the next planned pass,
  with the rate normally distributed about its estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rules.bins.fill import nanmedian_rows

FloatArray = npt.NDArray[np.float64]

WEEK_H = 168
EPOCH_WEEKDAY = 3                 # 1970-01-01 was a Thursday (Monday = 0)
DAYTIME = (7, 22)                 # street bins fill while people are about
MIN_READINGS = 3                  # since the last emptying, to fit a rate
STALE_AFTER_H = 48.0              # no reading for this long: the bin's state is unknown
FIRE_RISE_C = 25.0                # above the bin's own recent median temperature
FIRE_ABSOLUTE_C = 60.0
TILT_DEG = 45.0
BASELINE_READINGS = 48            # a bin's usual temperature: the median of its previous readings
SATURATED = 0.95
RATE_SPREAD = 0.35                # the rate's relative uncertainty at least (use changes week to week)


@dataclass(frozen=True)
class UsageProfile:
    """Relative filling per hour of the week (index 0 = Monday 00:00 UTC)."""

    weights: FloatArray

    @classmethod
    def daytime(cls, weekday: tuple[float, ...] = (1.0,) * 7) -> UsageProfile:
        hours = np.zeros(24)
        hours[DAYTIME[0]:DAYTIME[1]] = 1.0
        weights = np.concatenate([hours * w for w in weekday])
        return cls(weights * WEEK_H / weights.sum())

    def cumulative(self, hours: npt.ArrayLike) -> FloatArray:
        """Usage hours from the epoch to each time (piecewise linear, non-decreasing)."""
        t = np.asarray(hours, dtype=np.float64) + EPOCH_WEEKDAY * 24.0
        steps = np.concatenate([[0.0], np.cumsum(self.weights)])
        weeks, within = np.divmod(t, WEEK_H)
        whole = np.floor(within).astype(np.int64)
        return np.asarray(weeks * steps[-1] + steps[whole] + (within - whole) * self.weights[whole % WEEK_H])

    def time_after(self, start_h: float, usage_needed: float) -> float:
        """The clock hour at which `usage_needed` usage hours have passed after `start_h`."""
        if usage_needed <= 0:
            return start_h
        # whole weeks by arithmetic (a near-zero rate asks for millions), the rest on a two-week grid
        weeks, rest = divmod(usage_needed, float(self.weights.sum()))
        grid = start_h + np.arange(0, 2 * WEEK_H + 1, dtype=np.float64)
        within = float(np.interp(float(self.cumulative(start_h)) + rest, self.cumulative(grid), grid))
        return weeks * WEEK_H + within


DEFAULT_PROFILE = UsageProfile.daytime()


@dataclass(frozen=True)
class Forecast:
    status: str                    # "ok", "unknown" (stale or no fill), "learning" (too few readings)
    fill_now: float                # NaN when unknown
    rate_per_usage_h: float        # NaN when not fitted
    hours_to_threshold: float      # from now; 0 when already there; inf when not filling; NaN unknown
    hours_low: float               # the interval about hours_to_threshold
    hours_high: float
    overflow_risk: float           # 0..1 before the next pass; NaN when unknown
    last_emptied_h: float | None
    reason: str


def detect_emptyings(fill: npt.ArrayLike, min_drop: float = 0.3, window: int = 3) -> list[int]:
    """Indices of the first reading after each emptying, on noisy data."""
    values = np.asarray(fill, dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(values))
    clean = values[idx]
    if clean.size <= window:
        return []
    # before[i]: median of the `window` readings before i; after[i]: of i and the next ones
    padded = np.concatenate([np.full(window, np.nan), clean, np.full(window, np.nan)])
    runs = nanmedian_rows(np.lib.stride_tricks.sliding_window_view(padded, window))
    before, after = runs[:clean.size], runs[window:window + clean.size]
    dropping = np.nan_to_num(before - after, nan=0.0) >= min_drop
    step = np.concatenate([[0.0], clean[:-1] - clean[1:]])
    drops: list[int] = []
    for start, stop in _runs(dropping):
        at = start + int(np.argmax(step[start:stop]))   # the biggest single step marks the moment
        if not drops or at - drops[-1] > window:
            drops.append(at)
    return [int(idx[at]) for at in drops]


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def learn_weekday_profile(times_h: npt.ArrayLike, fill: npt.ArrayLike, emptyings: list[int]) -> UsageProfile:
    """Weekday weights from the rises between readings outside emptyings (flat when too little data)."""
    t = np.asarray(times_h, dtype=np.float64)
    f = np.asarray(fill, dtype=np.float64)
    rise = np.diff(f)
    span = np.diff(t)
    # a full bin stops rising: its days say nothing about use
    keep = np.isfinite(rise) & (span > 0) & (rise > -0.05) & (f[:-1] < SATURATED) & (f[1:] < SATURATED)
    keep[[i - 1 for i in emptyings if i > 0]] = False
    weekday = (np.floor(t[:-1] / 24.0 + EPOCH_WEEKDAY) % 7).astype(np.int64)
    totals = np.bincount(weekday[keep], weights=np.clip(rise[keep], 0, None), minlength=7)
    days = np.bincount(weekday[keep], weights=span[keep], minlength=7) / 24.0
    seen = days >= 0.5
    if seen.sum() < 4 or totals.sum() <= 0:
        return DEFAULT_PROFILE
    per_day = np.where(seen, totals / np.where(seen, days, 1.0), 0.0)
    per_day[~seen] = per_day[seen].mean()     # a weekday never seen unsaturated: the average
    return UsageProfile.daytime(tuple(float(x) for x in per_day / per_day.mean()))


def forecast_bin(times_h: npt.ArrayLike, fill: npt.ArrayLike, now_h: float, next_pass_h: float,
                 threshold: float = 0.8, profile: UsageProfile = DEFAULT_PROFILE) -> Forecast:
    """One bin's forecast from its recent fills (oldest first)."""
    t = np.asarray(times_h, dtype=np.float64)
    f = np.asarray(fill, dtype=np.float64)
    ok = np.isfinite(f) & (t <= now_h)
    t, f = t[ok], f[ok]
    nan = float("nan")
    if t.size == 0 or now_h - t[-1] > STALE_AFTER_H:
        since = "no readings" if t.size == 0 else f"no reading for {(now_h - t[-1]) / 24:.1f} days"
        return Forecast("unknown", nan, nan, nan, nan, nan, nan, None, f"state unknown: {since}")
    emptyings = detect_emptyings(f)
    start = emptyings[-1] if emptyings else 0
    last_emptied = float(t[start]) if emptyings else None
    # usage hours since the cycle's first reading: an axis that starts at the data, not in 1970
    origin = float(profile.cumulative(t[start]))
    usage = profile.cumulative(t[start:]) - origin
    cycle = f[start:]
    fill_now = float(np.median(cycle[-3:]))
    if cycle.size < MIN_READINGS or np.ptp(usage) <= 0:
        return Forecast("learning", fill_now, nan, nan, nan, nan, nan, last_emptied,
                        f"{fill_now:.0%} full; too few readings since the last emptying to forecast")
    line = fit_fill_line(usage, cycle)
    rate, rate_se = line.rate, line.rate_se
    usage_now = float(profile.cumulative(now_h)) - origin
    fill_now = float(np.clip(line.at(usage_now), 0.0, 1.0))
    spread = max(2 * rate_se, RATE_SPREAD * rate)
    hours, low, high = (_hours_to(threshold, fill_now, r, now_h, profile)
                        for r in (rate, rate + spread, max(rate - spread, 0.0)))
    risk = _overflow_risk(fill_now, rate, rate_se, usage_now, float(profile.cumulative(next_pass_h)) - origin)
    return Forecast("ok", fill_now, rate, hours, low, high, risk, last_emptied,
                    _forecast_words(fill_now, threshold, hours, low, high))


@dataclass(frozen=True)
class FillLine:
    """Fill against usage hours, as a rate through the series' centre (mean usage, mean fill)."""

    rate: float                    # per usage hour, never below 0: a bin does not empty itself slowly
    rate_se: float                 # the least-squares slope's standard error
    centre_usage: float
    centre_fill: float

    def at(self, usage: float) -> float:
        return self.centre_fill + self.rate * (usage - self.centre_usage)


def fit_fill_line(usage: FloatArray, fill: FloatArray) -> FillLine:
    """Least squares, with a falling slope refitted as flat: the line is then the series' mean.

    Anchoring the line at the centre (not at usage 0) keeps the clipped line on the data.
    """
    dx = usage - usage.mean()
    sxx = float(dx @ dx)
    slope = float(dx @ (fill - fill.mean())) / sxx
    residual = fill - fill.mean() - slope * dx
    dof = max(usage.size - 2, 1)
    se = math.sqrt(float(residual @ residual) / dof / sxx)
    return FillLine(max(slope, 0.0), se, float(usage.mean()), float(fill.mean()))


def _hours_to(threshold: float, fill_now: float, rate: float, now_h: float, profile: UsageProfile) -> float:
    if fill_now >= threshold:
        return 0.0
    if rate <= 1e-9:
        return math.inf
    return float(profile.time_after(now_h, (threshold - fill_now) / rate) - now_h)


def _overflow_risk(fill_now: float, rate: float, rate_se: float, usage_now: float, usage_pass: float) -> float:
    if fill_now >= 0.999:
        return 1.0
    span = usage_pass - usage_now
    if span <= 0:
        return 0.0
    needed = (1.0 - fill_now) / span
    spread = max(rate_se, RATE_SPREAD / 2 * rate, 1e-6)
    return 0.5 * math.erfc((needed - rate) / (spread * math.sqrt(2.0)))


def _forecast_words(fill_now: float, threshold: float, hours: float, low: float, high: float) -> str:
    if hours == 0.0:
        return f"{fill_now:.0%} full, at or past {threshold:.0%}"
    if math.isinf(hours):
        return f"{fill_now:.0%} full and not filling"
    upper = "never" if math.isinf(high) else f"{high:.0f} h"
    return f"{fill_now:.0%} full; {threshold:.0%} in about {hours:.0f} h ({low:.0f} h to {upper})"


@dataclass(frozen=True)
class BinEvent:
    device_id: str
    kind: str                      # "fire" or "tilt"
    at_h: float
    value: float
    message: str


def detect_events(device_id: str, times_h: npt.ArrayLike, temp_c: npt.ArrayLike,
                  tilt_deg: npt.ArrayLike) -> list[BinEvent]:
    """Possible fires (temperature spikes) and knocked-over bins, one event per episode."""
    t = np.asarray(times_h, dtype=np.float64)
    temp = np.asarray(temp_c, dtype=np.float64)
    tilt = np.asarray(tilt_deg, dtype=np.float64)
    history = np.concatenate([np.full(BASELINE_READINGS, np.nan), temp[:-1]]) if temp.size else temp
    baseline = (nanmedian_rows(np.lib.stride_tricks.sliding_window_view(history, BASELINE_READINGS))
                if temp.size else temp)
    rise = np.nan_to_num(temp - baseline, nan=0.0)
    hot = (rise >= FIRE_RISE_C) | (np.nan_to_num(temp, nan=0.0) >= FIRE_ABSOLUTE_C)
    tilted = np.nan_to_num(tilt, nan=0.0) >= TILT_DEG
    events = [BinEvent(device_id, "fire", float(t[i]), float(temp[i]),
                       f"possible fire: {temp[i]:.0f} °C, {rise[i]:.0f} °C above the bin's usual")
              for i in _episode_starts(hot)]
    events += [BinEvent(device_id, "tilt", float(t[i]), float(tilt[i]),
                        f"knocked over: tilted {tilt[i]:.0f}°") for i in _episode_starts(tilted)]
    return sorted(events, key=lambda e: e.at_h)


def _episode_starts(flags: npt.NDArray[np.bool_]) -> list[int]:
    previous = np.concatenate([[False], flags[:-1]])
    return [int(i) for i in np.flatnonzero(flags & ~previous)]
