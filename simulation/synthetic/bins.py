"""Simulated bin histories for tests, the benchmark and the insight simulation.

Wraps simulation.bins (the same simulated bins the device agent publishes): each
reading is one noisy ping turned into the distance a sensor calibrated for 20 degC
reports, with the bin's temperature, tilt and the true fill kept alongside.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from rules.bins.fill import SPEED_AT_20C
from simulation.bins import BinSim, BinSpec
from simulation.weather import Weather

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BinHistory:
    times_h: FloatArray            # hours since the epoch
    distance_mm: FloatArray        # NaN: no echo
    temp_c: FloatArray
    tilt_deg: FloatArray
    true_fill: FloatArray
    spec: BinSpec


def hours(moment: datetime) -> float:
    return moment.timestamp() / 3600.0


def simulate_bin(spec: BinSpec, start: datetime, days: float, every: timedelta = timedelta(minutes=30),
                 seed: int = 0) -> BinHistory:
    rng = random.Random(seed)
    sim = BinSim(spec, Weather.seeded(seed), rng, start.astimezone(UTC))
    count = int(timedelta(days=days) / every)
    rows = np.full((count, 5), np.nan)
    for i in range(count):
        sim.advance(sim.time + every)
        echo = sim.ping_echo_s(sim.weather.air_temp_c(sim.time))
        distance = np.nan if echo is None else echo * SPEED_AT_20C / 2.0 * 1000.0
        rows[i] = (hours(sim.time), distance, sim.temp_c, sim.tilt_deg, sim.fill)
    return BinHistory(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4], spec)
