"""The council's area: a polygon (WKT, lon/lat) that every fixed device must sit inside."""

from __future__ import annotations

from dataclasses import dataclass

import shapely
from shapely.geometry import Point, Polygon

from cityops.errors import ConfigError


@dataclass(frozen=True)
class CouncilArea:
    polygon: Polygon

    @classmethod
    def from_wkt(cls, wkt: str) -> CouncilArea:
        try:
            geometry = shapely.from_wkt(wkt)
        except shapely.errors.GEOSException as exc:
            raise ConfigError(f"CITYOPS_DEVICES__AREA_WKT is not valid WKT: {exc}") from None
        if not isinstance(geometry, Polygon) or not geometry.is_valid or geometry.is_empty:
            raise ConfigError("CITYOPS_DEVICES__AREA_WKT must be one valid POLYGON in lon/lat, "
                              f"got {geometry.geom_type}")
        return cls(geometry)

    def contains(self, lon: float, lat: float) -> bool:
        return bool(self.polygon.covers(Point(lon, lat)))

    def describe(self) -> str:
        west, south, east, north = self.polygon.bounds
        return f"lon {west:g}..{east:g}, lat {south:g}..{north:g}"
