"""Crew jobs as the API shows them: a job as JSON, and with its GeoJSON in driving order and
its steps (the lifecycle itself is jobs.lifecycle)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from cityops.storage import Database
from ops_api.queries import bins as bins_q
from ops_api.queries import gritting as gritting_q
from pipelines.gritting import store as gritting_store


def job_json(row: asyncpg.Record) -> dict[str, Any]:
    out = gritting_q.plain(row)
    out["skipped"] = list(row["skipped"] or [])
    if row["kind"] == "gritting":   # the API's plan_id is the plan the job points at, of its kind
        out["plan_id"] = row["gritting_plan_id"]
    return out


def in_driving_order(features: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Features with `seq` (from `key`; 0 for the depot or the whole line), sorted by it."""
    out = []
    for f in features:
        props = dict(f.get("properties") or {})
        props["seq"] = int(props.get(key) or 0)
        out.append({**f, "properties": props})
    return sorted(out, key=lambda f: f["properties"]["seq"])


async def detail(db: Database, row: asyncpg.Record) -> dict[str, Any]:
    """The job with `geojson` (a FeatureCollection in driving order, each feature with `seq`) and `steps`."""
    job = job_json(row)
    done = row["state"] == "completed"
    if row["kind"] == "gritting":
        plan = await gritting_store.plan_by_id(db, row["gritting_plan_id"])
        geojson: dict[str, Any] = json.loads(plan["geojson"]) if plan else {"features": []}
        steps = gritting_q.plan_steps(json.loads(plan["instructions"])) if plan else []
        for step in steps:
            step["done"] = done
        job["plan"] = {k: (json.loads(plan[k]) if k == "notes" else plan[k])
                       for k in ("distance_m", "trips", "feasible", "notes")} if plan else None
        features = in_driving_order(geojson.get("features", []), "seq")
    else:
        plan_row, shape, stops = await bins_q.truck_of(db, row["plan_id"], row["truck"])
        skipped = set(row["skipped"] or [])
        steps = [{"seq": 0, "text": f"Leave depot {plan_row['depot_id']} at {plan_row['shift_start']:%H:%M} UTC.",
                  "done": done}]
        for s in stops:
            steps.append({"seq": s["seq"], "device_id": s["device_id"], "trip": s["trip"],
                          "text": f"Empty bin {s['device_id']} (due about {s['arrive']:%H:%M} UTC, trip {s['trip']}; "
                                  f"{s['load_after_l']} l on board after it).",
                          "done": done and s["device_id"] not in skipped})
        steps.append({"seq": len(stops) + 1, "text": f"Return to depot {plan_row['depot_id']} and tip.", "done": done})
        features = in_driving_order((shape or {}).get("features", []), "order")
        job["plan"] = {"depot_id": plan_row["depot_id"], "shift_start": plan_row["shift_start"].isoformat(),
                       "feasible": plan_row["feasible"]}
    job["geojson"] = {"type": "FeatureCollection", "features": features}
    job["steps"] = steps
    return job
