"""Crew jobs: assign, start, complete with a note, and the feedback to the pipelines.

A gritting job sends a route the latest run decided to send, with its plan, or one a duty
officer overrode to send (docs/gritting.md, the decision log; there may be no plan: the crew
drives its usual route); a bins job one truck of a collection plan. A job goes to a crew
member and, optionally, a crew of the same role. States go assigned -> started -> completed,
or cancelled (staff, from assigned or started: the route or truck is free for a new job);
staff may reassign an open job. Every change is a job event (the history).

Crews mark the stops as they go (record_marks; the rules are jobs.progress): idempotent on
the phone's mark_id, a batch all or nothing, the marks of someone the job was reassigned
away from counted only when made before the change. Completing is idempotent: a second
`complete` (a retry after a lost answer, a double tap) returns the job as it was completed,
and the feedback is written once, in the same transaction as the state change:
  bins      one bin_collections row per bin on the truck (less the ones the crew skipped, at
            completion or by a winning skip mark);
            the bins pipeline starts those bins' fill cycles there
  gritting  one gritting_treatments row (route, time, the segments spread, the salt), shown
            as `treated_at` on GET /gritting/routes

The orchestrator: the jobs' SQL is jobs.store's, the decisions and plans are read through the
pipelines' stores, what completing records is jobs.feedback's. Errors: jobs.errors, and
pipelines.errors.RouteDecisionNotFound when there is no gritting run yet.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from cityops.storage import Database
from cityops.storage.database import Connection
from jobs import feedback, progress, store
from jobs.errors import InvalidJob, JobCancelled, JobConflict, JobNotFound
from pipelines.bins import store as bins_store
from pipelines.errors import RouteDecisionNotFound
from pipelines.gritting import store as gritting_store

CREW_ROLE = {"gritting": "gritting_crew", "bins": "waste_crew"}   # ops_api.accounts.roles.Role values
TAKEN_HINT = "GET /jobs shows it; complete it first"


async def _crew_member(db: Database, user_id: str, kind: str, field: str = "assigned_to") -> None:
    row = await store.user_role(db, user_id)
    wanted = CREW_ROLE[kind]
    if row is None:
        raise InvalidJob(f"no user {user_id!r}", field=field, hint="GET /users lists the crews")
    if row["role"] != wanted:
        raise InvalidJob(f"{user_id} is a {row['role']}; a {kind} job goes to a {wanted}", field=field)
    if row["disabled"]:
        raise InvalidJob(f"{user_id} is disabled", field=field)


async def _crew(db: Database, kind: str, assigned_to: str, crew: Sequence[str]) -> list[str]:
    """The assignee checked, and the crew besides them (each checked, once, in the order given)."""
    await _crew_member(db, assigned_to, kind)
    members = [u for u in dict.fromkeys(crew) if u != assigned_to]
    for user_id in members:
        await _crew_member(db, user_id, kind, "crew")
    return members


async def _insert(db: Database, values: dict[str, Any], taken: str) -> asyncpg.Record:
    row = await store.insert(db, values)
    if row is None:
        raise JobConflict(taken, hint=TAKEN_HINT)
    return row


async def assign_gritting(db: Database, route_id: str, assigned_to: str, by: str, crew: Sequence[str] = ()
                          ) -> asyncpg.Record:
    """A job for a route the latest run sends (or an officer overrode to send), to a gritting crew member."""
    members = await _crew(db, "gritting", assigned_to, crew)
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
                              "gritting_plan_id": plan_id, "assigned_to": assigned_to, "assigned_by": by,
                              "crew": members},
                         f"route {route_id} already has a job that is not completed")


async def assign_bins(db: Database, plan_id: int, truck: int, assigned_to: str, by: str, crew: Sequence[str] = ()
                      ) -> asyncpg.Record:
    """A job for one truck's round of a collection plan, to a waste crew member (and a crew)."""
    members = await _crew(db, "bins", assigned_to, crew)
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
                              "assigned_to": assigned_to, "assigned_by": by, "crew": members},
                         f"truck {truck} of plan {plan_id} already has a job")


async def list_jobs(db: Database, *, member: str | None = None, state: str | None = None,
                    kind: str | None = None) -> list[asyncpg.Record]:
    return await store.list_jobs(db, member=member, state=state, kind=kind)


async def get_job(db: Database, job_id: int) -> asyncpg.Record:
    row = await store.get(db, job_id)
    if row is None:
        raise JobNotFound(job_id)
    return row


def members(row: asyncpg.Record) -> frozenset[str]:
    """Who the job is assigned to: the assignee and the crew."""
    return frozenset([row["assigned_to"], *(row["crew"] or [])])


async def _locked(conn: Connection, job_id: int) -> asyncpg.Record:
    row = await store.lock(conn, job_id)
    if row is None:
        raise JobNotFound(job_id)
    return row


def _open(row: asyncpg.Record, doing: str) -> None:
    """JobCancelled or JobConflict unless the job is assigned or started."""
    if row["state"] == "cancelled":
        raise JobCancelled(row["job_id"], row["cancelled_by"], row["cancelled_at"], row["cancel_reason"])
    if row["state"] == "completed":
        raise JobConflict(f"job {row['job_id']} was completed at {row['completed_at']:%Y-%m-%d %H:%M} UTC",
                          hint=f"a completed job cannot be {doing}; make a new job")


async def start(db: Database, job_id: int, now: datetime, by: str) -> asyncpg.Record:
    """assigned -> started; starting a started job changes nothing; a completed or cancelled job cannot start."""
    async with db.transaction() as conn:
        row = await _locked(conn, job_id)
        _open(row, "started again")
        if row["state"] == "assigned":
            row = await store.mark_started(conn, job_id, now, by)
    return row


async def complete(db: Database, job_id: int, by: str, note: str, skipped: list[str], now: datetime
                   ) -> tuple[asyncpg.Record, bool]:
    """Complete the job and write its feedback; (the job, False) when it was already completed.
    A bins job skips the bins given and those whose winning mark is a skip."""
    async with db.transaction() as conn:
        row = await _locked(conn, job_id)
        if row["state"] == "completed":
            return row, False
        _open(row, "completed")
        if row["kind"] == "bins":
            on_round = await bins_store.truck_bins(conn, row["plan_id"], row["truck"])
            states = progress.stop_states(on_round, [_mark(m) for m in await store.marks(conn, [job_id])])
            skipped = list(dict.fromkeys([*skipped, *progress.skipped_stops(states)]))
            await store.record_collections(conn, feedback.emptied(on_round, skipped), now, job_id, by)
        else:
            if skipped:
                raise InvalidJob("a gritting job has no bins to skip", field="skipped")
            plan = await gritting_store.plan_by_id(conn, row["gritting_plan_id"])
            segments, salt = feedback.spread_segments(json.loads(plan["geojson"]) if plan else {})
            await store.record_treatment(conn, row["route_id"], now, job_id, row["run_id"], segments, salt, by)
        row = await store.mark_completed(conn, job_id, now, by, note, skipped)
    return row, True


async def cancel(db: Database, job_id: int, by: str, reason: str, now: datetime) -> asyncpg.Record:
    """assigned or started -> cancelled (staff): the route or truck is free for a new job."""
    async with db.transaction() as conn:
        row = await _locked(conn, job_id)
        _open(row, "cancelled")
        return await store.mark_cancelled(conn, job_id, now, by, reason)


async def reassign(db: Database, job_id: int, assigned_to: str, crew: Sequence[str] | None, by: str, reason: str,
                   now: datetime) -> asyncpg.Record:
    """An open job to another crew member (and crew; None keeps the crew it has)."""
    async with db.transaction() as conn:
        row = await _locked(conn, job_id)
        _open(row, "reassigned")
        new_crew = await _crew(db, row["kind"], assigned_to, row["crew"] if crew is None else crew)
        return await store.reassign(conn, row, assigned_to, new_crew, now, by, reason)


# --- the crews' marks ----------------------------------------------------------------------

class MarkIn(NamedTuple):
    """A mark as the phone sent it (marked_at with its offset)."""
    mark_id: str
    stop: str | None
    status: str
    reason: str | None
    note: str
    marked_at: datetime


def _mark(r: asyncpg.Record) -> progress.Mark:
    return progress.Mark(r["mark_id"], r["stop"], r["status"], r["reason"], r["note"], r["marked_at"],
                         r["marked_by"], r["received"])


async def _stops(conn: Connection | Database, row: asyncpg.Record) -> list[str]:
    """The job's stop keys: a bins job's bins in driving order, a gritting plan's steps."""
    if row["kind"] == "bins":
        return (await store.bins_stops(conn, [(row["plan_id"], row["truck"])])).get((row["plan_id"], row["truck"]), [])
    return [progress.gritting_stop(seq) for seq in range(1, (await _gritting_steps(conn, [row]))
                                                            .get(row["gritting_plan_id"], 0) + 1)]


async def _gritting_steps(db: Connection | Database, rows: Sequence[asyncpg.Record]) -> dict[int, int]:
    """Per gritting plan of these jobs, its number of instructions (the sections a crew marks)."""
    out = {}
    for plan_id in {r["gritting_plan_id"] for r in rows if r["kind"] == "gritting"} - {None}:
        plan = await gritting_store.plan_by_id(db, plan_id)
        out[plan_id] = len(json.loads(plan["instructions"])) if plan else 0
    return out


async def record_marks(db: Database, job_id: int, user_id: str, staff: bool, marks: Sequence[MarkIn],
                       now: datetime) -> list[dict[str, str]]:
    """Store a batch of marks (all or none), marked_by the user; each mark's outcome.

    JobNotFound for a job the user was never on, or a mark they made after the job was
    reassigned away from them; JobCancelled for a cancelled job; InvalidJob for a mark the
    job cannot take. Marks are taken on a completed job too (the crew's record)."""
    async with db.transaction() as conn:   # the job's lock queues two sends of the same batch
        row = await _locked(conn, job_id)
        current = members(row)
        timeline = await store.membership(conn, job_id)
        if not staff and user_id not in current and not progress.was_member(user_id, timeline):
            raise JobNotFound(job_id)
        if row["state"] == "cancelled":
            _open(row, "marked")
        stops = await _stops(conn, row)
        rows = []
        for i, m in enumerate(marks):
            at = progress.clamp(progress.check_mark(i, m.stop, m.status, m.reason, m.note, m.marked_at, stops,
                                                    row["created_at"]), now)
            if not staff and not progress.may_mark(user_id, at, current, timeline):
                raise JobNotFound(job_id, hint="the job was reassigned; marks made since are not taken")
            rows.append((m.mark_id, m.stop, m.status, m.reason if m.status == "skipped" else None, m.note, at))
        stored = await store.insert_marks(conn, job_id, rows, now, user_id)
        states = progress.stop_states(stops, [_mark(m) for m in await store.marks(conn, [job_id])])
    results, seen = [], set()
    for m in marks:
        fresh = m.mark_id in stored and m.mark_id not in seen
        seen.add(m.mark_id)
        results.append({"mark_id": m.mark_id, "outcome": progress.outcome(m.mark_id, m.stop, m.status, fresh, states)})
    return results


async def progress_of(db: Database, rows: Sequence[asyncpg.Record]) -> dict[int, dict[str, progress.StopState]]:
    """Per job, its stops' states in driving order (a completed job's unmarked stops settled)."""
    trucks = await store.bins_stops(db, [(r["plan_id"], r["truck"]) for r in rows if r["kind"] == "bins"])
    steps = await _gritting_steps(db, rows)
    by_job: dict[int, list[progress.Mark]] = {}
    for m in await store.marks(db, [r["job_id"] for r in rows]):
        by_job.setdefault(m["job_id"], []).append(_mark(m))
    out = {}
    for r in rows:
        if r["kind"] == "bins":
            stops = trucks.get((r["plan_id"], r["truck"]), [])
        else:
            stops = [progress.gritting_stop(s) for s in range(1, steps.get(r["gritting_plan_id"], 0) + 1)]
        states = progress.stop_states(stops, by_job.get(r["job_id"], []))
        out[r["job_id"]] = progress.settle(states, completed=r["state"] == "completed", skipped=r["skipped"] or [])
    return out


async def notes(db: Database, job_id: int) -> list[progress.Mark]:
    """The marks that carry a note, by marked_at."""
    marks = [_mark(m) for m in await store.marks(db, [job_id]) if m["note"].strip()]
    return sorted(marks, key=lambda m: m.order)


async def history(db: Database, job_id: int) -> list[asyncpg.Record]:
    return await store.events(db, job_id)
