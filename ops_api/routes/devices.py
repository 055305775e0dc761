"""Devices: list, show, health.

    GET /devices                      staff: all; householders: their household's (while their
                                      tenancy is open); crews: their kind
    GET /devices/{device_id}          the same; anything not yours to see is 404
    GET /devices/{device_id}/health   state (ok/warning/critical/unknown/retired) and the reasons

Registry changes (add, retire, rotate) are the admin routes under /admin/devices.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter

from cityops.storage import Database
from ops_api.accounts import tenancies
from ops_api.accounts.roles import Role, User
from ops_api.deps import DB, CurrentUser
from ops_api.errors import NotFound
from ops_api.queries import devices as q
from ops_api.queries.scope import device_kinds, may_see_device

router = APIRouter(prefix="/devices", tags=["devices"])
Kind = Literal["frog", "road", "bin"]


async def visible_device(db: Database, user: User, device_id: str) -> dict[str, Any]:
    """The device if this user may see it; 404 otherwise (whether or not it exists)."""
    row = await q.get_device(db, device_id)
    if row is None or not may_see_device(user, row["kind"], row["household_id"]) or (
            user.role is Role.HOUSEHOLDER and await tenancies.current(db, user) is None):
        raise NotFound("no such device")  # the same answer whether it exists or is not yours
    return q.device_json(row)


@router.get("", summary="Devices you may see")
async def list_devices(db: DB, user: CurrentUser, kind: Kind | None = None,
                       include_retired: bool = False) -> list[dict[str, Any]]:
    household = user.household_id if user.role is Role.HOUSEHOLDER else None
    if household is not None and await tenancies.current(db, user) is None:
        return []  # a tenancy that has ended shows nothing of the home
    return await q.list_devices(db, kinds=device_kinds(user), household_id=household, kind=kind,
                                include_retired=include_retired)


@router.get("/{device_id}", summary="One device")
async def show_device(device_id: str, db: DB, user: CurrentUser) -> dict[str, Any]:
    return await visible_device(db, user, device_id)


@router.get("/{device_id}/health", summary="A device's health and the reasons")
async def device_health(device_id: str, db: DB, user: CurrentUser) -> dict[str, Any]:
    await visible_device(db, user, device_id)
    return await q.health_of(db, device_id, datetime.now(UTC))
