"""Road surface temperature and wetness at one site.

The surface follows a target with a lag (its thermal mass): the air temperature, plus
sun by day, minus radiative cooling on clear nights, plus the site's thermal-mapping
offset. A bridge deck has air under it: less mass (shorter lag) and more night cooling,
so it goes below zero first. Water on the surface builds with rain and dries with
warmth; wet at or below 0 degC is ice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from simulation.weather import Weather, hour_of_day

State = Literal["dry", "damp", "wet", "ice"]


@dataclass(frozen=True)
class RoadSite:
    name: str
    offset_c: float  # thermal mapping: this site against the route average
    bridge: bool = False

    @property
    def lag_h(self) -> float:
        return 0.7 if self.bridge else 2.0

    @property
    def night_cooling_c(self) -> float:
        return 4.5 if self.bridge else 3.0


def surface_target_c(site: RoadSite, air_c: float, hour: float, clearness: float) -> float:
    sun = max(0.0, math.sin(math.pi * (hour - 8.0) / 8.0)) if 8.0 <= hour <= 16.0 else 0.0
    night = 1.0 if hour >= 17.0 or hour < 8.0 else 0.0
    return air_c + 3.0 * sun * clearness - site.night_cooling_c * night * clearness + site.offset_c


def step_water_mm(water_mm: float, rain_mm_h: float, surface_c: float, dt_h: float) -> float:
    drying = 0.05 + 0.02 * max(0.0, surface_c)  # mm/h: faster when warm
    return max(0.0, min(2.0, water_mm + (rain_mm_h - drying) * dt_h))


def surface_state(water_mm: float, surface_c: float) -> State:
    if water_mm >= 0.02 and surface_c <= 0.0:
        return "ice"
    if water_mm >= 0.2:
        return "wet"
    return "damp" if water_mm >= 0.02 else "dry"


@dataclass
class RoadSim:
    site: RoadSite
    weather: Weather
    time: datetime
    surface_c: float | None = None
    water_mm: float = 0.0
    step: timedelta = timedelta(minutes=10)

    def advance(self, to: datetime) -> None:
        if self.surface_c is None:
            self.surface_c = self.weather.air_temp_c(self.time) + self.site.offset_c
        while self.time < to:
            dt = min(self.step, to - self.time)
            dt_h = dt.total_seconds() / 3600.0
            target = surface_target_c(self.site, self.weather.air_temp_c(self.time), hour_of_day(self.time),
                                      self.weather.sky_clearness(self.time))
            self.surface_c += (target - self.surface_c) * min(1.0, dt_h / self.site.lag_h)
            rain = self.weather.rain_mm_h(self.time)
            self.water_mm = step_water_mm(self.water_mm, rain, self.surface_c, dt_h)
            self.time += dt

    @property
    def state(self) -> State:
        assert self.surface_c is not None
        return surface_state(self.water_mm, self.surface_c)
