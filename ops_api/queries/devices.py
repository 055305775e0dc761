"""Devices as the API shows them, and their health (devices.health_query does the work)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from cityops.storage import Database
from devices.health import Health
from devices.health_query import device_health

_COLUMNS = ("device_id, kind, status, household_id, road_segment_id, lon, lat, mobile, registered_at, last_seen, "
            "online, battery_v, firmware_version")


def device_json(row: asyncpg.Record) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dict(row).items()}


async def list_devices(db: Database, *, kinds: Sequence[str] | None = None, household_id: str | None = None,
                       kind: str | None = None, include_retired: bool = False) -> list[dict[str, Any]]:
    """Devices, filtered: by the kinds a role may see, one household, one kind."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM devices WHERE ($1::text[] IS NULL OR kind = ANY($1)) "
        "AND ($2::text IS NULL OR household_id = $2) AND ($3::text IS NULL OR kind = $3) "
        "AND ($4 OR status = 'active') ORDER BY device_id",
        list(kinds) if kinds is not None else None, household_id, kind, include_retired)
    return [device_json(r) for r in rows]


async def get_device(db: Database, device_id: str) -> asyncpg.Record | None:
    return await db.fetchrow(f"SELECT {_COLUMNS} FROM devices WHERE device_id = $1", device_id)


def health_json(health: Health) -> dict[str, Any]:
    out = asdict(health)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, timedelta):
            out[key] = value.total_seconds()
    out["stuck_for_s"] = out.pop("stuck_for")
    return out


async def health_of(db: Database, device_id: str, now: datetime) -> dict[str, Any]:
    [health] = await device_health(db, now, device_ids=[device_id])
    return health_json(health)
