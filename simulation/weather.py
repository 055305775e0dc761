"""The city's outdoor weather as pure functions of time and a seed.

Winter air temperature: a seasonal mean, a daily cycle (coldest near 06:00, warmest
near 15:00) and a few slow "weather systems" (seeded sines, periods of days). Rain comes
in wet and dry spells: smooth seeded noise above a threshold, so spells last hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from simulation.seeds import rng_for

EPOCH = datetime(2000, 1, 1).timestamp()


def hours_since_epoch(ts: datetime) -> float:
    return (ts.timestamp() - EPOCH) / 3600.0


def hour_of_day(ts: datetime) -> float:
    return ts.hour + ts.minute / 60.0 + ts.second / 3600.0


def saturation_vapour_hpa(temp_c: float) -> float:
    """Magnus over water (Alduchov & Eskridge 1996), docs/science.md#dew-point-and-frost-point."""
    return 6.1094 * math.exp(17.625 * temp_c / (243.04 + temp_c))


@dataclass(frozen=True)
class Weather:
    """Seeded parameters; `air_temp_c` and `rain_mm_h` are pure in (self, time)."""

    mean_c: float
    daily_amplitude_c: float
    systems: tuple[tuple[float, float, float], ...]  # (amplitude degC, period h, phase)
    rain_waves: tuple[tuple[float, float], ...]  # (period h, phase)
    rain_threshold: float

    @classmethod
    def seeded(cls, seed: int | str, mean_c: float = 4.0) -> Weather:
        rng = rng_for("weather", seed)
        systems = tuple((rng.uniform(1.0, 3.0), rng.uniform(60, 170), rng.uniform(0, 2 * math.pi))
                        for _ in range(3))
        waves = tuple((rng.uniform(6, 40), rng.uniform(0, 2 * math.pi)) for _ in range(4))
        return cls(mean_c, rng.uniform(2.5, 4.5), systems, waves, rng.uniform(0.35, 0.6))

    def air_temp_c(self, ts: datetime) -> float:
        h = hours_since_epoch(ts)
        daily = -math.cos(2 * math.pi * (hour_of_day(ts) - 3.0) / 24.0)  # min 03:00-06:00, max ~15:00
        synoptic = sum(a * math.sin(2 * math.pi * h / period + phase) for a, period, phase in self.systems)
        return self.mean_c + self.daily_amplitude_c * daily + synoptic

    def sky_clearness(self, ts: datetime) -> float:
        """0 overcast .. 1 clear: clear nights are the cold ones."""
        return max(0.0, min(1.0, 0.5 - self._rain_index(ts)))

    def _rain_index(self, ts: datetime) -> float:
        h = hours_since_epoch(ts)
        return sum(math.sin(2 * math.pi * h / period + phase) for period, phase in self.rain_waves) / 4.0

    def rain_mm_h(self, ts: datetime) -> float:
        excess = self._rain_index(ts) - self.rain_threshold + 0.3
        return round(max(0.0, excess) * 6.0, 3)

    def outdoor_rh_pct(self, ts: datetime) -> float:
        return 95.0 if self.rain_mm_h(ts) > 0 else 80.0 + 8.0 * self.sky_clearness(ts)
