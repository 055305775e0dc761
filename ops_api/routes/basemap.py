"""The basemap for the pages' maps: GET /basemap?bbox=min_lon,min_lat,max_lon,max_lat gives the
imported road network's streets and depots inside the box (ops_api.queries.basemap), for staff
and crews. The service worker keeps a copy, so a crew's map stays readable with no signal."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ops_api.accounts.roles import Role
from ops_api.deps import DB, User, allow
from ops_api.errors import InvalidRequest
from ops_api.queries import basemap as q

router = APIRouter(tags=["basemap"])
MapUser = Annotated[User, Depends(allow(Role.OPERATOR, Role.GRITTING_CREW, Role.WASTE_CREW))]


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """"min_lon,min_lat,max_lon,max_lat" in degrees, a box no wider or taller than MAX_SPAN_DEG."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InvalidRequest("four numbers, min_lon,min_lat,max_lon,max_lat", field="bbox") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidRequest("four numbers, min_lon,min_lat,max_lon,max_lat", field="bbox")
    min_lon, min_lat, max_lon, max_lat = values
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise InvalidRequest("min below max, longitudes within ±180 and latitudes within ±90", field="bbox")
    if max_lon - min_lon > q.MAX_SPAN_DEG or max_lat - min_lat > q.MAX_SPAN_DEG:
        raise InvalidRequest(f"at most {q.MAX_SPAN_DEG}° across", field="bbox",
                             hint="ask for the streets around one route, not a whole region")
    return min_lon, min_lat, max_lon, max_lat


@router.get("/basemap", summary="Streets and depots inside a box, as compact GeoJSON (no tiles)")
async def basemap(db: DB, user: MapUser,
                  bbox: Annotated[str, Query(max_length=100, description="min_lon,min_lat,max_lon,max_lat")]
                  ) -> dict[str, Any]:
    return await q.streets(db, parse_bbox(bbox))
