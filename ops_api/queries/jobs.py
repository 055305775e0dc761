"""Crew jobs: assign, start, complete with a note, and the feedback to the runners.

A gritting job sends a route the latest run decided to send, with its plan, or one a duty
officer overrode to send (docs/gritting.md, the decision log; there may be no plan: the crew
drives its usual route); a bins job one truck of a collection plan. States go assigned ->
started -> completed. Completing is idempotent: a second `complete` (a retry after a lost
answer, a double tap) returns the job as it was completed, and the feedback is written
once, in the same transaction as the state change:
  bins      one bin_collections row per bin on the truck (less the ones the crew skipped);
            the bins runner starts those bins' fill cycles there
  gritting  one gritting_treatments row (route, time, the segments spread, the salt), shown
            as `treated_at` on GET /gritting/routes
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from cityops.storage import Database
from ops_api.accounts.roles import Role
from ops_api.errors import Conflict, InvalidRequest, NotFound
from ops_api.queries import bins as bins_q
from ops_api.queries import gritting as gritting_q
from pipelines.bins import store as bins_store
from pipelines.gritting import store as gritting_store

CREW_ROLE = {"gritting": Role.GRITTING_CREW, "bins": Role.WASTE_CREW}
_LIST = ("job_id, kind, title, state, route_id, run_id, gritting_plan_id, plan_id, truck, assigned_to, assigned_by, "
         "created_at, started_at, completed_at, completed_by, note, skipped")


def job_json(row: asyncpg.Record) -> dict[str, Any]:
    out = gritting_q.plain(row)
    out["skipped"] = list(row["skipped"] or [])
    if row["kind"] == "gritting":   # the API's plan_id is the plan the job points at, of its kind
        out["plan_id"] = row["gritting_plan_id"]
    return out


async def _crew_member(db: Database, user_id: str, kind: str) -> None:
    row = await db.fetchrow("SELECT role, disabled FROM users WHERE user_id = $1", user_id)
    wanted = CREW_ROLE[kind]
    if row is None:
        raise InvalidRequest(f"no user {user_id!r}", field="assigned_to", hint="GET /users lists the crews")
    if row["role"] != wanted.value:
        raise InvalidRequest(f"{user_id} is a {row['role']}; a {kind} job goes to a {wanted.value}",
                             field="assigned_to")
    if row["disabled"]:
        raise InvalidRequest(f"{user_id} is disabled", field="assigned_to")


async def _insert(db: Database, values: dict[str, Any], taken: str) -> dict[str, Any]:
    columns = list(values)
    try:
        row = await db.pool.fetchrow(
            f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})"
            f" RETURNING {_LIST}", *values.values())
    except asyncpg.UniqueViolationError:
        raise Conflict(taken, hint="GET /jobs shows it; complete it first") from None
    assert row is not None
    return job_json(row)


async def assign_gritting(db: Database, route_id: str, assigned_to: str, by: str) -> dict[str, Any]:
    await _crew_member(db, assigned_to, "gritting")
    run = await gritting_q.latest(db)
    decision = await gritting_store.route_decision_in_force(db, run["run_id"], route_id)
    if decision is None:
        raise InvalidRequest(f"route {route_id!r} is not in the latest gritting run ({run['run_id']})",
                             field="route_id", hint="GET /gritting/routes lists the routes")
    in_force = decision["overridden"] or decision["decision"]
    if in_force != "send":
        raise InvalidRequest(f"the latest run ({run['run_id']}) decided {in_force.replace('_', ' ')} for route "
                             f"{route_id}: {decision['reason']}", field="route_id",
                             hint=f"a duty officer who decides to send it overrides first: POST /gritting/runs/"
                                  f"{run['run_id']}/routes/{route_id}/acknowledge with override 'send' and a reason")
    plan_id = await gritting_store.plan_id(db, run["run_id"], route_id)
    if plan_id is None and not decision["overridden"]:
        raise InvalidRequest(f"run {run['run_id']} made no plan for route {route_id}", field="route_id",
                             hint="run the gritting rules with planning on (cityops rules run --gritting)")
    title = f"Grit {decision['name'] or route_id}"
    return await _insert(db, {"kind": "gritting", "title": title, "route_id": route_id, "run_id": run["run_id"],
                              "gritting_plan_id": plan_id, "assigned_to": assigned_to, "assigned_by": by},
                         f"route {route_id} already has a job that is not completed")


async def assign_bins(db: Database, plan_id: int, truck: int, assigned_to: str, by: str) -> dict[str, Any]:
    await _crew_member(db, assigned_to, "bins")
    try:
        row, _, stops = await bins_q.truck_of(db, plan_id, truck)
    except NotFound as exc:
        raise InvalidRequest(str(exc), field="plan_id", hint="GET /bins/plans lists today's plans and trucks") \
            from None
    if not stops:
        raise InvalidRequest(f"truck {truck} of plan {plan_id} has no bins to empty", field="truck")
    shift = f"{row['shift_start']:%a %d %b %H:%M}"
    title = f"Empty {len(stops)} bins: depot {row['depot_id']}, truck {truck}, shift {shift}"
    return await _insert(db, {"kind": "bins", "title": title, "plan_id": plan_id, "truck": truck,
                              "assigned_to": assigned_to, "assigned_by": by},
                         f"truck {truck} of plan {plan_id} already has a job")


async def list_jobs(db: Database, *, assigned_to: str | None = None, state: str | None = None,
                    kind: str | None = None) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {_LIST} FROM jobs WHERE ($1::text IS NULL OR assigned_to = $1) AND ($2::text IS NULL OR state = $2) "
        "AND ($3::text IS NULL OR kind = $3) ORDER BY (state = 'completed'), created_at DESC, job_id DESC LIMIT 500",
        assigned_to, state, kind)
    return [job_json(r) for r in rows]


async def get_job(db: Database, job_id: int) -> asyncpg.Record:
    row = await db.fetchrow(f"SELECT {_LIST} FROM jobs WHERE job_id = $1", job_id)
    if row is None:
        raise NotFound(f"no job {job_id}")
    return row


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


async def start(db: Database, job_id: int, now: datetime) -> asyncpg.Record:
    """assigned -> started; starting a started job changes nothing; a completed job cannot start again."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(f"SELECT {_LIST} FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)
        if row is None:
            raise NotFound(f"no job {job_id}")
        if row["state"] == "completed":
            raise Conflict(f"job {job_id} was completed at {row['completed_at']:%Y-%m-%d %H:%M} UTC",
                           hint="a completed job cannot be started again; ask an operator for a new job")
        if row["state"] == "assigned":
            row = await conn.fetchrow(f"UPDATE jobs SET state = 'started', started_at = $2 WHERE job_id = $1 "
                                      f"RETURNING {_LIST}", job_id, now)
    assert row is not None
    return row


async def complete(db: Database, job_id: int, by: str, note: str, skipped: list[str], now: datetime
                   ) -> tuple[asyncpg.Record, bool]:
    """Complete the job and write its feedback; (the job, False) when it was already completed."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(f"SELECT {_LIST} FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)
        if row is None:
            raise NotFound(f"no job {job_id}")
        if row["state"] == "completed":
            return row, False
        if row["kind"] == "bins":
            bins = await bins_store.truck_bins(conn, row["plan_id"], row["truck"])
            unknown = sorted(set(skipped) - set(bins))
            if unknown:
                raise InvalidRequest(f"not on this job: {', '.join(unknown)}", field="skipped",
                                     hint="list only bins of this job's stops")
            emptied = [b for b in bins if b not in skipped]
            await conn.execute(
                "INSERT INTO bin_collections (device_id, collected_at, job_id, recorded_by) "
                "SELECT d, $2, $3, $4 FROM unnest($1::text[]) AS d ON CONFLICT DO NOTHING", emptied, now, job_id, by)
        else:
            if skipped:
                raise InvalidRequest("a gritting job has no bins to skip", field="skipped")
            plan = await gritting_store.plan_by_id(conn, row["gritting_plan_id"])
            segments, salt = gritting_q.spread_segments(json.loads(plan["geojson"]) if plan else {})
            await conn.execute(
                "INSERT INTO gritting_treatments (route_id, treated_at, job_id, run_id, segments, salt_kg, "
                "recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                row["route_id"], now, job_id, row["run_id"], segments, salt, by)
        row = await conn.fetchrow(
            f"UPDATE jobs SET state = 'completed', started_at = coalesce(started_at, $2), completed_at = $2, "
            f"completed_by = $3, note = $4, skipped = $5 WHERE job_id = $1 RETURNING {_LIST}",
            job_id, now, by, note, skipped)
    assert row is not None
    return row, True
