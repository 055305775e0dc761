"""Which damp and mould cases and homes a user may work (the cases routes ask, the lifecycle filters).

Council officers (operators, admins) work every landlord's homes; a landlord officer only
their organisation's (users.landlord_id, looked up on every request, so a move takes effect
at once; one with none recorded sees nothing). Another landlord's case or home answers 404
worded exactly as a missing one (cases.lifecycle words both). And GET /cases/stats: how many
clocks were met on time per category and month, in the same scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cases import lifecycle, store
from cityops.storage import Database
from ops_api.accounts.roles import Role, User
from rules.cases.clocks import LONDON, Clock


@dataclass(frozen=True)
class CaseScope:
    """All landlords' cases, or one landlord's (None: none at all)."""

    all_landlords: bool
    landlord_id: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """The lifecycle's scoping arguments."""
        return {"all_landlords": self.all_landlords, "landlord_id": self.landlord_id}


async def case_scope(db: Database, user: User) -> CaseScope:
    if user.is_staff:
        return CaseScope(all_landlords=True)
    if user.role is Role.LANDLORD:
        return CaseScope(all_landlords=False, landlord_id=await store.user_landlord(db, user.user_id))
    return CaseScope(all_landlords=False)   # the routes' roles keep everyone else out before this


# --- GET /cases/stats: the clocks met on time per category and month -------------------------

DECIDED = {"met": "met_on_time", "met_late": "met_late", "overdue": "missed"}


def month_start(now: datetime, months: int) -> datetime:
    """The start (London time) of the month `months - 1` before now's: months=1 is this month."""
    local = now.astimezone(LONDON)
    index = local.year * 12 + local.month - 1 - (months - 1)
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=LONDON)


def clock_stats(clocks: Iterable[tuple[str, Clock]], since: datetime, now: datetime) -> list[dict[str, Any]]:
    """Per month and category (oldest month first): the clocks decided in it, met on time, met
    late and missed. A clock is decided in the London month it was met, or, unmet, in the month
    it fell due (missed); a clock still running is not counted yet."""
    counts: dict[tuple[str, str], dict[str, Any]] = {}
    for category, clock in clocks:
        outcome = DECIDED.get(clock.state)
        moment = clock.met_at or clock.due
        if outcome is None or moment is None or not since <= moment <= now:
            continue
        month = f"{moment.astimezone(LONDON):%Y-%m}"
        row = counts.setdefault((month, category), {"month": month, "category": category, "decided": 0,
                                                    "met_on_time": 0, "met_late": 0, "missed": 0, "by_clock": {}})
        row["decided"] += 1
        row[outcome] += 1
        per_clock = row["by_clock"].setdefault(clock.key, {"label": clock.label, "decided": 0, "met_on_time": 0,
                                                           "met_late": 0, "missed": 0})
        per_clock["decided"] += 1
        per_clock[outcome] += 1
    for row in counts.values():
        row["on_time_share"] = round(row["met_on_time"] / row["decided"], 3)
    return [counts[key] for key in sorted(counts)]


async def case_stats(db: Database, scope: CaseScope, now: datetime, months: int, due_soon: timedelta
                     ) -> dict[str, Any]:
    """GET /cases/stats: the clocks of every open or closed case in the scope, counted by clock_stats."""
    since = month_start(now, months)
    rows = await db.fetch(
        f"SELECT {store.CASE_COLUMNS} FROM {store.CASES} WHERE ($1 OR h.landlord_id = $2) "
        "AND c.state IN ('open', 'closed') AND (c.closed_at IS NULL OR c.closed_at >= $3)",
        scope.all_landlords, scope.landlord_id, since)
    milestones = await store.milestones(db, [r["case_id"] for r in rows])
    clocks = [(row["category"], clock) for row in rows
              for clock in lifecycle.clocks_of(row, milestones[row["case_id"]], now, due_soon)]
    return {"months": months, "since": since.isoformat(), "until": now.isoformat(),
            "rows": clock_stats(clocks, since, now)}
