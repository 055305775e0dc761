"""Crew jobs: operators assign, cancel and reassign them; crews start them, mark their stops
as they go (from an offline queue too) and complete them with a note.

    GET  /jobs?state=&kind=&assigned_to=   staff: every job; crews: those they are on (assignee or crew)
    POST /jobs                        staff: {kind: "gritting", route_id, assigned_to, crew?} (the latest
                                      run's plan) or {kind: "bins", plan_id, truck, assigned_to, crew?}
    GET  /jobs/{job_id}               the job, its GeoJSON in driving order, its steps, notes, history
    POST /jobs/{job_id}/start         the assignee or the crew (or staff)
    POST /jobs/{job_id}/marks         {marks: [{mark_id, stop, status, reason, note, marked_at}]}: the
                                      same; idempotent on mark_id; per stop the latest marked_at wins
    POST /jobs/{job_id}/complete      {note, skipped?: [bin ids]}; idempotent: completing again
                                      returns the completed job unchanged (already_completed: true)
    POST /jobs/{job_id}/cancel        staff: {reason}
    POST /jobs/{job_id}/reassign      staff: {assigned_to, reason, crew?}
    GET  /jobs/{job_id}/sheet         the printable job sheet (HTML)

A crew member asking for a job they are not on gets 404; householders 403. The lifecycle is
jobs.lifecycle; its errors (jobs.errors) become 404, 409 and 422 in the API's one error
handler (ops_api/errors.py, DOMAIN_ERRORS).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from pydantic import AwareDatetime, BaseModel, Field

from cityops.storage import Database
from jobs import lifecycle
from ops_api.accounts.roles import Role
from ops_api.deps import DB, Staff, User, allow
from ops_api.errors import InvalidRequest, NotFound
from ops_api.queries import basemap as basemap_q
from ops_api.queries import jobs as q
from ops_api.queries.sheet import job_sheet

router = APIRouter(prefix="/jobs", tags=["jobs"])
JobUser = Annotated[User, Depends(allow(Role.OPERATOR, Role.GRITTING_CREW, Role.WASTE_CREW))]
UserId = Annotated[str, Field(min_length=1, max_length=100)]
Crew = Annotated[list[UserId], Field(max_length=10, description="extra crew members (user ids) of the same role")]
Reason = Annotated[str, Field(min_length=3, max_length=500)]


class NewJob(BaseModel):
    kind: Literal["gritting", "bins"]
    assigned_to: str = Field(min_length=1, max_length=100, description="the crew member's user_id")
    route_id: str | None = Field(default=None, max_length=200, description="gritting: the route to send")
    plan_id: int | None = Field(default=None, ge=1, le=2**62, description="bins: the collection plan")
    truck: int | None = Field(default=None, ge=1, le=10_000, description="bins: the plan's truck")
    crew: Crew = Field(default_factory=list)


class Completion(BaseModel):
    note: str = Field(default="", max_length=2000)
    skipped: list[str] = Field(default_factory=list, max_length=1000,
                               description="bins: the bins on the round the crew could not empty")


class MarkIn(BaseModel):
    mark_id: uuid.UUID = Field(description="made by the phone: a mark sent again is stored once")
    stop: str | None = Field(default=None, max_length=200, description="the step's `stop`; null for a job note")
    status: Literal["done", "skipped", "pending", "note"]
    reason: Literal["blocked", "contaminated", "not_out", "damaged", "other"] | None = None
    note: str = Field(default="", max_length=500)
    marked_at: AwareDatetime = Field(description="the phone's time of the tap, with its UTC offset")


class Marks(BaseModel):
    marks: list[MarkIn] = Field(min_length=1, max_length=500)


class Cancellation(BaseModel):
    reason: Reason


class Reassignment(BaseModel):
    assigned_to: str = Field(min_length=1, max_length=100, description="the crew member's user_id")
    reason: Reason
    crew: Crew | None = Field(default=None, description="the new crew; omitted: the job keeps its crew")


async def _own_job(db: Database, user: User, job_id: int) -> asyncpg.Record:
    """The job when the user may see it: staff any, a crew member one they are on; 404 otherwise."""
    row = await lifecycle.get_job(db, job_id)
    if not user.is_staff and user.user_id not in lifecycle.members(row):
        raise NotFound(f"no job {job_id}")
    return row


@router.get("", summary="Jobs: all for staff, the ones you are on for crews")
async def list_jobs(db: DB, user: JobUser,
                    state: Literal["assigned", "started", "completed", "cancelled"] | None = None,
                    kind: Literal["gritting", "bins"] | None = None, assigned_to: str | None = None
                    ) -> list[dict[str, Any]]:
    mine = assigned_to if user.is_staff else user.user_id
    return await q.jobs_json(db, await lifecycle.list_jobs(db, member=mine, state=state, kind=kind))


@router.post("", status_code=201, summary="Assign a gritting route or a bin truck's round to a crew member")
async def assign(job: NewJob, db: DB, user: Staff) -> dict[str, Any]:
    if job.kind == "gritting":
        if job.route_id is None:
            raise InvalidRequest("a gritting job needs the route to send", field="route_id")
        return await q.one_json(db, await lifecycle.assign_gritting(db, job.route_id, job.assigned_to, user.user_id,
                                                                    job.crew))
    if job.plan_id is None or job.truck is None:
        raise InvalidRequest("a bins job needs a plan and one of its trucks", field="plan_id" if job.plan_id is None
                             else "truck", hint="GET /bins/plans lists today's plans and their trucks")
    return await q.one_json(db, await lifecycle.assign_bins(db, job.plan_id, job.truck, job.assigned_to,
                                                            user.user_id, job.crew))


@router.get("/{job_id}", summary="A job with its GeoJSON in driving order, its steps and history")
async def show_job(job_id: int, db: DB, user: JobUser) -> dict[str, Any]:
    return await q.detail(db, await _own_job(db, user, job_id))


@router.post("/{job_id}/start", summary="Start a job")
async def start_job(job_id: int, db: DB, user: JobUser) -> dict[str, Any]:
    await _own_job(db, user, job_id)
    return await q.one_json(db, await lifecycle.start(db, job_id, datetime.now(UTC), user.user_id))


@router.post("/{job_id}/marks", summary="Mark stops done, skipped or pending, or send notes (idempotent)")
async def mark_stops(job_id: int, body: Marks, db: DB, user: JobUser) -> dict[str, Any]:
    marks = [lifecycle.MarkIn(str(m.mark_id), m.stop, m.status, m.reason, m.note, m.marked_at) for m in body.marks]
    results = await lifecycle.record_marks(db, job_id, user.user_id, user.is_staff, marks, datetime.now(UTC))
    return {"results": results, "job": await q.detail(db, await lifecycle.get_job(db, job_id))}


@router.post("/{job_id}/complete", summary="Complete a job with a note (idempotent); feeds back to the runners")
async def complete_job(job_id: int, completion: Completion, db: DB, user: JobUser) -> dict[str, Any]:
    await _own_job(db, user, job_id)
    row, first = await lifecycle.complete(db, job_id, user.user_id, completion.note, completion.skipped,
                                          datetime.now(UTC))
    return {**await q.one_json(db, row), "already_completed": not first}


@router.post("/{job_id}/cancel", summary="Cancel an open job (staff): its route or truck is free again")
async def cancel_job(job_id: int, body: Cancellation, db: DB, user: Staff) -> dict[str, Any]:
    return await q.one_json(db, await lifecycle.cancel(db, job_id, user.user_id, body.reason, datetime.now(UTC)))


@router.post("/{job_id}/reassign", summary="Give an open job to another crew member (staff)")
async def reassign_job(job_id: int, body: Reassignment, db: DB, user: Staff) -> dict[str, Any]:
    return await q.one_json(db, await lifecycle.reassign(db, job_id, body.assigned_to, body.crew, user.user_id,
                                                         body.reason, datetime.now(UTC)))


@router.get("/{job_id}/sheet", response_class=HTMLResponse, summary="A job's printable sheet")
async def job_sheet_page(job_id: int, db: DB, user: JobUser) -> HTMLResponse:
    job = await q.detail(db, await _own_job(db, user, job_id))
    return HTMLResponse(job_sheet(job, streets=await basemap_q.around(db, job["geojson"])))
