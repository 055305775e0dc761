"""Geodesy for the whole platform: great-circle distances (one Earth radius), lon/lat to local
metres and back, lengths and bearings.

A council's network spans tens of kilometres, so an equirectangular projection around a
reference latitude is good to well under 1 % (and every distance here is compared with
tolerances of metres to kilometres). Bearings are compass degrees: 0 north, 90 east.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8  # the IUGG mean radius (R1), metres
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LocalProjection:
    """Equirectangular metres around (lon0, lat0)."""

    lon0: float
    lat0: float

    @property
    def _kx(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    @property
    def _ky(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M

    def xy(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        return ((np.asarray(lon, dtype=np.float64) - self.lon0) * self._kx,
                (np.asarray(lat, dtype=np.float64) - self.lat0) * self._ky)

    def lonlat(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        return (np.asarray(x, dtype=np.float64) / self._kx + self.lon0,
                np.asarray(y, dtype=np.float64) / self._ky + self.lat0)

    @classmethod
    def around(cls, lon: npt.ArrayLike, lat: npt.ArrayLike) -> LocalProjection:
        lons, lats = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        if lons.size == 0:
            return cls(0.0, 0.0)
        return cls(float(np.mean(lons)), float(np.mean(lats)))


def haversine_m(lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike) -> FloatArray:
    la1, la2 = np.radians(lat1), np.radians(lat2)
    dlat = la2 - la1
    dlon = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dlat / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin(dlon / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))), dtype=np.float64)


def line_length_m(coords: Sequence[Sequence[float]]) -> float:
    """Length of a lon/lat polyline along the great circle, metres."""
    points = np.asarray([c[:2] for c in coords], dtype=np.float64)
    if len(points) < 2:
        return 0.0
    return float(np.sum(haversine_m(points[:-1, 0], points[:-1, 1], points[1:, 0], points[1:, 1])))


def bearing_deg(dx: npt.ArrayLike, dy: npt.ArrayLike) -> FloatArray:
    """Compass bearing of a displacement in local metres (x east, y north)."""
    return np.asarray(np.degrees(np.arctan2(dx, dy)) % 360.0, dtype=np.float64)


def angle_between(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """Smallest difference between two bearings, 0..180 degrees."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) % 360.0
    return np.asarray(np.minimum(d, 360.0 - d), dtype=np.float64)


def turn_deg(heading_in: float, heading_out: float) -> float:
    """Signed turn from one heading to the next: positive right, negative left, -180..180."""
    return (heading_out - heading_in + 180.0) % 360.0 - 180.0


def distance_matrix_m(lon: npt.ArrayLike, lat: npt.ArrayLike) -> FloatArray:
    """Great-circle distances (metres) between every pair of points: row i, column j."""
    lam, phi = np.radians(np.asarray(lon, dtype=np.float64)), np.radians(np.asarray(lat, dtype=np.float64))
    dphi = phi[:, None] - phi[None, :]
    dlam = lam[:, None] - lam[None, :]
    a = np.sin(dphi / 2) ** 2 + np.cos(phi[:, None]) * np.cos(phi[None, :]) * np.sin(dlam / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))), dtype=np.float64)
