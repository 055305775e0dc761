"""Open damp statistics as weekly snapshots: computed once after each calendar week, stored, served.

A period is a calendar week, Monday 00:00 UTC to the next. After it ends, each household
counts with its worst box's latest assessment of that week, in its area
(`damp_home_settings.area`), if it was assessed during the week and already before it
began: a home installed during a week first counts in the week after. rules.disclosure
then decides who each area counts (members change only in batches) and what is published.
A snapshot is written once, in one transaction, and never changed (migration 0020).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from cityops.storage import Database
from cityops.storage.database import Connection, translate_query_error
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

_LATEST = (
    "SELECT DISTINCT ON (a.device_id) a.device_id, a.household_id, a.level, a.mould_index, a.damp_hours_7d, "
    "coalesce(s.area, $3) AS area, EXISTS (SELECT 1 FROM damp_assessments o WHERE o.household_id = a.household_id "
    "AND o.data_until < $1) AS before "
    "FROM damp_assessments a LEFT JOIN damp_home_settings s ON s.household_id = a.household_id "
    "WHERE a.household_id IS NOT NULL AND a.data_until >= $1 AND a.data_until <= $2 "
    "ORDER BY a.device_id, a.data_until DESC")
_LAST_KNOWN = (
    "SELECT DISTINCT ON (a.device_id) a.device_id, a.household_id, a.level, a.mould_index, a.damp_hours_7d, "
    "coalesce(s.area, $3) AS area, true AS before "
    "FROM damp_assessments a LEFT JOIN damp_home_settings s ON s.household_id = a.household_id "
    "WHERE a.household_id = ANY($1::text[]) AND a.data_until <= $2 ORDER BY a.device_id, a.data_until DESC")


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


async def _previous(conn: Connection, start: datetime) -> dict[str, frozenset[str]] | None:
    last = await conn.fetchval("SELECT max(period_start) FROM open_damp_periods WHERE period_start < $1", start)
    if last is None:
        return None
    counted: dict[str, set[str]] = {}
    for r in await conn.fetch("SELECT area, household_id FROM open_damp_members WHERE period_start = $1", last):
        counted.setdefault(r["area"], set()).add(r["household_id"])
    # areas that counted nobody were still there: an empty set, not "no previous snapshot"
    for r in await conn.fetch("SELECT area FROM open_damp_areas WHERE period_start = $1", last):
        counted.setdefault(r["area"], set())
    return {area: frozenset(ids) for area, ids in counted.items()}


async def _publish(conn: Connection, start: datetime, policy: Policy) -> Published | None:
    end = start + WEEK
    inserted = await conn.fetchval(
        "INSERT INTO open_damp_periods (period_start, period_end, policy) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING period_start", start, end, json.dumps(policy.as_dict()))
    if inserted is None:
        return None  # another runner published it
    homes = _worst(await conn.fetch(_LATEST, start, end, NO_AREA))
    current = [m for m, before in homes.values() if before]
    previous = await _previous(conn, start)
    gone = sorted({i for ids in (previous or {}).values() for i in ids} - set(homes))
    known = {m.member_id: m for m, _ in _worst(await conn.fetch(_LAST_KNOWN, gone, end, NO_AREA)).values()}
    releases, counted = snapshot(current, previous, CATEGORIES, policy, known)
    await conn.executemany("INSERT INTO open_damp_areas (period_start, area, release) VALUES ($1, $2, $3)",
                           [(start, r.area, json.dumps(release_row(r))) for r in releases])
    await conn.executemany("INSERT INTO open_damp_members (period_start, area, household_id) VALUES ($1, $2, $3)",
                           [(start, area, h) for area, ids in counted.items() for h in sorted(ids)])
    return Published(start, len(releases))


async def publish_snapshots(db: Database, now: datetime | None = None, policy: Policy = POLICY) -> list[Published]:
    """Publish each calendar week that has ended and is not published yet, oldest first; the
    first time, only the last week that has ended (no history is made up)."""
    due = week_start(now or datetime.now(UTC))
    done: list[Published] = []
    try:
        async with db.pool.acquire() as conn:
            last = await conn.fetchval("SELECT max(period_start) FROM open_damp_periods")
            start = due - WEEK if last is None else last + WEEK
            while start + WEEK <= due:
                async with conn.transaction():
                    published = await _publish(conn, start, policy)
                if published is not None:
                    log.info("open damp statistics for the week of %s: %d areas", start.date(), published.areas)
                    done.append(published)
                start += WEEK
    except asyncpg.PostgresError as exc:
        raise translate_query_error(exc) from exc
    return done


@dataclass(frozen=True)
class Snapshot:
    period_start: datetime
    period_end: datetime
    computed_at: datetime
    policy: dict[str, Any]
    rows: list[dict[str, Any]]


async def periods(db: Database) -> list[datetime]:
    """The published periods' starts, newest first."""
    return [r["period_start"] for r in await db.fetch(
        "SELECT period_start FROM open_damp_periods ORDER BY period_start DESC")]


async def load_snapshot(db: Database, period_start: datetime | None = None) -> Snapshot | None:
    """A published snapshot (default: the latest), exactly as stored; None when there is none."""
    period = await db.fetchrow(
        "SELECT period_start, period_end, computed_at, policy FROM open_damp_periods "
        "WHERE period_start = coalesce($1, (SELECT max(period_start) FROM open_damp_periods))", period_start)
    if period is None:
        return None
    rows = await db.fetch("SELECT release FROM open_damp_areas WHERE period_start = $1 ORDER BY area",
                          period["period_start"])
    return Snapshot(period["period_start"], period["period_end"], period["computed_at"],
                    json.loads(period["policy"]), [json.loads(r["release"]) for r in rows])
