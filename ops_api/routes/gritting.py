"""Gritting: the latest run's decisions, the routes to send, each route's plan and job sheet.

    GET /gritting/runs/latest                  when, the window, warnings, segments per action
    GET /gritting/segments?route_id=&action=   segment decisions (default: treat and monitor)
    GET /gritting/routes?send_only=            route decisions, plan id, last treated, open job
    GET /gritting/routes/{route_id}/plan       GeoJSON in driving order and the crew's steps
    GET /gritting/routes/{route_id}/sheet      the printable job sheet (HTML)
    POST /gritting/runs/{run_id}/routes/{route_id}/acknowledge
                                               the duty officer acknowledges a route decision or
                                               overrides it ({override?, reason?}); appended to the log
    GET /gritting/log?from=&to=&route_id=      the decision log for a period (docs/gritting.md)

Operators, gritting crews and admins; the decision log and acknowledging: operators and admins.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from ops_api.deps import DB, GrittingReader, Staff
from ops_api.queries import basemap as basemap_q
from ops_api.queries import gritting as q
from ops_api.queries.jobs import in_driving_order
from ops_api.queries.sheet import job_sheet

router = APIRouter(prefix="/gritting", tags=["gritting"])
Action = Literal["treat", "monitor", "none"]


class OfficerEntry(BaseModel):
    override: Literal["send", "not_needed"] | None = Field(
        default=None, description="decide this instead (leave out to acknowledge the decision in force)")
    reason: str | None = Field(default=None, max_length=2000,
                               description="why: required to override, and to acknowledge an 'unknown' decision")


@router.get("/runs/latest", summary="The latest gritting run")
async def latest_run(db: DB, user: GrittingReader) -> dict[str, Any]:
    return await q.run_summary(db)


@router.get("/segments", summary="The latest run's decision per road segment")
async def segments(db: DB, user: GrittingReader, route_id: str | None = None,
                   action: Annotated[list[Action] | None, Query()] = None) -> dict[str, Any]:
    return await q.segments(db, route_id, list(action) if action else ["treat", "monitor"])


@router.get("/routes", summary="The latest run's route decisions (which to send, by when)")
async def routes(db: DB, user: GrittingReader, send_only: bool = False) -> dict[str, Any]:
    return await q.routes(db, send_only)


async def _plan(db: DB, route_id: str, run_id: int | None) -> dict[str, Any]:
    plan = await q.route_plan(db, route_id, run_id)
    plan["geojson"] = {**plan["geojson"], "features": in_driving_order(plan["geojson"].get("features", []), "seq")}
    plan["steps"] = q.plan_steps(plan.pop("instructions"))
    return plan


@router.get("/routes/{route_id}/plan", summary="A route's plan: GeoJSON in driving order and steps")
async def route_plan(route_id: str, db: DB, user: GrittingReader, run_id: int | None = None) -> dict[str, Any]:
    return await _plan(db, route_id, run_id)


@router.get("/routes/{route_id}/sheet", response_class=HTMLResponse, summary="A route's printable job sheet")
async def route_sheet(route_id: str, db: DB, user: GrittingReader, run_id: int | None = None) -> HTMLResponse:
    plan = await _plan(db, route_id, run_id)
    sheet = {"kind": "gritting", "route_id": route_id, "plan_id": plan["plan_id"], "geojson": plan["geojson"],
             "steps": plan["steps"], "created_at": plan["computed_at"]}
    return HTMLResponse(job_sheet(sheet, heading=f"Gritting route {plan.get('name') or route_id} "
                                                 f"(run {plan['run_id']})",
                                  streets=await basemap_q.around(db, plan["geojson"])))


@router.post("/runs/{run_id}/routes/{route_id}/acknowledge", status_code=201,
             summary="Acknowledge or override a run's decision for a route (the decision log)")
async def acknowledge(run_id: Annotated[int, Path(ge=1, le=2**63 - 1)], route_id: str, entry: OfficerEntry, db: DB,
                      user: Staff) -> dict[str, Any]:
    return await q.officer_entry(db, run_id, route_id, user, entry.override, entry.reason)


@router.get("/log", summary="The decision log for a period: runs, decisions, officer entries, crews' jobs")
async def decision_log(db: DB, user: Staff,
                       start: Annotated[str, Query(alias="from", max_length=40, description="ISO date or time")],
                       end: Annotated[str, Query(alias="to", max_length=40,
                                                 description="not included; a date includes that whole day")],
                       route_id: str | None = None) -> dict[str, Any]:
    return await q.decision_log(db, start, end, route_id)
