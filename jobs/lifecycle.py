"""Crew jobs: assign, start, complete with a note, and the feedback to the pipelines.

A gritting job sends a route the latest run decided to send, with its plan, or one a duty
officer overrode to send (docs/gritting.md, the decision log; there may be no plan: the crew
drives its usual route); a bins job one truck of a collection plan. States go assigned ->
started -> completed. Completing is idempotent: a second `complete` (a retry after a lost
answer, a double tap) returns the job as it was completed, and the feedback is written
once, in the same transaction as the state change:
  bins      one bin_collections row per bin on the truck (less the ones the crew skipped);
            the bins pipeline starts those bins' fill cycles there
  gritting  one gritting_treatments row (route, time, the segments spread, the salt), shown
            as `treated_at` on GET /gritting/routes

The orchestrator: the jobs' SQL is jobs.store's, the decisions and plans are read through the
pipelines' stores, what completing records is jobs.feedback's. Errors: jobs.errors, and
pipelines.errors.RouteDecisionNotFound when there is no gritting run yet.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from cityops.storage import Database
from jobs import feedback, store
from jobs.errors import InvalidJob, JobConflict, JobNotFound
from pipelines.bins import store as bins_store
from pipelines.errors import RouteDecisionNotFound
from pipelines.gritting import store as gritting_store

CREW_ROLE = {"gritting": "gritting_crew", "bins": "waste_crew"}   # ops_api.accounts.roles.Role values
TAKEN_HINT = "GET /jobs shows it; complete it first"


async def _crew_member(db: Database, user_id: str, kind: str) -> None:
    row = await store.user_role(db, user_id)
    wanted = CREW_ROLE[kind]
    if row is None:
        raise InvalidJob(f"no user {user_id!r}", field="assigned_to", hint="GET /users lists the crews")
    if row["role"] != wanted:
        raise InvalidJob(f"{user_id} is a {row['role']}; a {kind} job goes to a {wanted}", field="assigned_to")
    if row["disabled"]:
        raise InvalidJob(f"{user_id} is disabled", field="assigned_to")


async def _insert(db: Database, values: dict[str, Any], taken: str) -> asyncpg.Record:
    row = await store.insert(db, values)
    if row is None:
        raise JobConflict(taken, hint=TAKEN_HINT)
    return row


async def assign_gritting(db: Database, route_id: str, assigned_to: str, by: str) -> asyncpg.Record:
    """A job for a route the latest run sends (or an officer overrode to send), to a gritting crew member."""
    await _crew_member(db, assigned_to, "gritting")
    run = await gritting_store.latest_run(db)
    if run is None:
        raise RouteDecisionNotFound("no gritting run yet", field="run",
                                    hint="the rules service runs it: cityops rules run --gritting")
    decision = await gritting_store.route_decision_in_force(db, run["run_id"], route_id)
    if decision is None:
        raise InvalidJob(f"route {route_id!r} is not in the latest gritting run ({run['run_id']})",
                         field="route_id", hint="GET /gritting/routes lists the routes")
    in_force = decision["overridden"] or decision["decision"]
    if in_force != "send":
        raise InvalidJob(f"the latest run ({run['run_id']}) decided {in_force.replace('_', ' ')} for route "
                         f"{route_id}: {decision['reason']}", field="route_id",
                         hint=f"a duty officer who decides to send it overrides first: POST /gritting/runs/"
                              f"{run['run_id']}/routes/{route_id}/acknowledge with override 'send' and a reason")
    plan_id = await gritting_store.plan_id(db, run["run_id"], route_id)
    if plan_id is None and not decision["overridden"]:
        raise InvalidJob(f"run {run['run_id']} made no plan for route {route_id}", field="route_id",
                         hint="run the gritting rules with planning on (cityops rules run --gritting)")
    title = f"Grit {decision['name'] or route_id}"
    return await _insert(db, {"kind": "gritting", "title": title, "route_id": route_id, "run_id": run["run_id"],
                              "gritting_plan_id": plan_id, "assigned_to": assigned_to, "assigned_by": by},
                         f"route {route_id} already has a job that is not completed")


async def assign_bins(db: Database, plan_id: int, truck: int, assigned_to: str, by: str) -> asyncpg.Record:
    """A job for one truck's round of a collection plan, to a waste crew member."""
    await _crew_member(db, assigned_to, "bins")
    hint = "GET /bins/plans lists today's plans and trucks"
    plan = await bins_store.plan(db, plan_id)
    if plan is None:
        raise InvalidJob(f"no bin collection plan {plan_id}", field="plan_id", hint=hint)
    stops = await bins_store.plan_stops(db, plan_id, truck)
    if not stops and truck not in feedback.round_trucks(json.loads(plan["geojson"])):
        raise InvalidJob(f"plan {plan_id} has no truck {truck}", field="plan_id", hint=hint)
    if not stops:
        raise InvalidJob(f"truck {truck} of plan {plan_id} has no bins to empty", field="truck")
    shift = f"{plan['shift_start']:%a %d %b %H:%M}"
    title = f"Empty {len(stops)} bins: depot {plan['depot_id']}, truck {truck}, shift {shift}"
    return await _insert(db, {"kind": "bins", "title": title, "plan_id": plan_id, "truck": truck,
                              "assigned_to": assigned_to, "assigned_by": by},
                         f"truck {truck} of plan {plan_id} already has a job")


async def list_jobs(db: Database, *, assigned_to: str | None = None, state: str | None = None,
                    kind: str | None = None) -> list[asyncpg.Record]:
    return await store.list_jobs(db, assigned_to=assigned_to, state=state, kind=kind)


async def get_job(db: Database, job_id: int) -> asyncpg.Record:
    row = await store.get(db, job_id)
    if row is None:
        raise JobNotFound(job_id)
    return row


async def start(db: Database, job_id: int, now: datetime) -> asyncpg.Record:
    """assigned -> started; starting a started job changes nothing; a completed job cannot start again."""
    async with db.transaction() as conn:
        row = await store.lock(conn, job_id)
        if row is None:
            raise JobNotFound(job_id)
        if row["state"] == "completed":
            raise JobConflict(f"job {job_id} was completed at {row['completed_at']:%Y-%m-%d %H:%M} UTC",
                              hint="a completed job cannot be started again; ask an operator for a new job")
        if row["state"] == "assigned":
            row = await store.mark_started(conn, job_id, now)
    return row


async def complete(db: Database, job_id: int, by: str, note: str, skipped: list[str], now: datetime
                   ) -> tuple[asyncpg.Record, bool]:
    """Complete the job and write its feedback; (the job, False) when it was already completed."""
    async with db.transaction() as conn:
        row = await store.lock(conn, job_id)
        if row is None:
            raise JobNotFound(job_id)
        if row["state"] == "completed":
            return row, False
        if row["kind"] == "bins":
            on_round = await bins_store.truck_bins(conn, row["plan_id"], row["truck"])
            await store.record_collections(conn, feedback.emptied(on_round, skipped), now, job_id, by)
        else:
            if skipped:
                raise InvalidJob("a gritting job has no bins to skip", field="skipped")
            plan = await gritting_store.plan_by_id(conn, row["gritting_plan_id"])
            segments, salt = feedback.spread_segments(json.loads(plan["geojson"]) if plan else {})
            await store.record_treatment(conn, row["route_id"], now, job_id, row["run_id"], segments, salt, by)
        row = await store.mark_completed(conn, job_id, now, by, note, skipped)
    return row, True
