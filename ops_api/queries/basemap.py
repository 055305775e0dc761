"""The basemap: the imported road network's streets (and named places: the depots) inside a
box, as compact GeoJSON for the pages' maps and the printable sheet, which draw it under a
route without any map tiles.

Coordinates are rounded to 5 decimals (about 1 m: finer than a line on a phone's map) and the
answer holds at most MAX_SEGMENTS streets, the most important first (priority 1 before 3),
with `truncated` saying when some were left out.
"""

from __future__ import annotations

import json
import math
from typing import Any

from cityops.storage import Database

DECIMALS = 5
MAX_SEGMENTS = 3000
MAX_SPAN_DEG = 0.5       # about 35 x 55 km in Britain: a council area, never the country
MAJOR_PRIORITY = 2       # road_segments.priority 1 and 2 (the gritting priorities): named on the map


def _round(coordinates: list[list[float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for c in coordinates:
        point = [round(float(c[0]), DECIMALS), round(float(c[1]), DECIMALS)]
        if not out or out[-1] != point:   # rounding can merge neighbours: keep one
            out.append(point)
    return out


async def streets(db: Database, bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    """The streets whose middle is inside `bbox` (min_lon, min_lat, max_lon, max_lat) and the
    depots in it, as a FeatureCollection of LineStrings {name, major} and Points {kind: "place", name}."""
    min_lon, min_lat, max_lon, max_lat = bbox
    rows = await db.fetch(
        "SELECT name, priority, geometry FROM road_segments "
        "WHERE mid_lon BETWEEN $1 AND $3 AND mid_lat BETWEEN $2 AND $4 "
        "ORDER BY priority, segment_id LIMIT $5", min_lon, min_lat, max_lon, max_lat, MAX_SEGMENTS + 1)
    features: list[dict[str, Any]] = []
    for row in rows[:MAX_SEGMENTS]:
        geometry = json.loads(row["geometry"]) if isinstance(row["geometry"], str) else row["geometry"]
        line = _round(geometry.get("coordinates") or [])
        if len(line) < 2:
            continue
        features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
                         "properties": {"name": row["name"] or None, "major": row["priority"] <= MAJOR_PRIORITY}})
    places = await db.fetch(
        "SELECT name, lon, lat FROM (SELECT coalesce(nullif(name, ''), depot_id) AS name, lon, lat FROM road_depots "
        "UNION SELECT depot_id, lon, lat FROM bin_depots) p "
        "WHERE lon BETWEEN $1 AND $3 AND lat BETWEEN $2 AND $4 ORDER BY name", min_lon, min_lat, max_lon, max_lat)
    for place in places:
        features.append({"type": "Feature", "properties": {"kind": "place", "name": place["name"]},
                         "geometry": {"type": "Point", "coordinates": [round(place["lon"], DECIMALS),
                                                                       round(place["lat"], DECIMALS)]}})
    return {"type": "FeatureCollection", "bbox": list(bbox), "truncated": len(rows) > MAX_SEGMENTS,
            "features": features}


def box_around(geojson: dict[str, Any], grid: float = 0.005) -> tuple[float, float, float, float] | None:
    """The route's box padded by a fifth, rounded out to `grid` degrees (as map.js asks for it), or None."""
    coords: list[tuple[float, float]] = []
    for f in geojson.get("features", []):
        g = f.get("geometry") or {}
        if g.get("type") == "Point":
            coords.append((float(g["coordinates"][0]), float(g["coordinates"][1])))
        elif g.get("type") == "LineString":
            coords += [(float(c[0]), float(c[1])) for c in g["coordinates"]]
    if not coords:
        return None
    lons, lats = [c[0] for c in coords], [c[1] for c in coords]
    pad_x, pad_y = (max(lons) - min(lons)) / 5 + grid, (max(lats) - min(lats)) / 5 + grid
    box = (math.floor((min(lons) - pad_x) / grid) * grid, math.floor((min(lats) - pad_y) / grid) * grid,
           math.ceil((max(lons) + pad_x) / grid) * grid, math.ceil((max(lats) + pad_y) / grid) * grid)
    return box if box[2] - box[0] <= MAX_SPAN_DEG and box[3] - box[1] <= MAX_SPAN_DEG else None


async def around(db: Database, geojson: dict[str, Any]) -> dict[str, Any] | None:
    """The streets around a route (for the printable sheet), or None when it has no coordinates."""
    box = box_around(geojson)
    return await streets(db, box) if box else None
