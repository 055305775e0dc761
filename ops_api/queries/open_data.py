"""Open data: aggregated and anonymised, as CSV and GeoJSON, for anyone.

Road surface temperatures per road segment (the latest gritting run's estimates, which
blend sensors, the gritter and forecasts); bin fill per bin (street furniture, not homes)
or per depot; damp statistics per area from the weekly snapshots pipelines.open_data.pipeline
publishes through rules.disclosure (never computed live). Never a household id, a home's
location or its readings. CSV cells that a spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from cityops.csv_safe import safe_row
from cityops.storage import Database
from ops_api.queries.bins import finite
from pipelines.bins import store as bins_store
from pipelines.gritting import store as gritting_store
from pipelines.open_data.pipeline import COLUMNS
from pipelines.open_data.store import Snapshot, load_snapshot, periods

FULL = 0.8
DAMP_COLUMNS = COLUMNS


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV: missing values empty, text a spreadsheet would run as a formula quoted (cityops.csv_safe)."""
    fields = list(columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(safe_row(row, fields))
    return out.getvalue()


def feature_collection(rows: Sequence[dict[str, Any]], geometry: str, **properties: Any) -> dict[str, Any]:
    """Rows with a `geometry` key (GeoJSON) or `lon`/`lat` as Features; rows without a place are left out."""
    features = []
    for row in rows:
        props = {k: v for k, v in row.items() if k not in ("geometry", "lon", "lat")}
        if geometry == "geometry" and row.get("geometry"):
            shape = row["geometry"]
        elif geometry == "point" and row.get("lon") is not None and row.get("lat") is not None:
            shape = {"type": "Point", "coordinates": [row["lon"], row["lat"]]}
        else:
            continue
        features.append({"type": "Feature", "geometry": shape, "properties": props})
    return {"type": "FeatureCollection", "properties": properties, "features": features}


ROAD_COLUMNS = ("segment_id", "name", "priority", "rst_now_c", "rst_min_c", "rst_min_at", "frost_point_c",
                "surface_state", "action", "as_of")


async def road_temperatures(db: Database) -> list[dict[str, Any]]:
    rows = await gritting_store.latest_segment_temperatures(db)
    return [{"segment_id": r["segment_id"], "name": r["name"], "priority": r["priority"],
             "rst_now_c": finite(r["rst_now_c"]), "rst_min_c": finite(r["rst_min_c"]),
             "rst_min_at": r["rst_min_at"].isoformat() if r["rst_min_at"] else None,
             "frost_point_c": finite(r["frost_point_c"]), "surface_state": r["surface_state"],
             "action": r["action"], "as_of": r["as_of"].isoformat(), "geometry": json.loads(r["geometry"])}
            for r in rows]


BIN_COLUMNS = ("device_id", "bin_type", "fill", "status", "data_until", "lon", "lat")
DEPOT_COLUMNS = ("depot_id", "bins", "bins_known", "mean_fill", f"bins_over_{int(FULL * 100)}pct", "lon", "lat")


async def bin_fill(db: Database) -> list[dict[str, Any]]:
    rows = await bins_store.latest_fill(db)
    return [{"device_id": r["device_id"], "bin_type": r["bin_type"], "fill": finite(r["fill"]), "status": r["status"],
             "data_until": r["data_until"].isoformat(), "lon": r["lon"], "lat": r["lat"], "depot_id": r["depot_id"]}
            for r in rows]


async def bin_fill_by_depot(db: Database) -> list[dict[str, Any]]:
    bins = await bin_fill(db)
    depots = await bins_store.depot_places(db)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for b in bins:
        grouped.setdefault(b["depot_id"] or "no depot", []).append(b)
    out = []
    for depot_id in sorted(grouped):
        fills = [b["fill"] for b in grouped[depot_id] if b["fill"] is not None]
        place = depots.get(depot_id)
        out.append({"depot_id": depot_id, "bins": len(grouped[depot_id]), "bins_known": len(fills),
                    "mean_fill": round(sum(fills) / len(fills), 3) if fills else None,
                    f"bins_over_{int(FULL * 100)}pct": sum(1 for f in fills if f >= FULL),
                    "lon": place["lon"] if place else None, "lat": place["lat"] if place else None})
    return out


async def damp_snapshot(db: Database, period: date | None = None) -> tuple[Snapshot | None, list[datetime]]:
    """A published weekly snapshot (the week starting `period`, default the latest) and every period's start."""
    start = None if period is None else datetime(period.year, period.month, period.day, tzinfo=UTC)
    return await load_snapshot(db, start), await periods(db)
