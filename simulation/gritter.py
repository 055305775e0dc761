"""A gritter driving a priority route: position along a polyline, and the road surface
temperature its infrared sensor sees there (colder over the bridge and in the shade).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime

from rules.geo import haversine_m
from simulation.weather import Weather

# A loop in south Birmingham (lat, lon): depot, the A38, over the canal bridge, back.
ROUTE = ((52.4510, -1.9300), (52.4580, -1.9210), (52.4662, -1.9141), (52.4700, -1.9020),
         (52.4655, -1.8890), (52.4570, -1.8950), (52.4502, -1.9080), (52.4510, -1.9300))
BRIDGE_SEGMENT = 3  # the segment from ROUTE[3] to ROUTE[4] is the bridge


def segment_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points, in km."""
    return float(haversine_m(a[1], a[0], b[1], b[0])) / 1000.0


@dataclass(frozen=True)
class Route:
    points: tuple[tuple[float, float], ...] = ROUTE
    speed_kmh: float = 35.0

    @property
    def length_km(self) -> float:
        return sum(segment_km(a, b) for a, b in itertools.pairwise(self.points))

    def where(self, km: float) -> tuple[float, float, int]:
        """(lat, lon, segment index) after driving `km` (looping)."""
        km %= self.length_km
        for index, (a, b) in enumerate(itertools.pairwise(self.points)):
            length = segment_km(a, b)
            if km <= length:
                f = km / length if length else 0.0
                return round(a[0] + f * (b[0] - a[0]), 6), round(a[1] + f * (b[1] - a[1]), 6), index
            km -= length
        last = self.points[-1]
        return last[0], last[1], len(self.points) - 2


def surface_offset_c(segment: int, km: float) -> float:
    """Thermal map along the route: gentle variation, the bridge 2 degC colder."""
    return 0.8 * math.sin(km * 1.7) - (2.0 if segment == BRIDGE_SEGMENT else 0.0)


@dataclass
class GritterSim:
    route: Route
    weather: Weather
    shift_start: datetime
    cold_start_s: float = 900.0  # the GPS needs a while after the engine starts

    def km_at(self, ts: datetime) -> float:
        return max(0.0, (ts - self.shift_start).total_seconds()) / 3600.0 * self.route.speed_kmh

    def has_fix(self, ts: datetime) -> bool:
        return (ts - self.shift_start).total_seconds() >= self.cold_start_s

    def surface_c(self, ts: datetime) -> float:
        km = self.km_at(ts)
        _, _, segment = self.route.where(km)
        night = 1.0 if ts.hour >= 17 or ts.hour < 8 else 0.0
        return self.weather.air_temp_c(ts) - 2.0 * night * self.weather.sky_clearness(ts) \
            + surface_offset_c(segment, km)
