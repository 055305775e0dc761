"""Alerts as each role may see them, acknowledging, and a user's in-app feed (notifications)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cityops.storage import Database
from ops_api.errors import NotFound
from ops_api.queries.gritting import plain

_COLUMNS = ("alert_id, rule, cause, severity, state, title, detail, device_id, household_id, area, route_id, value, "
            "opened_at, last_firing_at, acknowledged_at, acknowledged_by, resolved_at, escalation_level, members")


def _alert(row: Any) -> dict[str, Any]:
    """An alert as JSON; `members` (a grouped alert's road segments or bins) parsed."""
    out = plain(row)
    out["members"] = json.loads(out["members"]) if isinstance(out["members"], str) else out["members"]
    return out


async def list_alerts(db: Database, *, states: Sequence[str], severity: str | None = None,
                      household_id: str | None = None, rules: Sequence[str] | None = None,
                      limit: int = 200) -> list[dict[str, Any]]:
    """Alerts newest first, filtered by state, severity, one household and the rules a role may see."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM alerts WHERE state = ANY($1) AND ($2::text IS NULL OR severity = $2) "
        "AND ($3::text IS NULL OR household_id = $3) AND ($4::text[] IS NULL OR rule = ANY($4)) "
        "ORDER BY opened_at DESC, alert_id DESC LIMIT $5",
        list(states), severity, household_id, list(rules) if rules is not None else None, limit)
    return [_alert(r) for r in rows]


async def get_alert(db: Database, alert_id: int) -> dict[str, Any]:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM alerts WHERE alert_id = $1", alert_id)
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    return _alert(row)


async def notifications(db: Database, user_id: str, *, unread_only: bool = False, limit: int = 100
                        ) -> dict[str, Any]:
    rows = await db.fetch(
        "SELECT notification_id, alert_id, severity, title, body, created_at, read_at FROM notifications "
        "WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL) ORDER BY created_at DESC, notification_id DESC LIMIT $3",
        user_id, unread_only, limit)
    unread = await db.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", user_id)
    return {"unread": int(unread), "notifications": [plain(r) for r in rows]}


async def mark_read(db: Database, user_id: str, notification_id: int, now: datetime) -> dict[str, Any]:
    """Mark one of the user's notifications read (again: it keeps the first time)."""
    row = await db.fetchrow(
        "UPDATE notifications SET read_at = coalesce(read_at, $3) WHERE notification_id = $1 AND user_id = $2 "
        "RETURNING notification_id, alert_id, severity, title, body, created_at, read_at",
        notification_id, user_id, now)
    if row is None:
        raise NotFound(f"no notification {notification_id}")
    return plain(row)
