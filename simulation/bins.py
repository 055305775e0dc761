"""A street bin filling up, being emptied, now and then on fire or knocked over.

Fill grows by day with a weekday profile (busier at the weekend), the bin is emptied on
its collection day, and the ultrasonic sensor above it gets noisy pings: scatter, some
with no echo, the odd reflection off the rim. Temperature follows the outdoor air unless
the contents smoulder (a fire: tens of degrees for a few hours); a knocked-over bin
reads a large tilt until the crew rights it at the next collection.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulation.weather import Weather, hour_of_day

WEEKDAY_FACTOR = (0.8, 0.85, 0.9, 1.0, 1.2, 1.6, 1.4)  # Monday .. Sunday


def fill_rate_per_h(base_per_day: float, weekday: int, hour: float) -> float:
    """Fraction of the bin per hour: nothing at night, a weekday shape by day."""
    if not 7.0 <= hour < 22.0:
        return 0.0
    return base_per_day * WEEKDAY_FACTOR[weekday] / 15.0


@dataclass(frozen=True)
class BinSpec:
    sensor_height_mm: int = 1300  # sensor to the bottom of the empty bin
    depth_mm: int = 1000  # full is 300 mm from the sensor: outside a JSN-SR04T's blind zone
    base_fill_per_day: float = 0.25
    collection_weekday: int = 0
    fire_chance_per_day: float = 0.004
    tilt_chance_per_day: float = 0.006

    def distance_mm(self, fill: float) -> float:
        return self.sensor_height_mm - fill * self.depth_mm


@dataclass
class BinSim:
    spec: BinSpec
    weather: Weather
    rng: random.Random
    time: datetime
    fill: float = 0.1
    fire_until: datetime | None = None
    tilted: bool = False
    step: timedelta = timedelta(minutes=30)

    def advance(self, to: datetime) -> None:
        while self.time < to:
            dt = min(self.step, to - self.time)
            dt_h = dt.total_seconds() / 3600.0
            hour = hour_of_day(self.time)
            weekday = self.time.weekday()
            if weekday == self.spec.collection_weekday and 9.0 <= hour < 9.0 + dt_h:
                self.fill, self.tilted = 0.02, False
            growth = fill_rate_per_h(self.spec.base_fill_per_day, weekday, hour) * dt_h
            self.fill = min(1.0, self.fill + growth * self.rng.uniform(0.5, 1.5))
            if self.rng.random() < self.spec.fire_chance_per_day * dt_h / 24.0:
                self.fire_until = self.time + timedelta(hours=self.rng.uniform(1, 4))
            if self.rng.random() < self.spec.tilt_chance_per_day * dt_h / 24.0:
                self.tilted = True
            self.time += dt

    @property
    def temp_c(self) -> float:
        outdoor = self.weather.air_temp_c(self.time)
        if self.fire_until is not None and self.time < self.fire_until:
            return round(outdoor + 55.0, 1)
        return round(outdoor + 1.0, 1)

    @property
    def tilt_deg(self) -> float:
        return 90.0 if self.tilted else 2.0

    def ping_echo_s(self, air_temp_c: float) -> float | None:
        """One echo round trip as the sensor would time it (None: no echo)."""
        roll = self.rng.random()
        if roll < 0.08:
            return None
        distance = self.spec.distance_mm(self.fill) + self.rng.gauss(0.0, 12.0)
        if roll < 0.12:
            distance = self.rng.uniform(40.0, 120.0)  # reflection off the rim or a bag: a blind-zone echo
        speed = 331.3 + 0.606 * air_temp_c
        return 2.0 * max(distance, 1.0) / 1000.0 / speed
