"""The householder's diary: activities linked to humidity spikes, and advice from what they show.

Input is one home's regular 5-minute readings (NaN where missing) and the diary entries.
A spike is a rise of `min_rise` points or more above the median humidity of the two
hours before; an activity explains it when it was logged up to an hour before the rise began
(or up to 15 minutes after: people log late). Rises nobody logged are grouped by time of
day, so the advice can ask what happens then.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from rules.errors import InvalidDiaryEntry

log = logging.getLogger("rules.damp.diary")

FloatArray = npt.NDArray[np.float64]
Times = npt.NDArray[np.datetime64]
SAMPLE = np.timedelta64(5, "m")
BASELINE_SAMPLES = 24            # the two hours before
LINK_BEFORE = np.timedelta64(60, "m")
LINK_AFTER = np.timedelta64(15, "m")
AFTER_WINDOW = np.timedelta64(30, "m")
HEATING_OFF_WINDOW = np.timedelta64(6, "h")
COLD_HOME_C = 16.0


class Activity(StrEnum):
    SHOWER = "shower"
    COOKING = "cooking"
    DRYING_CLOTHES = "drying_clothes"
    WINDOWS_OPENED = "windows_opened"
    HEATING_ON = "heating_on"
    HEATING_OFF = "heating_off"


MOISTURE_SOURCES = (Activity.SHOWER, Activity.COOKING, Activity.DRYING_CLOTHES)


def as_utc_minute(value: object) -> np.datetime64:
    """A time as numpy UTC minutes; aware datetimes are converted, naive ones taken as UTC."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    try:
        converted = np.asarray(value).astype("datetime64[m]")
    except (ValueError, TypeError):
        raise InvalidDiaryEntry(f"{value!r} is not a time") from None
    if converted.shape != ():
        raise InvalidDiaryEntry(f"{value!r} is not one time")
    return np.datetime64(converted.item(), "m") if not np.isnat(converted) else np.datetime64("NaT", "m")


@dataclass(frozen=True)
class DiaryEntry:
    at: np.datetime64
    activity: Activity
    minutes: int | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "activity", Activity(self.activity))
        except ValueError:
            raise InvalidDiaryEntry(f"unknown activity {self.activity!r}") from None
        object.__setattr__(self, "at", as_utc_minute(self.at))
        if np.isnat(self.at):
            raise InvalidDiaryEntry("a diary entry needs a time")
        if self.minutes is not None and self.minutes <= 0:
            raise InvalidDiaryEntry(f"minutes must be positive, got {self.minutes}")


@dataclass(frozen=True)
class Spike:
    start: np.datetime64
    peak: np.datetime64
    rise_pct: float
    peak_rh: float
    explained_by: Activity | None = None


@dataclass(frozen=True)
class DiaryAnalysis:
    spikes: list[Spike]
    unexplained_by_hour: npt.NDArray[np.int64]          # 24 counts, UTC hour the rise began
    advice: list[str] = field(default_factory=list)


def find_spikes(times: Times, rh: FloatArray, min_rise: float = 5.0) -> list[Spike]:
    """Rises of min_rise points or more above the median humidity of the two hours before.

    A median ignores short dips (a window opened) that a minimum would turn into false rises."""
    if rh.size <= BASELINE_SAMPLES:
        return []
    padded = np.concatenate([np.full(BASELINE_SAMPLES, rh[0]), rh])
    windows = np.lib.stride_tricks.sliding_window_view(padded, BASELINE_SAMPLES)[:-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows (a long gap) give NaN
        baseline = np.nanmedian(windows, axis=1)
    with np.errstate(invalid="ignore"):
        rising = (rh - baseline) >= min_rise
    edges = np.diff(np.concatenate([[0], rising.astype(np.int8), [0]]))
    spikes = []
    for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        peak = start + int(np.nanargmax(rh[start:end]))
        spikes.append(Spike(start=times[start], peak=times[peak], rise_pct=float(rh[peak] - baseline[start]),
                            peak_rh=float(rh[peak])))
    return spikes


def link(spikes: list[Spike], entries: list[DiaryEntry]) -> list[Spike]:
    """Each spike with the moisture activity logged nearest before it (within the link window)."""
    sources = sorted((e for e in entries if e.activity in MOISTURE_SOURCES), key=lambda e: e.at)
    linked = []
    for spike in spikes:
        near = [e for e in sources if spike.start - LINK_BEFORE <= e.at <= spike.start + LINK_AFTER]
        best = min(near, key=lambda e: abs(spike.start - e.at), default=None)
        linked.append(Spike(spike.start, spike.peak, spike.rise_pct, spike.peak_rh,
                            best.activity if best else None))
    return linked


def _mean_after(times: Times, values: FloatArray, at: np.datetime64, span: np.timedelta64) -> float:
    window = (times > at) & (times <= at + span) & np.isfinite(values)
    return float(values[window].mean()) if window.any() else float("nan")


def _value_at(times: Times, values: FloatArray, at: np.datetime64) -> float:
    before = (times < at) & (times >= at - AFTER_WINDOW) & np.isfinite(values)
    return float(values[before][-1]) if before.any() else float("nan")


def analyse(times: Times, temp: FloatArray, rh: FloatArray, entries: list[DiaryEntry],
            min_rise: float = 5.0) -> DiaryAnalysis:
    """Spikes, what explains them, and advice in plain words."""
    spikes = link(find_spikes(times, rh, min_rise), entries)
    unexplained = np.zeros(24, dtype=np.int64)
    for spike in spikes:
        if spike.explained_by is None:
            unexplained[int(spike.start.astype("datetime64[h]").astype(np.int64) % 24)] += 1
    return DiaryAnalysis(spikes, unexplained, advise(times, temp, rh, spikes, entries, unexplained))


def advise(times: Times, temp: FloatArray, rh: FloatArray, spikes: list[Spike], entries: list[DiaryEntry],
           unexplained_by_hour: npt.NDArray[np.int64]) -> list[str]:
    advice: list[str] = []
    by_source = Counter(s.explained_by for s in spikes if s.explained_by)
    rise = {a: np.mean([s.rise_pct for s in spikes if s.explained_by == a]) for a in by_source}
    if by_source[Activity.SHOWER]:
        advice.append(f"Showers raised the humidity by about {rise[Activity.SHOWER]:.0f} points "
                      f"({by_source[Activity.SHOWER]} times): run the extractor fan during and for 20 minutes "
                      f"after a shower, with the bathroom door shut.")
    if by_source[Activity.COOKING]:
        advice.append(f"Cooking raised the humidity by about {rise[Activity.COOKING]:.0f} points "
                      f"({by_source[Activity.COOKING]} times): put lids on pans and use the cooker hood, or open "
                      f"a window a little while cooking.")
    if by_source[Activity.DRYING_CLOTHES]:
        advice.append(f"Drying clothes indoors raised the humidity by about {rise[Activity.DRYING_CLOTHES]:.0f} "
                      f"points ({by_source[Activity.DRYING_CLOTHES]} times): dry them outside, or in one room with "
                      f"the door shut and a window open a little.")
    windows = [e for e in entries if e.activity == Activity.WINDOWS_OPENED]
    drops = [_value_at(times, rh, e.at) - _mean_after(times, rh, e.at, AFTER_WINDOW) for e in windows]
    drops = [d for d in drops if np.isfinite(d)]
    if drops and np.mean(drops) >= 2:
        advice.append(f"Opening the windows brought the humidity down by about {np.mean(drops):.0f} points: "
                      f"a few minutes of fresh air after showering and cooking helps.")
    heating_off = [e for e in entries if e.activity == Activity.HEATING_OFF]
    cooled = [_mean_after(times, temp, e.at, HEATING_OFF_WINDOW) for e in heating_off]
    cooled = [c for c in cooled if np.isfinite(c)]
    if cooled and min(cooled) < COLD_HOME_C:
        advice.append(f"After the heating went off the home cooled to about {min(cooled):.0f} °C: keeping the "
                      f"heating on low (at least {COLD_HOME_C:.0f} °C) keeps walls warmer than the point "
                      f"where water condenses on them.")
    total = int(unexplained_by_hour.sum())
    if total >= 3:
        start = int(np.argmax(np.convolve(np.concatenate([unexplained_by_hour, unexplained_by_hour[:1]]),
                                          [1, 1], mode="valid")))
        advice.append(f"{total} rises in humidity are not in the diary, most often between {start:02d}:00 and "
                      f"{(start + 2) % 24:02d}:00: noting what happens then helps explain them.")
    return advice
