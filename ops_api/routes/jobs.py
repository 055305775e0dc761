"""Crew jobs: operators assign, crews start and complete them with a note.

    GET  /jobs?state=&kind=           staff: every job; crews: their own
    POST /jobs                        staff: {kind: "gritting", route_id, assigned_to} (the latest
                                      run's plan) or {kind: "bins", plan_id, truck, assigned_to}
    GET  /jobs/{job_id}               the job, its GeoJSON in driving order and its steps
    POST /jobs/{job_id}/start         the crew member it is assigned to (or staff)
    POST /jobs/{job_id}/complete      {note, skipped?: [bin ids]}; idempotent: completing again
                                      returns the completed job unchanged (already_completed: true)
    GET  /jobs/{job_id}/sheet         the printable job sheet (HTML)

A crew member asking for someone else's job gets 404; householders 403. The lifecycle is
jobs.lifecycle; its errors (jobs.errors) become 404, 409 and 422 in the API's one error
handler (ops_api/errors.py, DOMAIN_ERRORS).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from cityops.storage import Database
from jobs import lifecycle
from ops_api.accounts.roles import Role
from ops_api.deps import DB, Staff, User, allow
from ops_api.errors import InvalidRequest, NotFound
from ops_api.queries import jobs as q
from ops_api.queries.sheet import job_sheet

router = APIRouter(prefix="/jobs", tags=["jobs"])
JobUser = Annotated[User, Depends(allow(Role.OPERATOR, Role.GRITTING_CREW, Role.WASTE_CREW))]


class NewJob(BaseModel):
    kind: Literal["gritting", "bins"]
    assigned_to: str = Field(min_length=1, max_length=100, description="the crew member's user_id")
    route_id: str | None = Field(default=None, max_length=200, description="gritting: the route to send")
    plan_id: int | None = Field(default=None, ge=1, le=2**62, description="bins: the collection plan")
    truck: int | None = Field(default=None, ge=1, le=10_000, description="bins: the plan's truck")


class Completion(BaseModel):
    note: str = Field(default="", max_length=2000)
    skipped: list[str] = Field(default_factory=list, max_length=1000,
                               description="bins: the bins on the round the crew could not empty")


async def _own_job(db: Database, user: User, job_id: int) -> asyncpg.Record:
    """The job when the user may see it: staff any, a crew member their own; 404 otherwise."""
    row = await lifecycle.get_job(db, job_id)
    if not user.is_staff and row["assigned_to"] != user.user_id:
        raise NotFound(f"no job {job_id}")
    return row


@router.get("", summary="Jobs: all for staff, your own for crews")
async def list_jobs(db: DB, user: JobUser, state: Literal["assigned", "started", "completed"] | None = None,
                    kind: Literal["gritting", "bins"] | None = None, assigned_to: str | None = None
                    ) -> list[dict[str, Any]]:
    mine = assigned_to if user.is_staff else user.user_id
    return [q.job_json(r) for r in await lifecycle.list_jobs(db, assigned_to=mine, state=state, kind=kind)]


@router.post("", status_code=201, summary="Assign a gritting route or a bin truck's round to a crew member")
async def assign(job: NewJob, db: DB, user: Staff) -> dict[str, Any]:
    if job.kind == "gritting":
        if job.route_id is None:
            raise InvalidRequest("a gritting job needs the route to send", field="route_id")
        return q.job_json(await lifecycle.assign_gritting(db, job.route_id, job.assigned_to, user.user_id))
    if job.plan_id is None or job.truck is None:
        raise InvalidRequest("a bins job needs a plan and one of its trucks", field="plan_id" if job.plan_id is None
                             else "truck", hint="GET /bins/plans lists today's plans and their trucks")
    return q.job_json(await lifecycle.assign_bins(db, job.plan_id, job.truck, job.assigned_to, user.user_id))


@router.get("/{job_id}", summary="A job with its GeoJSON in driving order and readable steps")
async def show_job(job_id: int, db: DB, user: JobUser) -> dict[str, Any]:
    return await q.detail(db, await _own_job(db, user, job_id))


@router.post("/{job_id}/start", summary="Start a job")
async def start_job(job_id: int, db: DB, user: JobUser) -> dict[str, Any]:
    await _own_job(db, user, job_id)
    return q.job_json(await lifecycle.start(db, job_id, datetime.now(UTC)))


@router.post("/{job_id}/complete", summary="Complete a job with a note (idempotent); feeds back to the runners")
async def complete_job(job_id: int, completion: Completion, db: DB, user: JobUser) -> dict[str, Any]:
    await _own_job(db, user, job_id)
    row, first = await lifecycle.complete(db, job_id, user.user_id, completion.note, completion.skipped,
                                          datetime.now(UTC))
    return {**q.job_json(row), "already_completed": not first}


@router.get("/{job_id}/sheet", response_class=HTMLResponse, summary="A job's printable sheet")
async def job_sheet_page(job_id: int, db: DB, user: JobUser) -> HTMLResponse:
    return HTMLResponse(job_sheet(await q.detail(db, await _own_job(db, user, job_id))))
