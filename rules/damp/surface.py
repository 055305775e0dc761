"""Cold-spot surface conditions (BS EN ISO 13788) and the outdoor temperature they depend on.

T_si = T_out + fRsi (T_in - T_out); surface RH = e(indoor air) / e_s(T_si). fRsi 0.75 is
the UK design criterion; poor walls and thermal bridges are lower. The outdoor
temperature is the nearest road/air sensor's within a distance (an STRtree over the
sensors, distances in metres on a local projection), else a fallback value.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from rules import psychro
from rules.errors import InvalidHomeSettings

log = logging.getLogger("rules.damp.surface")

FloatArray = npt.NDArray[np.float64]
DEFAULT_F_RSI = 0.75
MOULD_SURFACE_RH = 80.0
METRES_PER_DEGREE_LAT = 111_320.0


def check_f_rsi(f_rsi: npt.ArrayLike) -> FloatArray:
    values = np.asarray(f_rsi, dtype=np.float64)
    if np.any(~np.isfinite(values) | (values <= 0) | (values > 1)):
        raise InvalidHomeSettings(f"fRsi must be in (0, 1], got {values.min()}..{values.max()}",
                                  setting="f_rsi")
    return values


def surface_temperature(indoor_c: npt.ArrayLike, outdoor_c: npt.ArrayLike,
                        f_rsi: npt.ArrayLike = DEFAULT_F_RSI) -> FloatArray:
    """The coldest inside surface's temperature, degC."""
    indoor = np.asarray(indoor_c, dtype=np.float64)
    outdoor = np.asarray(outdoor_c, dtype=np.float64)
    return np.asarray(outdoor + check_f_rsi(f_rsi) * (indoor - outdoor), dtype=np.float64)


def surface_rh(indoor_c: npt.ArrayLike, indoor_rh_pct: npt.ArrayLike, surface_c: npt.ArrayLike) -> FloatArray:
    """Relative humidity at the cold surface, percent; above 100 means water condenses there."""
    return psychro.relative_humidity_at(psychro.vapour_pressure(indoor_c, indoor_rh_pct), surface_c)


def cold_spot_float32(indoor_c: npt.ArrayLike, indoor_rh_pct: npt.ArrayLike, outdoor_c: npt.ArrayLike,
                      f_rsi: npt.ArrayLike) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Surface temperature and RH for many homes and hours at once, unchecked, NaN passing through.

    float32 (ample for 0.1 degC sensors, half the time and memory); the saturation ratio is one
    exp: e_s(T_air)/e_s(T_si) = exp(a T_air/(b+T_air) - a T_si/(b+T_si)). Indoor RH is capped at 100."""
    air = np.asarray(indoor_c, dtype=np.float32)
    outdoor = np.asarray(outdoor_c, dtype=np.float32)
    t_si = outdoor + np.asarray(f_rsi, dtype=np.float32) * (air - outdoor)
    a, b = np.float32(psychro.OVER_WATER.a), np.float32(psychro.OVER_WATER.b_c)
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = np.exp(a * air / (b + air) - a * t_si / (b + t_si))
        rh_si = np.minimum(np.asarray(indoor_rh_pct, dtype=np.float32), np.float32(100.0)) * ratio
    return t_si, rh_si


def minimum_f_rsi(indoor_c: float, indoor_rh_pct: float, outdoor_c: float,
                  surface_rh_limit: float = MOULD_SURFACE_RH) -> float:
    """ISO 13788 design check: the least fRsi that keeps surface RH below the limit (80 % for mould)."""
    vapour = psychro.vapour_pressure(indoor_c, indoor_rh_pct) / (surface_rh_limit / 100.0)
    minimum_surface_c = float(psychro.OVER_WATER.temperature_at(vapour))
    return (minimum_surface_c - outdoor_c) / (indoor_c - outdoor_c)


def local_metres(lon: npt.ArrayLike, lat: npt.ArrayLike, origin_lat: float) -> tuple[FloatArray, FloatArray]:
    """Equirectangular projection around a latitude: metres, good to well under 1 % across a city."""
    scale = METRES_PER_DEGREE_LAT * math.cos(math.radians(origin_lat))
    return (np.asarray(lon, dtype=np.float64) * scale,
            np.asarray(lat, dtype=np.float64) * METRES_PER_DEGREE_LAT)


@dataclass(frozen=True)
class NearestSensors:
    """For each home: the index of the nearest outdoor sensor (-1: none in range) and the distance."""

    index: npt.NDArray[np.int64]
    distance_m: FloatArray


def nearest_outdoor_sensors(home_lon: npt.ArrayLike, home_lat: npt.ArrayLike,
                            sensor_lon: npt.ArrayLike, sensor_lat: npt.ArrayLike,
                            max_distance_m: float) -> NearestSensors:
    """Nearest sensor within max_distance_m of each home, through a shapely STRtree.

    Homes without a location (NaN) get -1, as do homes with no sensor in range."""
    home_lon_a = np.asarray(home_lon, dtype=np.float64)
    home_lat_a = np.asarray(home_lat, dtype=np.float64)
    sensor_lon_a = np.asarray(sensor_lon, dtype=np.float64)
    sensor_lat_a = np.asarray(sensor_lat, dtype=np.float64)
    index = np.full(home_lon_a.shape, -1, dtype=np.int64)
    distance = np.full(home_lon_a.shape, np.inf)
    located = np.isfinite(home_lon_a) & np.isfinite(home_lat_a)
    if not sensor_lon_a.size or not located.any():
        return NearestSensors(index, distance)
    origin = float(np.nanmean(home_lat_a[located]))
    sx, sy = local_metres(sensor_lon_a, sensor_lat_a, origin)
    hx, hy = local_metres(home_lon_a[located], home_lat_a[located], origin)
    tree = shapely.STRtree(shapely.points(sx, sy))
    (homes, sensors), found = tree.query_nearest(shapely.points(hx, hy), max_distance=max_distance_m,
                                                 return_distance=True, all_matches=False)
    located_rows = np.flatnonzero(located)
    index[located_rows[homes]] = sensors
    distance[located_rows[homes]] = found
    log.debug("%d of %d homes have an outdoor sensor within %.0f m", len(homes), len(index), max_distance_m)
    return NearestSensors(index, distance)


def outdoor_series(nearest: NearestSensors, sensor_series: FloatArray, fallback_c: npt.ArrayLike
                   ) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Outdoor temperature per home and hour (homes x hours) and where the fallback was used.

    sensor_series is sensors x hours (NaN where a sensor had no reading that hour);
    fallback_c is one value or one per home."""
    homes = nearest.index.shape[0]
    hours = sensor_series.shape[1] if sensor_series.ndim == 2 else 0
    fallback = np.broadcast_to(np.asarray(fallback_c, dtype=np.float64).reshape(-1, 1)
                               if np.ndim(fallback_c) else np.asarray(fallback_c, dtype=np.float64),
                               (homes, hours))
    has_sensor = nearest.index >= 0
    measured = np.full((homes, hours), np.nan)
    if has_sensor.any() and hours:
        measured[has_sensor] = sensor_series[nearest.index[has_sensor]]
    used_fallback = ~np.isfinite(measured)
    return np.where(used_fallback, fallback, measured), used_fallback


def fallback_notes(nearest: NearestSensors, used_fallback: npt.NDArray[np.bool_], fallback_c: npt.ArrayLike,
                   max_distance_m: float) -> list[str]:
    """Per home, a plain sentence when the outdoor temperature was assumed rather than measured."""
    fallback = np.broadcast_to(np.asarray(fallback_c, dtype=np.float64), nearest.index.shape)
    notes: list[str] = []
    for home, sensor in enumerate(nearest.index):
        assumed = int(used_fallback[home].sum())
        if sensor < 0:
            notes.append(f"No outdoor sensor within {max_distance_m / 1000:.1f} km: assumed "
                         f"{fallback[home]:.1f} °C outside.")
        elif assumed:
            notes.append(f"The nearest outdoor sensor ({nearest.distance_m[home] / 1000:.1f} km away) missed "
                         f"{assumed} hours: assumed {fallback[home]:.1f} °C outside for those.")
        else:
            notes.append("")
    return notes
