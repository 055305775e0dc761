"""Simulated drivers: the same `read()` interface as the real ones, values from the physics.

Each reads its simulation at the SimClock's current instant, adds the sensor's own noise
from the device's seeded generator, and rounds as the real part would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from firmware.clock import Clock
from firmware.drivers.base import Battery, Climate, Position, Temperature, Tilt
from firmware.drivers.ultrasonic import UltrasonicSensor
from firmware.errors import NoFix
from simulation.bins import BinSim
from simulation.gritter import GritterSim
from simulation.homes import HomeSim
from simulation.roads import RoadSim


class SimDriver:
    """Simulated parts hold no hardware: nothing to close."""

    def close(self) -> None:
        pass


@dataclass
class SimHomeClimate(SimDriver):
    name: str
    home: HomeSim
    clock: Clock
    rng: random.Random

    def read(self) -> Climate:
        self.home.advance(self.clock.now())
        rh = min(100.0, max(0.0, self.home.rh_pct + self.rng.gauss(0.0, 0.4)))
        return Climate(round(self.home.temp_c + self.rng.gauss(0.0, 0.05), 2), round(rh, 1))


@dataclass
class SimRoadSurface(SimDriver):
    name: str
    road: RoadSim
    clock: Clock
    rng: random.Random

    def read(self) -> Temperature:
        self.road.advance(self.clock.now())
        assert self.road.surface_c is not None
        return Temperature(round(self.road.surface_c + self.rng.gauss(0.0, 0.06), 2))


@dataclass
class SimRoadAir(SimDriver):
    name: str
    road: RoadSim
    clock: Clock
    rng: random.Random

    def read(self) -> Climate:
        now = self.clock.now()
        weather = self.road.weather
        return Climate(round(weather.air_temp_c(now) + self.rng.gauss(0.0, 0.1), 2),
                       round(weather.outdoor_rh_pct(now), 1))


@dataclass
class SimRoadState(SimDriver):
    name: str
    road: RoadSim
    clock: Clock

    def read(self) -> str:
        self.road.advance(self.clock.now())
        return self.road.state


def sim_ultrasonic(name: str, bin_sim: BinSim, clock: Clock) -> UltrasonicSensor:
    """The real ultrasonic driver (median, compensation, blind zone) fed simulated echoes."""

    def ping() -> float | None:
        bin_sim.advance(clock.now())
        return bin_sim.ping_echo_s(bin_sim.temp_c)

    return UltrasonicSensor(name, "jsn-sr04t", ping=ping, ping_gap_s=0.0,
                            air_temp=lambda: bin_sim.temp_c)


@dataclass
class SimBinTemperature(SimDriver):
    name: str
    bin_sim: BinSim
    clock: Clock

    def read(self) -> Temperature:
        self.bin_sim.advance(self.clock.now())
        return Temperature(self.bin_sim.temp_c)


@dataclass
class SimBinTilt(SimDriver):
    name: str
    bin_sim: BinSim
    clock: Clock

    def read(self) -> Tilt:
        self.bin_sim.advance(self.clock.now())
        return Tilt(self.bin_sim.tilt_deg)


@dataclass
class SimBattery(SimDriver):
    """A battery bin sensor: 4.15 V fresh, losing a little every simulated day."""

    name: str
    clock: Clock
    volts_per_day: float = 0.004

    def read(self) -> Battery:
        start = getattr(self.clock, "start", self.clock.now())
        days = (self.clock.now() - start).total_seconds() / 86400.0
        return Battery(round(max(3.0, 4.15 - self.volts_per_day * days), 3))


@dataclass
class SimGPS(SimDriver):
    name: str
    gritter: GritterSim
    clock: Clock

    def read(self) -> Position:
        now = self.clock.now()
        if not self.gritter.has_fix(now):
            raise NoFix(self.name, "no position fix yet (cold start)")
        lat, lon, _ = self.gritter.route.where(self.gritter.km_at(now))
        return Position(lat, lon, now)


@dataclass
class SimGritterSurface(SimDriver):
    name: str
    gritter: GritterSim
    clock: Clock
    rng: random.Random

    def read(self) -> Temperature:
        return Temperature(round(self.gritter.surface_c(self.clock.now()) + self.rng.gauss(0.0, 0.15), 2))

