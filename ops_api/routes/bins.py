"""Bins: priorities and collection plans per truck.

    GET /bins/priorities?depot_id=&mandatory_only=     the latest priority per bin, highest first
    GET /bins/plans?date=&depot_id=                    each depot's latest plan for a day (default today, UTC)
    GET /bins/plans/{plan_id}                          a plan with its trucks' stops and GeoJSON
    GET /bins/plans/{plan_id}/trucks/{truck}           one truck: stops in order and GeoJSON

Operators, waste crews and admins.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ops_api.deps import DB, WasteReader
from ops_api.queries import bins as q
from ops_api.queries.gritting import plain
from ops_api.queries.jobs import in_driving_order

router = APIRouter(prefix="/bins", tags=["bins"])


@router.get("/priorities", summary="Each bin's latest priority, highest first")
async def priorities(db: DB, user: WasteReader, depot_id: str | None = None,
                     mandatory_only: bool = False) -> list[dict[str, Any]]:
    return await q.priorities(db, depot_id, mandatory_only)


@router.get("/plans", summary="Each depot's latest collection plan for a day (default today, UTC)")
async def plans(db: DB, user: WasteReader, day: Annotated[date | None, Query(alias="date")] = None,
                depot_id: str | None = None) -> dict[str, Any]:
    day = day or datetime.now(UTC).date()
    return {"date": day.isoformat(), "plans": await q.plans_on(db, day, depot_id)}


@router.get("/plans/{plan_id}", summary="A collection plan with its trucks")
async def plan(plan_id: int, db: DB, user: WasteReader) -> dict[str, Any]:
    return await q.plan(db, plan_id)


@router.get("/plans/{plan_id}/trucks/{truck}", summary="One truck's round: stops in order and GeoJSON")
async def truck(plan_id: int, truck: int, db: DB, user: WasteReader) -> dict[str, Any]:
    row, shape, stops = await q.truck_of(db, plan_id, truck)
    features = in_driving_order((shape or {}).get("features", []), "order")
    return {"plan_id": plan_id, "truck": truck, "depot_id": row["depot_id"],
            "shift_start": row["shift_start"].isoformat(),
            "stops": [plain(s, skip=("plan_id", "truck")) for s in stops],
            "geojson": {"type": "FeatureCollection", "features": features}}
