"""Bins as the API shows them: the latest priority per bin (with when a crew last emptied it)
and collection plans per truck, with each truck's GeoJSON. Each stop carries the street its bin
is on and the directions from the stop before (None and [] for a plan made without a road
network); a plan says whether it follows the roads (`follows_roads`). The SQL is the bins
store's (pipelines.bins.store); this module shapes it for JSON."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from cityops.storage import Database
from ops_api.errors import NotFound
from ops_api.queries.gritting import plain
from pipelines.bins import store


def finite(value: float | None) -> float | None:
    """JSON has no infinity: a bin that is not filling has no time to the threshold."""
    return None if value is None or not math.isfinite(value) else round(float(value), 3)


async def priorities(db: Database, depot_id: str | None = None, mandatory_only: bool = False
                     ) -> list[dict[str, Any]]:
    rows = await store.latest_priorities(db, depot_id)
    out = []
    for r in rows:
        if mandatory_only and not r["mandatory"]:
            continue
        item = plain(r)
        for key in ("fill", "hours_to_threshold", "hours_low", "hours_high", "overflow_risk", "score"):
            item[key] = finite(r[key])
        item["collected_since"] = bool(r["last_collected_at"] and r["last_collected_at"] >= r["data_until"])
        out.append(item)
    return sorted(out, key=lambda i: (-(i["score"] or 0.0), i["device_id"]))


def _stop(row: asyncpg.Record) -> dict[str, Any]:
    """A stop row with its directions as a list (the column is jsonb; older plans have none)."""
    stop = dict(row)
    raw = stop.get("directions")
    stop["directions"] = json.loads(raw) if isinstance(raw, str) else list(raw or [])
    return stop


def _follows_roads(geojson: list[dict[str, Any]]) -> bool:
    return any((c.get("properties") or {}).get("geometry") == "roads" for c in geojson)


def _trucks(geojson: list[dict[str, Any]], stops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_truck: dict[int, list[dict[str, Any]]] = {}
    for s in stops:
        by_truck.setdefault(s["truck"], []).append(plain(s, skip=("plan_id", "truck")))
    shapes: dict[int, dict[str, Any]] = {}
    for collection in geojson:
        line = next((f for f in collection.get("features", []) if f["geometry"]["type"] == "LineString"), None)
        if line is not None:
            shapes[int(line["properties"]["truck"])] = collection
    return [{"truck": truck, "stops": by_truck.get(truck, []), "geojson": shapes.get(truck)}
            for truck in sorted(set(by_truck) | set(shapes))]


async def plan(db: Database, plan_id: int) -> dict[str, Any]:
    row = await store.plan(db, plan_id)
    if row is None:
        raise NotFound(f"no bin collection plan {plan_id}")
    body = plain(row, skip=("geojson",))
    geojson = json.loads(row["geojson"])
    body["follows_roads"] = _follows_roads(geojson)
    body["trucks"] = _trucks(geojson, [_stop(s) for s in await store.plan_stops(db, plan_id)])
    return body


async def plans_on(db: Database, day: date, depot_id: str | None = None) -> list[dict[str, Any]]:
    """Each depot's latest plan for a shift starting on `day` (UTC)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return [await plan(db, plan_id) for plan_id in await store.plan_ids_on(db, start, start + timedelta(days=1),
                                                                           depot_id)]


async def truck_of(db: Database, plan_id: int, truck: int) -> tuple[asyncpg.Record, dict[str, Any] | None,
                                                                      list[dict[str, Any]]]:
    """A plan's row, one truck's GeoJSON and its stops (each with `street`, str or None, and
    `directions`, a list of str, maybe empty); NotFound for an unknown plan or truck."""
    row = await store.plan(db, plan_id)
    if row is None:
        raise NotFound(f"no bin collection plan {plan_id}")
    stops = [_stop(s) for s in await store.plan_stops(db, plan_id, truck)]
    found = [t for t in _trucks(json.loads(row["geojson"]), stops) if t["truck"] == truck]
    if not found:
        raise NotFound(f"plan {plan_id} has no truck {truck}")
    return row, found[0]["geojson"], stops
