"""Alerts and the in-app feed.

    GET  /alerts?state=&severity=            staff: all; householders: their household's, opened
                                             during their open tenancy;
                                             crews: the rules about their work (roads, bins)
    GET  /alerts/{alert_id}                  the same visibility; otherwise 404
    POST /alerts/{alert_id}/acknowledge      staff; acknowledging twice changes nothing;
                                             a resolved alert is 409
    GET  /me/notifications?unread_only=      your in-app feed (from the alerts' notifications)
    POST /me/notifications/{id}/read         mark one read
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter

from alerts.errors import AlertNotFound, InvalidTransition
from alerts.store import acknowledge_alert
from ops_api.accounts import tenancies
from ops_api.accounts.roles import Role, User
from ops_api.deps import DB, CurrentUser, Staff
from ops_api.errors import Conflict, NotFound
from ops_api.queries import alerts as q
from ops_api.queries.scope import CREW_ALERT_RULES

router = APIRouter(tags=["alerts"])
StateFilter = Literal["active", "open", "acknowledged", "resolved", "all"]
STATES: dict[str, tuple[str, ...]] = {"active": ("open", "acknowledged"), "open": ("open",),
                                      "acknowledged": ("acknowledged",), "resolved": ("resolved",),
                                      "all": ("open", "acknowledged", "resolved")}


def _scope(user: User) -> tuple[str | None, Sequence[str] | None]:
    """(household, rules) a user's alerts are limited to; (None, None) for staff."""
    if user.is_staff:
        return None, None
    if user.role is Role.HOUSEHOLDER:
        return user.household_id, None
    return None, CREW_ALERT_RULES.get(user.role, ())


def _visible(user: User, alert: dict[str, Any]) -> bool:
    household, rules = _scope(user)
    if household is not None and alert["household_id"] != household:
        return False
    return rules is None or alert["rule"] in rules


async def _in_tenancy(db: DB, user: User, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A householder's alerts opened during their open tenancy (a previous tenant's are not theirs)."""
    if user.role is not Role.HOUSEHOLDER:
        return alerts
    tenancy = await tenancies.current(db, user)
    return [] if tenancy is None else [a for a in alerts
                                       if datetime.fromisoformat(str(a["opened_at"])) >= tenancy.starts_at]


@router.get("/alerts", summary="Alerts you may see, newest first (default: open and acknowledged)")
async def list_alerts(db: DB, user: CurrentUser, state: StateFilter = "active",
                      severity: Literal["info", "warning", "critical"] | None = None) -> list[dict[str, Any]]:
    household, rules = _scope(user)
    alerts = await q.list_alerts(db, states=STATES[state], severity=severity, household_id=household, rules=rules)
    return await _in_tenancy(db, user, alerts)


@router.get("/alerts/{alert_id}", summary="One alert")
async def show_alert(alert_id: int, db: DB, user: CurrentUser) -> dict[str, Any]:
    alert = await q.get_alert(db, alert_id)
    if not _visible(user, alert) or not await _in_tenancy(db, user, [alert]):
        raise NotFound(f"no alert {alert_id}")
    return alert


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge an alert: someone has it in hand")
async def acknowledge(alert_id: int, db: DB, user: Staff) -> dict[str, Any]:
    try:
        await acknowledge_alert(db, alert_id, user.username, datetime.now(UTC))
    except AlertNotFound as exc:
        raise NotFound(str(exc)) from None
    except InvalidTransition as exc:
        raise Conflict(str(exc), hint="a resolved alert needs no acknowledgement") from None
    return await q.get_alert(db, alert_id)


@router.get("/me/notifications", summary="Your in-app notifications, newest first")
async def my_notifications(db: DB, user: CurrentUser, unread_only: bool = False) -> dict[str, Any]:
    return await q.notifications(db, user.user_id, unread_only=unread_only)


@router.post("/me/notifications/{notification_id}/read", summary="Mark one of your notifications read")
async def read_notification(notification_id: int, db: DB, user: CurrentUser) -> dict[str, Any]:
    return await q.mark_read(db, user.user_id, notification_id, datetime.now(UTC))
