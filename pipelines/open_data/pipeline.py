"""Open damp statistics as weekly snapshots: computed once after each calendar week, stored, served.

A period is a calendar week, Monday 00:00 UTC to the next. After it ends, each household
counts with its worst box's latest assessment of that week, in its area
(`damp_home_settings.area`), if it was assessed during the week and already before it
began: a home installed during a week first counts in the week after. rules.disclosure
then decides who each area counts (members change only in batches) and what is published.
A snapshot is written once, in one transaction, and never changed (migration 0020); the
SQL is the store's (pipelines.open_data.store).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from cityops.storage import Database
from cityops.storage.database import Connection
from pipelines.open_data import store
from rules.damp.council import HomeRisk, rank_homes
from rules.damp.risk import LEVELS, UNKNOWN
from rules.disclosure import Member, Policy, Release, Status, snapshot

log = logging.getLogger("pipelines.open_data.pipeline")

WEEK = timedelta(days=7)
POLICY = Policy()
CATEGORIES = (*LEVELS, UNKNOWN)
SERIOUS = ("high", "severe")
NO_AREA = "unknown area"


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the calendar week holding `moment`."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def release_row(release: Release) -> dict[str, Any]:
    """A flat row as published (JSON and CSV): None where withheld or suppressed."""
    return {"area": release.area, "status": release.status.value, "homes": release.total,
            **{f"homes_{c}": release.cells.get(c) for c in CATEGORIES},
            "share_high_or_severe": release.share(SERIOUS)}


COLUMNS = tuple(release_row(Release("", Status.WITHHELD, None)))

def _worst(rows: list[asyncpg.Record]) -> dict[str, tuple[Member, bool]]:
    """Each household's worst box as a Member, and whether it was assessed before the period."""
    worst: dict[str, HomeRisk] = {}
    before: dict[str, bool] = {}
    for r in rows:
        home = HomeRisk(r["household_id"], r["area"], r["level"], float(r["mould_index"]), int(r["damp_hours_7d"]))
        current = worst.get(home.household_id)
        if current is None or rank_homes([home, current])[0].home is home:
            worst[home.household_id] = home
        before[home.household_id] = before.get(home.household_id, False) or bool(r["before"])
    return {h: (Member(h, home.area or NO_AREA, home.level), before[h]) for h, home in worst.items()}


@dataclass(frozen=True)
class Published:
    period_start: datetime
    areas: int


async def _publish(conn: Connection, start: datetime, policy: Policy) -> Published | None:
    end = start + WEEK
    if not await store.claim_period(conn, start, end, policy.as_dict()):
        return None  # another runner published it
    homes = _worst(await store.week_assessments(conn, start, end, NO_AREA))
    current = [m for m, before in homes.values() if before]
    previous = await store.previous_members(conn, start)
    gone = sorted({i for ids in (previous or {}).values() for i in ids} - set(homes))
    known = {m.member_id: m for m, _ in _worst(await store.last_known(conn, gone, end, NO_AREA)).values()}
    releases, counted = snapshot(current, previous, CATEGORIES, policy, known)
    await store.save_releases(conn, start, [(r.area, release_row(r)) for r in releases], counted)
    return Published(start, len(releases))


async def publish_snapshots(db: Database, now: datetime | None = None, policy: Policy = POLICY) -> list[Published]:
    """Publish each calendar week that has ended and is not published yet, oldest first; the
    first time, only the last week that has ended (no history is made up)."""
    due = week_start(now or datetime.now(UTC))
    done: list[Published] = []
    async with store.session(db) as conn:
        last = await store.last_period(conn)
        start = due - WEEK if last is None else last + WEEK
        while start + WEEK <= due:
            async with conn.transaction():
                published = await _publish(conn, start, policy)
            if published is not None:
                log.info("open damp statistics for the week of %s: %d areas", start.date(), published.areas)
                done.append(published)
            start += WEEK
    return done
