"""Psychrometrics, vectorised over numpy arrays: saturation vapour pressure, dew and frost point.

Magnus form with the Alduchov & Eskridge (1996) constants (docs/science.md#dew-point-and-frost-point):
over water a=17.625, b=243.04 degC, e0=6.1094 hPa; over ice a=22.587, b=273.86 degC,
e0=6.1121 hPa. Relative humidity is always with respect to water, in percent (0..100).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from rules.errors import InvalidReading

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
Phase = Literal["water", "ice"]


@dataclass(frozen=True)
class Magnus:
    a: float
    b_c: float
    e0_hpa: float

    def saturation(self, temp_c: FloatArray) -> FloatArray:
        return np.asarray(self.e0_hpa * np.exp(self.a * temp_c / (self.b_c + temp_c)), dtype=np.float64)

    def temperature_at(self, vapour_hpa: FloatArray) -> FloatArray:
        """The temperature at which this phase saturates at the given vapour pressure."""
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.log(vapour_hpa / self.e0_hpa)
            temp = self.b_c * g / (self.a - g)
        return np.asarray(np.where(vapour_hpa > 0, temp, -np.inf), dtype=np.float64)


OVER_WATER = Magnus(a=17.625, b_c=243.04, e0_hpa=6.1094)
OVER_ICE = Magnus(a=22.587, b_c=273.86, e0_hpa=6.1121)
# Sensirion's application note (SHT sensors) uses these over water; only for comparison.
SENSIRION = Magnus(a=17.62, b_c=243.12, e0_hpa=6.112)
GAS_CONSTANT_WATER_VAPOUR = 461.5  # J/(kg K)


def as_temperature(temp_c: ArrayLike, name: str = "temperature") -> FloatArray:
    values = np.asarray(temp_c, dtype=np.float64)
    bad = ~np.isfinite(values) | (values <= -273.15)
    if np.any(bad):
        first = float(values[bad].flat[0])
        raise InvalidReading(f"{name} {first} degC is not a temperature", quantity=name, value=first)
    return values


def as_percent_rh(rh_pct: ArrayLike) -> FloatArray:
    """Relative humidity in percent, checked: 0..100 and not a fraction passed as percent."""
    values = np.asarray(rh_pct, dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values > 100)
    if np.any(bad):
        first = float(values[bad].flat[0])
        raise InvalidReading(f"relative humidity {first} is outside 0..100 %", quantity="rh", value=first)
    if values.size and np.all(values <= 1.0) and np.any(values > 0):
        raise InvalidReading(
            f"relative humidity {float(values.flat[0])} looks like a fraction (0..1), not a percentage",
            quantity="rh", value=float(values.flat[0]),
            hint="multiply fractions by 100: 0.55 means 55 %")
    return values


def saturation_vapour_pressure(temp_c: ArrayLike, over: Phase = "water") -> FloatArray:
    """Saturation vapour pressure in hPa over liquid water or ice."""
    magnus = OVER_ICE if over == "ice" else OVER_WATER
    return magnus.saturation(as_temperature(temp_c))


def vapour_pressure(temp_c: ArrayLike, rh_pct: ArrayLike) -> FloatArray:
    """Partial pressure of water vapour in hPa."""
    return as_percent_rh(rh_pct) / 100.0 * saturation_vapour_pressure(temp_c)


def dew_point(temp_c: ArrayLike, rh_pct: ArrayLike, magnus: Magnus = OVER_WATER) -> FloatArray:
    """Dew point over water, degC; RH 100 % gives the air temperature, RH 0 gives -inf."""
    temp = as_temperature(temp_c)
    rh = as_percent_rh(rh_pct)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.log(rh / 100.0) + magnus.a * temp / (magnus.b_c + temp)
        dew = magnus.b_c * g / (magnus.a - g)
    return np.asarray(np.where(rh > 0, dew, -np.inf), dtype=np.float64)


def frost_point(temp_c: ArrayLike, rh_pct: ArrayLike) -> FloatArray:
    """Frost point, degC: where the air's vapour would saturate over ice (hoar frost forms)."""
    return OVER_ICE.temperature_at(vapour_pressure(temp_c, rh_pct))


def absolute_humidity(temp_c: ArrayLike, rh_pct: ArrayLike) -> FloatArray:
    """Water vapour per volume of air, g/m3."""
    temp = as_temperature(temp_c)
    pascal = vapour_pressure(temp, rh_pct) * 100.0
    return np.asarray(1000.0 * pascal / (GAS_CONSTANT_WATER_VAPOUR * (temp + 273.15)), dtype=np.float64)


def relative_humidity_at(vapour_hpa: ArrayLike, temp_c: ArrayLike) -> FloatArray:
    """RH in percent, over water, that a vapour pressure gives at another temperature; may exceed 100."""
    return np.asarray(np.asarray(vapour_hpa, dtype=np.float64) / saturation_vapour_pressure(temp_c) * 100.0,
                      dtype=np.float64)
