"""A home's air: heating, walls leaking heat outside, moisture from people and activities.

Temperature relaxes toward the heating set point while the heating is on and toward
the outdoor air (plus internal gains) while it is off; how fast depends on insulation.
Moisture is a balance in absolute humidity: outdoor air coming in by ventilation, and
people (breathing), showers, cooking and clothes drying indoors adding water. RH is the
resulting vapour pressure over the saturation pressure at the indoor temperature.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simulation.weather import Weather, hour_of_day, saturation_vapour_hpa

_RV = 461.5  # J/(kg K), water vapour


def absolute_humidity_g_m3(vapour_hpa: float, temp_c: float) -> float:
    return vapour_hpa * 100.0 / (_RV * (temp_c + 273.15)) * 1000.0


def vapour_hpa(absolute_g_m3: float, temp_c: float) -> float:
    return absolute_g_m3 / 1000.0 * _RV * (temp_c + 273.15) / 100.0


@dataclass(frozen=True)
class HomeProfile:
    name: str
    setpoint_c: float
    heating_hours: tuple[tuple[float, float], ...]
    cooling_tau_h: float  # insulation: hours to lose ~63 % of the gap to outdoors
    internal_gain_c: float
    ventilation_ach: float  # air changes per hour
    volume_m3: float
    people_g_h: float  # moisture from breathing and skin
    drying_clothes_chance: float  # per day


COLD_DAMP = HomeProfile("cold-damp", 16.5, ((7.0, 8.5), (17.5, 21.0)), 10.0, 4.0, 0.4, 180.0, 120.0, 0.6)
WARM_DRY = HomeProfile("warm-dry", 21.0, ((6.0, 23.0),), 14.0, 3.0, 0.9, 220.0, 110.0, 0.1)
TYPICAL = HomeProfile("typical", 19.0, ((6.5, 9.0), (16.0, 22.5)), 9.0, 2.5, 0.5, 200.0, 140.0, 0.3)
PROFILES = (COLD_DAMP, WARM_DRY, TYPICAL)


def heating_on(profile: HomeProfile, hour: float) -> bool:
    return any(start <= hour < end for start, end in profile.heating_hours)


def moisture_sources_g_h(profile: HomeProfile, hour: float, drying_today: bool, shower_at: float,
                         cooking_at: float) -> float:
    """Water added to the air now: people, a shower, cooking, clothes on the radiator."""
    source = profile.people_g_h
    if shower_at <= hour < shower_at + 0.25:
        source += 2400.0
    if cooking_at <= hour < cooking_at + 0.75:
        source += 900.0
    if drying_today and 10.0 <= hour < 20.0:
        source += 150.0
    return source


def step_temperature(temp_c: float, profile: HomeProfile, outdoor_c: float, hour: float,
                     dt_h: float) -> float:
    if heating_on(profile, hour):
        target, tau = profile.setpoint_c, 0.8
    else:
        target, tau = outdoor_c + profile.internal_gain_c, profile.cooling_tau_h
    return temp_c + (target - temp_c) * min(1.0, dt_h / tau)


def step_absolute_humidity(ah: float, profile: HomeProfile, outdoor_ah: float, sources_g_h: float,
                           dt_h: float) -> float:
    gain = sources_g_h / profile.volume_m3
    exchange = profile.ventilation_ach * (outdoor_ah - ah)
    return max(0.5, ah + (gain + exchange) * dt_h)


@dataclass
class HomeSim:
    """State of one home, advanced in steps of at most 5 simulated minutes."""

    profile: HomeProfile
    weather: Weather
    rng: random.Random
    time: datetime
    temp_c: float = 15.0
    ah_g_m3: float = 7.0
    _day: int = -1
    _drying: bool = False
    _shower_at: float = 7.0
    _cooking_at: float = 18.0
    step: timedelta = field(default=timedelta(minutes=5))

    def _new_day(self) -> None:
        self._day = self.time.toordinal()
        self._drying = self.rng.random() < self.profile.drying_clothes_chance
        self._shower_at = self.rng.uniform(6.5, 8.5)
        self._cooking_at = self.rng.uniform(17.5, 19.5)

    def advance(self, to: datetime) -> None:
        while self.time < to:
            if self.time.toordinal() != self._day:
                self._new_day()
            dt = min(self.step, to - self.time)
            hour, dt_h = hour_of_day(self.time), dt.total_seconds() / 3600.0
            outdoor = self.weather.air_temp_c(self.time)
            outdoor_ah = absolute_humidity_g_m3(
                saturation_vapour_hpa(outdoor) * self.weather.outdoor_rh_pct(self.time) / 100.0, outdoor)
            sources = moisture_sources_g_h(self.profile, hour, self._drying, self._shower_at,
                                           self._cooking_at)
            self.temp_c = step_temperature(self.temp_c, self.profile, outdoor, hour, dt_h)
            self.ah_g_m3 = step_absolute_humidity(self.ah_g_m3, self.profile, outdoor_ah, sources, dt_h)
            self.time += dt

    @property
    def rh_pct(self) -> float:
        rh = vapour_hpa(self.ah_g_m3, self.temp_c) / saturation_vapour_hpa(self.temp_c) * 100.0
        return min(100.0, rh)  # beyond saturation it condenses on the coldest wall
