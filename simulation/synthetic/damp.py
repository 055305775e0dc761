"""Synthetic frog readings for tests and benchmarks: homes x 5-minute samples, and hourly roll-up.

A home is an indoor mean temperature and RH with a daily cycle and noise, beside an
outdoor temperature with its own daily cycle. Deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rules.damp.quality import READINGS_PER_HOUR, HourlySeries

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Climate:
    indoor_c: float
    indoor_rh: float
    outdoor_c: float
    daily_swing_c: float = 2.0
    daily_swing_rh: float = 5.0
    noise_rh: float = 1.0


DAMP_COLD_HOME = Climate(indoor_c=14.0, indoor_rh=78.0, outdoor_c=3.0)
DRY_WARM_HOME = Climate(indoor_c=21.0, indoor_rh=45.0, outdoor_c=9.0)


def five_minute_readings(climates: list[Climate], days: int, seed: int = 0, start: str = "2026-01-01T00:00",
                         dtype: type[np.floating] = np.float32
                         ) -> tuple[npt.NDArray[np.datetime64], FloatArray, FloatArray, FloatArray]:
    """(times, indoor temperature, indoor RH, outdoor temperature), homes x samples."""
    rng = np.random.default_rng(seed)
    samples = days * 24 * READINGS_PER_HOUR
    times = np.datetime64(start, "m") + np.arange(samples) * np.timedelta64(5, "m")
    phase = (np.arange(samples, dtype=dtype) / (24 * READINGS_PER_HOUR) * 2 * np.pi)
    cycle = np.sin(phase).astype(dtype)
    params = np.array([[c.indoor_c, c.indoor_rh, c.outdoor_c, c.daily_swing_c, c.daily_swing_rh, c.noise_rh]
                       for c in climates], dtype=dtype)
    temp = params[:, 0:1] + params[:, 3:4] * cycle
    rh = params[:, 1:2] - params[:, 4:5] * cycle + params[:, 5:6] * rng.standard_normal(
        (len(climates), samples), dtype=np.float32).astype(dtype)
    np.clip(rh, 1.5, 100.0, out=rh)
    outdoor = params[:, 2:3] + 1.5 * params[:, 3:4] * cycle
    return times, np.asarray(temp, dtype=np.float64), np.asarray(rh, dtype=np.float64), \
        np.asarray(outdoor, dtype=np.float64)


def hourly(times: npt.NDArray[np.datetime64], temp: FloatArray, rh: FloatArray) -> HourlySeries:
    """Roll regular 5-minute homes x samples arrays (NaN for missing samples) up to hours."""
    homes, samples = temp.shape
    shape = (homes, samples // READINGS_PER_HOUR, READINGS_PER_HOUR)
    t = temp[:, : shape[1] * READINGS_PER_HOUR].reshape(shape)
    h = rh[:, : shape[1] * READINGS_PER_HOUR].reshape(shape)
    counts = np.isfinite(t).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return HourlySeries(
            hours=times[:: READINGS_PER_HOUR][: shape[1]].astype("datetime64[h]"),
            air_temp=np.nansum(t, axis=2) / counts, rh=np.nansum(h, axis=2) / counts,
            rh_min=np.fmin.reduce(h, axis=2), rh_max=np.fmax.reduce(h, axis=2),
            readings=counts.astype(np.int64))


def hourly_outdoor(outdoor: FloatArray) -> FloatArray:
    homes, samples = outdoor.shape
    hours = samples // READINGS_PER_HOUR
    return np.asarray(outdoor[:, : hours * READINGS_PER_HOUR].reshape(homes, hours, READINGS_PER_HOUR)
                      .mean(axis=2), dtype=np.float64)
