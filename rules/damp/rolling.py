"""The damp rules as a service holds them: every home's last 37 days in rings, updated one hour at a time.

`RollingDamp.push_hour` takes one new hour for every home and costs O(homes): it writes
the hour into ring buffers, adds it to running sums for this week, the last 30 days, and
the same two windows a week earlier, subtracts the hours that leave them, steps the
mould state, and screens the hour. The sums give the same `risk.Metrics` that
`risk.window_metrics` computes from whole arrays (tests hold the two equal), so levels,
reasons and changes come from the same code.

Humidity pinned at 0 or 100 % is held back: those hours count for nothing until the run
either ends within 24 h (then they are applied, in order) or reaches 24 h (a stuck
sensor: dropped and reported).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rules.damp import mould, risk, surface
from rules.damp.quality import (
    PINNED_HIGH_PCT,
    STUCK_RUN_HOURS,
    FaultCounts,
    HourlySeries,
    check_hours,
    fault_sentences,
)

log = logging.getLogger("rules.damp.rolling")

FloatArray = npt.NDArray[np.float64]
RING_H = risk.MONTH_H + risk.WEEK_H          # 30 days now, and the 30 days ending a week ago
MISSING, IMPOSSIBLE, CLOCK, STUCK, FRACTION, PINNED_HIGH = 1, 2, 4, 8, 16, 32
# the per-hour amounts the window sums are made of
_TERMS = ("usable", "damp", "wet", "surface_rh", "surface_t", "indoor_t", "indoor_rh")


@dataclass(frozen=True)
class HourInput:
    """One hour for every home (arrays over homes; NaN and readings 0 where a home has no data)."""

    air_temp: FloatArray
    rh: FloatArray
    rh_min: FloatArray
    rh_max: FloatArray
    readings: npt.NDArray[np.int64]
    outdoor_c: FloatArray

    @classmethod
    def from_series(cls, series: HourlySeries, column: int, outdoor_c: FloatArray,
                    homes: slice = slice(None)) -> HourInput:
        """One column of homes x hours arrays (outdoor_c: one value per home)."""
        return cls(series.air_temp[homes, column], series.rh[homes, column], series.rh_min[homes, column],
                   series.rh_max[homes, column], series.readings[homes, column], outdoor_c)


class RollingDamp:
    """Rings of the last RING_H hours per home, running window sums, and the mould state."""

    def __init__(self, f_rsi: FloatArray, classes: mould.ClassArrays, state: mould.MouldState | None = None,
                 fallback_notes: list[str] | None = None) -> None:
        homes = f_rsi.shape[0]
        self.homes = homes
        self.f_rsi = f_rsi.astype(np.float32)
        self.classes = classes
        self.state = state if state is not None else mould.MouldState.zeros(homes)
        self.fallback_notes = fallback_notes or [""] * homes
        self.pushed = 0
        self.terms = {name: np.zeros((homes, RING_H), dtype=np.float32) for name in _TERMS}
        # the hour's surface and indoor values, whether counted yet or not (pinned hours wait)
        self.raw = {name: np.full((homes, RING_H), np.nan, dtype=np.float32)
                    for name in ("t_si", "rh_si", "air", "rh")}
        self.flags = np.zeros((homes, RING_H), dtype=np.uint8)
        self.index_ring = np.full((homes, risk.WEEK_H + 1), np.nan, dtype=np.float32)
        # running sums: (window, term) -> homes; windows: week/month now, week/month a week ago
        self.sums = {(w, t): np.zeros(homes) for w in ("week", "month", "week_before", "month_before")
                     for t in _TERMS}
        self.pinned_run = np.zeros(homes, dtype=np.int64)

    def _col(self, hours_ago: int) -> int:
        """Ring column of the hour pushed `hours_ago` pushes before the latest."""
        return (self.pushed - 1 - hours_ago) % RING_H

    def _move(self, column: int, window: str, sign: float) -> None:
        for name in _TERMS:
            self.sums[(window, name)] += sign * self.terms[name][:, column].astype(np.float64)

    def push_hour(self, hour: HourInput) -> None:
        """Add one hour for every home: O(homes)."""
        # 1. what leaves the windows (before the column is overwritten)
        if self.pushed >= RING_H:
            self._move(self.pushed % RING_H, "month_before", -1.0)
        self.pushed += 1
        column = self._col(0)
        if self.pushed > risk.WEEK_H:
            leaving_week = self._col(risk.WEEK_H)
            self._move(leaving_week, "week", -1.0)
            self._move(leaving_week, "week_before", +1.0)
            self._move(leaving_week, "month_before", +1.0)
        if self.pushed > 2 * risk.WEEK_H:
            self._move(self._col(2 * risk.WEEK_H), "week_before", -1.0)
        if self.pushed > risk.MONTH_H:
            self._move(self._col(risk.MONTH_H), "month", -1.0)

        # 2. screen the new hour
        checks = check_hours(hour.air_temp, hour.rh, hour.rh_min, hour.rh_max, hour.readings)
        present, impossible, pinned, clock = checks.present, checks.impossible, checks.pinned, checks.clock
        with np.errstate(invalid="ignore"):
            fraction = present & ~impossible & ~pinned & (hour.rh_max <= 1.0)
        flags = (np.where(~present, MISSING, 0) | np.where(impossible, IMPOSSIBLE, 0) | np.where(clock, CLOCK, 0)
                 | np.where(fraction, FRACTION, 0)
                 | np.where(pinned & (hour.rh_min >= PINNED_HIGH_PCT), PINNED_HIGH, 0)).astype(np.uint8)
        good = present & ~impossible & ~clock & ~fraction

        # 3. cold-spot conditions for the new hour (kept raw: pinned hours are counted later or never)
        air = np.where(good, hour.air_temp, np.nan).astype(np.float32)
        rh = np.where(good, hour.rh, np.nan).astype(np.float32)
        t_si, rh_si = surface.cold_spot_float32(air, rh, hour.outdoor_c, self.f_rsi)
        for name, values in (("t_si", t_si), ("rh_si", rh_si), ("air", air), ("rh", rh)):
            self.raw[name][:, column] = values
        for name in _TERMS:
            self.terms[name][:, column] = 0.0

        # 4. pinned runs: hold back, release when the run ends short, drop when it reaches 24 h
        pinned_good = pinned & good
        ended = ~pinned_good & (self.pinned_run > 0)
        self._release(np.flatnonzero(ended & (self.pinned_run < STUCK_RUN_HOURS)))
        run = np.where(pinned_good, self.pinned_run + 1, 0)
        for home in np.flatnonzero(run == STUCK_RUN_HOURS):
            self.flags[home, [self._col(k) for k in range(1, STUCK_RUN_HOURS)]] |= STUCK
        flags |= np.where(run >= STUCK_RUN_HOURS, STUCK, 0).astype(np.uint8)
        self.pinned_run = run
        self.flags[:, column] = flags

        commit = good & ~pinned_good
        self._commit(column, commit)
        self.state = mould.step_hour(self.state, np.where(commit, t_si, np.nan), np.where(commit, rh_si, np.nan),
                                     self.classes)
        self.index_ring[:, self.pushed % (risk.WEEK_H + 1)] = self.state.index

    def _commit(self, column: int, homes: npt.NDArray[np.bool_]) -> None:
        """Count a column's values for these homes in the ring and in this week's and month's sums."""
        raw = {name: values[:, column] for name, values in self.raw.items()}
        with np.errstate(invalid="ignore"):
            values = {"usable": homes, "damp": raw["rh_si"] >= surface.MOULD_SURFACE_RH,
                      "wet": raw["rh_si"] >= risk.CONDENSATION_RH - 1e-9,
                      "surface_rh": np.minimum(raw["rh_si"], np.float32(100.0)),
                      "surface_t": raw["t_si"], "indoor_t": raw["air"], "indoor_rh": raw["rh"]}
        for name, value in values.items():
            term = self.terms[name]
            term[:, column] = np.where(homes, value, term[:, column])
            added = np.where(homes, term[:, column], 0.0)
            self.sums[("week", name)] += added
            self.sums[("month", name)] += added

    def _release(self, homes: npt.NDArray[np.int64]) -> None:
        """A pinned run ended within 24 h: it was real (a steamy shower, a hot dry day); apply its hours."""
        for home in homes:
            mask = np.zeros(self.homes, dtype=bool)
            mask[home] = True
            row = slice(home, home + 1)
            classes = self.classes.select(row)
            for back in range(int(self.pinned_run[home]), 0, -1):
                col = self._col(back)  # the pushed counter already counts the hour that ended the run
                self._commit(col, mask)
                one = mould.step_hour(mould.MouldState(self.state.index[row], self.state.dry_hours[row]),
                                      self.raw["t_si"][row, col], self.raw["rh_si"][row, col], classes)
                self.state.index[home], self.state.dry_hours[home] = one.index[0], one.dry_hours[0]

    def _metrics(self, week: str, month: str) -> risk.Metrics:
        def mean(window: str, name: str) -> FloatArray:
            count = self.sums[(window, "usable")]
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(np.where(count > 0, self.sums[(window, name)] / count, np.nan), dtype=np.float64)

        def hours(window: str, name: str) -> npt.NDArray[np.int64]:
            return np.rint(self.sums[(window, name)]).astype(np.int64)

        rh30, t30 = mean(month, "surface_rh"), mean(month, "surface_t")
        with np.errstate(invalid="ignore"):
            ashrae = ((rh30 >= risk.ASHRAE_RH_LIMIT) & (t30 >= risk.ASHRAE_T_RANGE_C[0])
                      & (t30 <= risk.ASHRAE_T_RANGE_C[1]))
        return risk.Metrics(
            usable_hours_7d=hours(week, "usable"), damp_hours_7d=hours(week, "damp"),
            condensation_hours_7d=hours(week, "wet"), damp_hours_30d=hours(month, "damp"),
            condensation_hours_30d=hours(month, "wet"), surface_rh_30d=rh30, surface_t_30d=t30,
            indoor_t_7d=mean(week, "indoor_t"), indoor_rh_7d=mean(week, "indoor_rh"), ashrae_exceeded=ashrae)

    def metrics(self) -> risk.Metrics:
        return self._metrics("week", "month")

    def faults(self, future_readings: npt.ArrayLike | None = None) -> list[list[str]]:
        span = min(self.pushed, RING_H)
        counts = {bit: np.count_nonzero(self.flags & bit, axis=1) for bit in
                  (MISSING, IMPOSSIBLE, CLOCK, STUCK, FRACTION)}
        high = np.count_nonzero(((self.flags & STUCK) > 0) & ((self.flags & PINNED_HIGH) > 0), axis=1)
        future = np.zeros(self.homes, dtype=np.int64) if future_readings is None else np.asarray(future_readings)
        out: list[list[str]] = [[] for _ in range(self.homes)]
        troubled = np.logical_or.reduce([c > 0 for c in counts.values()]) | (future > 0)
        for home in np.flatnonzero(troubled):
            out[home] = fault_sentences(FaultCounts(
                hours=span, missing=int(counts[MISSING][home]), fraction=bool(counts[FRACTION][home]),
                stuck=int(counts[STUCK][home]), stuck_high=2 * int(high[home]) >= int(counts[STUCK][home]),
                impossible=int(counts[IMPOSSIBLE][home]), clock=int(counts[CLOCK][home]),
                future=int(future[home])))
        return out

    def assessments(self, future_readings: npt.ArrayLike | None = None) -> list[risk.Assessment]:
        """Every home's assessment at the latest hour, from the running sums."""
        before = self._metrics("week_before", "month_before") if self.pushed > risk.WEEK_H else None
        week_ago = (self.index_ring[:, (self.pushed - risk.WEEK_H) % (risk.WEEK_H + 1)].astype(np.float64)
                    if self.pushed > risk.WEEK_H else None)
        return risk.assessments_from(self.metrics(), before, self.state.index, week_ago,
                                     self.faults(future_readings), self.fallback_notes)
