"""HC-SR04 / JSN-SR04T ultrasonic distance (bin fill level).

Pure part: echo round-trip times -> distance, compensated for the speed of sound at the
air temperature (331.3 + 0.606 T m/s), the median of several pings, pings inside the
sensor's blind zone or beyond its range thrown out. A bin so full the contents sit in
the blind zone reads as ImplausibleValue, never as "full" or "empty".
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from firmware.drivers.base import Distance
from firmware.drivers.lazy import hardware_module
from firmware.errors import ImplausibleValue, SensorAbsent


@dataclass(frozen=True)
class UltrasonicModel:
    blind_zone_mm: float
    max_range_mm: float


MODELS = {
    "hc-sr04": UltrasonicModel(blind_zone_mm=20.0, max_range_mm=4000.0),
    "jsn-sr04t": UltrasonicModel(blind_zone_mm=250.0, max_range_mm=4500.0),
}
NOMINAL_SPEED_M_S = 343.26  # what gpiozero assumes (20 degC)


def speed_of_sound_m_s(air_temp_c: float) -> float:
    return 331.3 + 0.606 * air_temp_c


def echo_to_mm(echo_s: float, air_temp_c: float) -> float:
    return echo_s * speed_of_sound_m_s(air_temp_c) / 2.0 * 1000.0


def median_distance(echoes_s: Sequence[float | None], air_temp_c: float, model: UltrasonicModel,
                    min_valid: int = 3, sensor: str = "ultrasonic") -> Distance:
    """Median of the valid pings; `None` is a ping that got no echo."""
    distances = [echo_to_mm(e, air_temp_c) for e in echoes_s if e is not None and e > 0]
    in_range = [d for d in distances if model.blind_zone_mm <= d <= model.max_range_mm]
    if len(in_range) < min_valid:
        if sum(d < model.blind_zone_mm for d in distances) * 2 > len(echoes_s):
            raise ImplausibleValue(sensor, f"target inside the {model.blind_zone_mm:g} mm blind zone "
                                           "(contents right under the sensor, or condensation on it)")
        raise ImplausibleValue(sensor, f"only {len(in_range)} of {len(echoes_s)} pings echoed within range")
    return Distance(round(statistics.median(in_range), 1), len(in_range))


class UltrasonicSensor:
    """Pings through gpiozero's DistanceSensor; `ping` may be injected (tests, other GPIO libraries)."""

    def __init__(self, name: str, model: str = "jsn-sr04t", trigger_pin: int = 23, echo_pin: int = 24,
                 pings: int = 7, air_temp: Callable[[], float] = lambda: 15.0,
                 ping: Callable[[], float | None] | None = None, ping_gap_s: float = 0.06):
        self.name = name
        self.model = MODELS[model]
        self.trigger_pin = trigger_pin
        self.echo_pin = echo_pin
        self.pings = pings
        self.air_temp = air_temp
        self.ping_gap_s = ping_gap_s
        self._ping = ping
        self._gpio: Any = None

    def _gpio_ping(self) -> float | None:
        if self._gpio is None:
            gpiozero = hardware_module("gpiozero", self.name)
            try:
                self._gpio = gpiozero.DistanceSensor(
                    echo=self.echo_pin, trigger=self.trigger_pin, queue_len=1,
                    max_distance=self.model.max_range_mm / 1000.0, partial=True)
            except Exception as exc:  # gpiozero raises its own hierarchy for missing pins/factories
                pins = f"GPIO {self.trigger_pin}/{self.echo_pin}"
                raise SensorAbsent(self.name, f"cannot open {pins}: {exc}") from None
        metres = float(self._gpio.distance)
        if metres >= self._gpio.max_distance:
            return None  # no echo before the timeout
        return 2.0 * metres / NOMINAL_SPEED_M_S

    def read(self) -> Distance:
        ping = self._ping or self._gpio_ping
        echoes = []
        for i in range(self.pings):
            if i and self.ping_gap_s > 0:  # simulated sensors need no gap (sleep(0) is still a syscall)
                time.sleep(self.ping_gap_s)
            echoes.append(ping())
        return median_distance(echoes, self.air_temp(), self.model, sensor=self.name)

    def close(self) -> None:
        if self._gpio is not None:
            self._gpio.close()
            self._gpio = None
