"""Fill level from an ultrasonic sensor above the bin (pure numpy).

fill = (H_empty - d) / (H_empty - d_full), clipped to 0..1, where H_empty is the sensor
height above the bottom of the empty bin and d_full = H_empty - depth. The distance is
first corrected for the speed of sound (about 0.6 m/s per degC: the sensor assumes 20 degC),
then screened, then the median of what is left is taken:

    blind     inside the sensor's blind zone (HC-SR04 about 2 cm, JSN-SR04T 20-25 cm): the
              echo came from the rim or a bag, NOT a full bin: rejected
    beyond    further than the bin bottom (+ a tolerance): the lid is open or no echo
    outlier   far from the median of the window: a bag in the beam, a hand, rain
    missing   no echo (NaN)

A window with no valid ping gives no fill (NaN) and the reasons, never "full".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from rules.errors import InvalidBinSetup

FloatArray = npt.NDArray[np.float64]

SPEED_AT_20C = 331.3 + 0.606 * 20.0  # m/s, what the sensor's firmware assumes
BLIND_ZONE_MM = {"hc-sr04": 20.0, "jsn-sr04t": 250.0, "aj-sr04m": 250.0, "a02yyuw": 30.0}
DEFAULT_BLIND_ZONE_MM = 250.0     # an unknown sensor: assume the waterproof kind, the cautious choice
BEYOND_TOLERANCE_MM = 80.0        # echoes this far past the bin bottom mean the lid is open
OUTLIER_MM = 150.0                # this far from the window median: something in the beam


@dataclass(frozen=True)
class BinCalibration:
    """One bin's geometry as registered (devices.sensor_height_mm, bin_depth_mm, sensor_type)."""

    sensor_height_mm: float       # the sensor's height above the bottom of the empty bin (H_empty)
    depth_mm: float               # the depth the bin holds, from the full line down to the bottom
    blind_zone_mm: float = DEFAULT_BLIND_ZONE_MM
    device_id: str | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.depth_mm) and self.depth_mm > 0):
            raise InvalidBinSetup(f"bin depth must be positive, got {self.depth_mm}",
                                  device_id=self.device_id, setting="bin_depth_mm")
        if not (np.isfinite(self.sensor_height_mm) and self.sensor_height_mm >= self.depth_mm):
            raise InvalidBinSetup(f"sensor height {self.sensor_height_mm:.0f} mm is less than the bin depth "
                                  f"{self.depth_mm:.0f} mm", device_id=self.device_id, setting="sensor_height_mm")
        if self.full_distance_mm < self.blind_zone_mm:
            raise InvalidBinSetup(
                f"full is {self.full_distance_mm:.0f} mm from the sensor, inside its {self.blind_zone_mm:.0f} mm "
                "blind zone: a full bin could not be told from a bag in the beam",
                device_id=self.device_id, setting="sensor_height_mm",
                hint="mount the sensor higher or use a sensor with a smaller blind zone (HC-SR04: 2 cm)")

    @classmethod
    def for_sensor(cls, sensor_height_mm: float, depth_mm: float, sensor_type: str | None,
                   device_id: str | None = None) -> BinCalibration:
        blind = BLIND_ZONE_MM.get((sensor_type or "").lower(), DEFAULT_BLIND_ZONE_MM)
        return cls(float(sensor_height_mm), float(depth_mm), blind, device_id)

    @property
    def full_distance_mm(self) -> float:
        return self.sensor_height_mm - self.depth_mm


@dataclass(frozen=True)
class FillReading:
    fill: float                   # 0..1, NaN when no ping in the window was usable
    used: int
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return bool(np.isfinite(self.fill))

    def explain(self) -> str:
        if self.known and not self.rejected:
            return f"{self.fill:.0%} full from {self.used} pings"
        dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.rejected.items()))
        return (f"{self.fill:.0%} full from {self.used} pings ({dropped} rejected)" if self.known
                else f"fill unknown: no usable ping ({dropped})")


def compensate_temperature(distance_mm: npt.ArrayLike, air_temp_c: npt.ArrayLike) -> FloatArray:
    """The distance a sensor calibrated for 20 degC reports, corrected to the air temperature."""
    speed = 331.3 + 0.606 * np.asarray(air_temp_c, dtype=np.float64)
    return np.asarray(distance_mm, dtype=np.float64) * speed / SPEED_AT_20C


def fill_fraction(distance_mm: npt.ArrayLike, sensor_height_mm: npt.ArrayLike,
                  depth_mm: npt.ArrayLike) -> FloatArray:
    """The formula alone, vectorised, clipped to 0..1 (NaN stays NaN)."""
    height = np.asarray(sensor_height_mm, dtype=np.float64)
    return np.clip((height - np.asarray(distance_mm, dtype=np.float64)) / np.asarray(depth_mm, dtype=np.float64),
                   0.0, 1.0)


def screen_pings(distance_mm: npt.ArrayLike, calibration: BinCalibration) -> tuple[FloatArray, dict[str, int]]:
    """The pings that can be trusted, and how many were dropped for each reason."""
    pings = np.asarray(distance_mm, dtype=np.float64)
    missing = ~np.isfinite(pings)
    blind = ~missing & (pings < calibration.blind_zone_mm)
    beyond = ~missing & (pings > calibration.sensor_height_mm + BEYOND_TOLERANCE_MM)
    plausible = ~(missing | blind | beyond)
    outlier = np.zeros_like(plausible)
    if plausible.any():
        centre = float(np.median(pings[plausible]))
        outlier = plausible & (np.abs(pings - centre) > OUTLIER_MM)
    reasons = {"missing": missing, "blind zone": blind, "beyond the bin bottom (lid open?)": beyond,
               "outlier (something in the beam?)": outlier}
    counts = {reason: int(mask.sum()) for reason, mask in reasons.items() if mask.any()}
    return pings[plausible & ~outlier], counts


def fill_from_pings(distance_mm: npt.ArrayLike, calibration: BinCalibration,
                    air_temp_c: float | None = None) -> FillReading:
    """One fill level from a window of pings: compensate, screen, median."""
    pings = np.asarray(distance_mm, dtype=np.float64)
    if air_temp_c is not None and np.isfinite(air_temp_c):
        pings = compensate_temperature(pings, air_temp_c)
    good, rejected = screen_pings(pings, calibration)
    if good.size == 0:
        return FillReading(float("nan"), 0, rejected)
    fill = float(fill_fraction(np.median(good), calibration.sensor_height_mm, calibration.depth_mm))
    return FillReading(fill, int(good.size), rejected)


def rolling_fill(distance_mm: npt.ArrayLike, temp_c: npt.ArrayLike, calibration: BinCalibration,
                 window: int = 3) -> FloatArray:
    """A fill per reading from the last `window` readings, screened like `fill_from_pings` (vectorised)."""
    distances = np.asarray(distance_mm, dtype=np.float64)
    temps = np.asarray(temp_c, dtype=np.float64)
    if distances.size == 0:      # a bin registered but silent: no windows to slide
        return distances
    corrected = np.where(np.isfinite(temps), compensate_temperature(distances, np.nan_to_num(temps, nan=20.0)),
                         distances)
    plausible = (corrected >= calibration.blind_zone_mm) & \
        (corrected <= calibration.sensor_height_mm + BEYOND_TOLERANCE_MM)
    padded = np.concatenate([np.full(window - 1, np.nan), np.where(plausible, corrected, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    centre = nanmedian_rows(windows)
    kept = np.where(np.abs(windows - centre[:, None]) <= OUTLIER_MM, windows, np.nan)
    return fill_fraction(nanmedian_rows(kept), calibration.sensor_height_mm, calibration.depth_mm)


def nanmedian_rows(rows: FloatArray) -> FloatArray:
    """Median of each row ignoring NaN; NaN for a row with none (np.nanmedian warns there)."""
    ordered = np.sort(rows, axis=1)              # NaN sorts last
    count = np.isfinite(ordered).sum(axis=1)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, np.maximum(count // 2, 0)[:, None], axis=1)[:, 0]
    return np.where(count > 0, (low + high) / 2.0, np.nan)
