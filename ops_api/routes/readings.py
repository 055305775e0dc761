"""Readings of one device over a time range, downsampled into time buckets.

    GET /readings/{device_id}?start=&end=&bucket_s=

Who may: as GET /devices/{device_id} (another household's device is 404); a householder
only through an open tenancy (none: 404) and only readings from its start: a range before
it answers no points. Default range:
the last 24 hours; default bucket: chosen for about 500 points. Capped: 400 days per
request and 5,000 buckets; past either the answer is 422 with the cap and what to do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ops_api.accounts import tenancies
from ops_api.accounts.roles import Role
from ops_api.deps import DB, CurrentUser
from ops_api.errors import NotFound
from ops_api.queries import readings as q
from ops_api.routes.devices import visible_device

router = APIRouter(prefix="/readings", tags=["readings"])


@router.get("/{device_id}", summary="A device's readings in time buckets (capped range and points)")
async def device_readings(
        device_id: str, db: DB, user: CurrentUser,
        start: Annotated[datetime | None, Query(description="ISO 8601; default end - 24 h; naive is UTC")] = None,
        end: Annotated[datetime | None, Query(description="ISO 8601, exclusive; default now")] = None,
        bucket_s: Annotated[int | None, Query(ge=1, le=31_622_400,
                                              description="seconds per bucket (>= 60); default: automatic")] = None,
) -> dict[str, Any]:
    device = await visible_device(db, user, device_id)
    since = None
    if user.role is Role.HOUSEHOLDER:  # a home's box: only the tenant's own period
        tenancy = await tenancies.current(db, user)
        if tenancy is None:
            raise NotFound("no such device")  # as visible_device says it
        since = tenancy.starts_at
    window = q.plan_window(start, end, bucket_s, now=datetime.now(UTC))
    hourly = q.use_hourly(window, (await db.backend()).is_timescale)
    points = await q.series(db, device["kind"], device_id, window, hourly=hourly, since=since)
    first = window.start if since is None else min(max(window.start, since), window.end)
    return {"device_id": device_id, "kind": device["kind"], "start": first.isoformat(),
            "end": window.end.isoformat(), "bucket_s": window.bucket_s, "source": "hourly" if hourly else "raw",
            "points": points}
