"""Crew jobs as the API shows them: a job as JSON with its crew and progress, and with its
GeoJSON in driving order, its steps (each markable one with its stop's status, who marked it
and any conflict), its notes and its history (the lifecycle itself is jobs.lifecycle, the
marks' rules jobs.progress)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from cityops.storage import Database
from jobs import lifecycle
from jobs.progress import Mark, StopState, gritting_stop, tally
from ops_api.queries import bins as bins_q
from ops_api.queries import gritting as gritting_q
from pipelines.gritting import store as gritting_store


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def job_json(row: asyncpg.Record, states: Mapping[str, StopState]) -> dict[str, Any]:
    out = gritting_q.plain(row)
    out["skipped"] = list(row["skipped"] or [])
    out["crew"] = list(row["crew"] or [])
    out["progress"] = tally(states)
    if row["kind"] == "gritting":   # the API's plan_id is the plan the job points at, of its kind
        out["plan_id"] = row["gritting_plan_id"]
    return out


async def jobs_json(db: Database, rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    progress = await lifecycle.progress_of(db, rows)
    return [job_json(r, progress[r["job_id"]]) for r in rows]


async def one_json(db: Database, row: asyncpg.Record) -> dict[str, Any]:
    return (await jobs_json(db, [row]))[0]


def _conflict(mark: Mark | None) -> dict[str, Any] | None:
    if mark is None:
        return None
    return {"by": mark.marked_by, "status": mark.status, "reason": mark.reason, "marked_at": _iso(mark.marked_at)}


def stop_fields(state: StopState) -> dict[str, Any]:
    """A markable step's stop, its status and who marked it (the winning mark), and any conflict."""
    w = state.winner
    return {"stop": state.stop, "status": state.status, "done": state.status == "done",
            "reason": w.reason if w is not None and state.status == "skipped" else None, "note": state.note,
            "marked_by": w.marked_by if w else None, "marked_at": _iso(w.marked_at) if w else None,
            "conflict": _conflict(state.conflict)}


def event_json(e: asyncpg.Record) -> dict[str, Any]:
    return {"at": _iso(e["at"]), "by": e["by_user"], "what": e["what"], "reason": e["reason"],
            "from": e["from_user"], "to": e["to_user"]}


def _directions(raw: Any) -> list[str]:
    """A stop's turn-by-turn directions as a list (a jsonb column may still come as its text)."""
    return list(json.loads(raw) if isinstance(raw, str) else raw or [])


def in_driving_order(features: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Features with `seq` (from `key`; 0 for the depot or the whole line), sorted by it."""
    out = []
    for f in features:
        props = dict(f.get("properties") or {})
        props["seq"] = int(props.get(key) or 0)
        out.append({**f, "properties": props})
    return sorted(out, key=lambda f: f["properties"]["seq"])


async def detail(db: Database, row: asyncpg.Record) -> dict[str, Any]:
    """The job with `geojson` (a FeatureCollection in driving order, each feature with `seq`),
    `steps`, `notes` (the crew's notes, oldest first) and `events` (its history, oldest first)."""
    states = (await lifecycle.progress_of(db, [row]))[row["job_id"]]
    job = job_json(row, states)
    done = row["state"] == "completed"
    if row["kind"] == "gritting":
        plan = await gritting_store.plan_by_id(db, row["gritting_plan_id"])
        geojson: dict[str, Any] = json.loads(plan["geojson"]) if plan else {"features": []}
        steps = gritting_q.plan_steps(json.loads(plan["instructions"])) if plan else []
        for step in steps:
            step["done"] = done
            state = states.get(gritting_stop(step["seq"]))
            if state is not None:
                step.update(stop_fields(state))
        job["plan"] = {k: (json.loads(plan[k]) if k == "notes" else plan[k])
                       for k in ("distance_m", "trips", "feasible", "notes")} if plan else None
        features = in_driving_order(geojson.get("features", []), "seq")
    else:
        plan_row, shape, stops = await bins_q.truck_of(db, row["plan_id"], row["truck"])
        steps = [{"seq": 0, "text": f"Leave depot {plan_row['depot_id']} at {plan_row['shift_start']:%H:%M} UTC.",
                  "done": done}]
        for s in stops:
            street = s.get("street")
            where = f" on {street}" if street else ""
            steps.append({"seq": s["seq"], "device_id": s["device_id"], "trip": s["trip"],
                          "text": f"Empty bin {s['device_id']}{where} (due about {s['arrive']:%H:%M} UTC, trip "
                                  f"{s['trip']}; {s['load_after_l']} l on board after it).",
                          "street": street, "directions": _directions(s.get("directions")),
                          **stop_fields(states.get(s["device_id"]) or StopState(s["device_id"], "pending"))})
        steps.append({"seq": len(stops) + 1, "text": f"Return to depot {plan_row['depot_id']} and tip.", "done": done})
        features = in_driving_order((shape or {}).get("features", []), "order")
        job["plan"] = {"depot_id": plan_row["depot_id"], "shift_start": plan_row["shift_start"].isoformat(),
                       "feasible": plan_row["feasible"]}
    job["geojson"] = {"type": "FeatureCollection", "features": features}
    job["steps"] = steps
    job["notes"] = [{"at": _iso(m.marked_at), "by": m.marked_by, "stop": m.stop, "note": m.note}
                    for m in await lifecycle.notes(db, row["job_id"])]
    job["events"] = [event_json(e) for e in await lifecycle.history(db, row["job_id"])]
    return job
