"""What completing a job records, decided from the plan it points at (pure: no I/O).

    bins      the bins on the truck's round less the ones the crew skipped (a skipped bin that
              is not on the round refuses the completion); the bins pipeline starts those
              bins' fill cycles at the completion
    gritting  the segments the plan spreads salt on, and the salt in kg
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobs.errors import InvalidJob


def emptied(on_round: Sequence[str], skipped: Sequence[str]) -> list[str]:
    """The round's bins less the skipped ones, in driving order."""
    unknown = sorted(set(skipped) - set(on_round))
    if unknown:
        raise InvalidJob(f"not on this job: {', '.join(unknown)}", field="skipped",
                         hint="list only bins of this job's stops")
    return [b for b in on_round if b not in skipped]


def spread_segments(geojson: dict[str, Any]) -> tuple[list[str], float]:
    """The segments a plan spreads salt on, and the salt in kg."""
    seen: list[str] = []
    salt = 0.0
    for f in geojson.get("features", []):
        p = f.get("properties") or {}
        if p.get("service") and p.get("segment_id"):
            if p["segment_id"] not in seen:
                seen.append(p["segment_id"])
            salt += float(p.get("salt_kg") or 0.0)
    return seen, round(salt, 1)


def round_trucks(geojson: list[dict[str, Any]]) -> set[int]:
    """The trucks a collection plan's GeoJSON draws a round for (one FeatureCollection per truck)."""
    trucks = set()
    for collection in geojson:
        line = next((f for f in collection.get("features", []) if f["geometry"]["type"] == "LineString"), None)
        if line is not None:
            trucks.add(int(line["properties"]["truck"]))
    return trucks
