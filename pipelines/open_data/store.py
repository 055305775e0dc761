"""The open damp statistics in the database: the one owner of their SQL.

    open_damp_periods    one row per published week, with the disclosure policy it used
    open_damp_areas      each area's release as published (a JSON row), never changed
    open_damp_members    who each area counted, so that members change only in batches

and the week's damp assessments it reads. A week is published in one transaction that first
claims its period row (a second publisher finds it taken and stops); migration 0020 keeps
published rows unchanged. The pipeline, the API's open data and `cityops rules areas` come here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from cityops.storage import Database
from cityops.storage.database import Connection, translate_query_error


@asynccontextmanager
async def session(db: Database) -> AsyncIterator[Connection]:
    """One connection for a publishing pass; database errors come out as StorageError."""
    try:
        async with db.pool.acquire() as conn:
            yield conn
    except asyncpg.PostgresError as exc:
        raise translate_query_error(exc) from exc


async def last_period(conn: Connection) -> datetime | None:
    """The start of the latest published week."""
    last: datetime | None = await conn.fetchval("SELECT max(period_start) FROM open_damp_periods")
    return last


async def claim_period(conn: Connection, start: datetime, end: datetime, policy: Mapping[str, Any]) -> bool:
    """Claim the week [start, end) for publishing with this policy; False when it is published already."""
    inserted = await conn.fetchval(
        "INSERT INTO open_damp_periods (period_start, period_end, policy) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING period_start", start, end, json.dumps(dict(policy)))
    return inserted is not None


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


async def week_assessments(conn: Connection, start: datetime, end: datetime, no_area: str) -> list[asyncpg.Record]:
    """Each box's latest assessment in [start, end] that names a household, with its area (`no_area`
    when not set) and `before`: whether the household was assessed before the week began."""
    return await conn.fetch(_LATEST, start, end, no_area)


async def last_known(conn: Connection, household_ids: Sequence[str], end: datetime, no_area: str
                     ) -> list[asyncpg.Record]:
    """Each of these households' boxes' last assessment up to `end`, shaped as week_assessments'."""
    return await conn.fetch(_LAST_KNOWN, list(household_ids), end, no_area)


async def previous_members(conn: Connection, start: datetime) -> dict[str, frozenset[str]] | None:
    """Who each area counted in the last week published before `start`; None when there is none."""
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


async def save_releases(conn: Connection, start: datetime, releases: Iterable[tuple[str, Mapping[str, Any]]],
                        counted: Mapping[str, Iterable[str]]) -> None:
    """The week's published row per area, and who each area counted."""
    await conn.executemany("INSERT INTO open_damp_areas (period_start, area, release) VALUES ($1, $2, $3)",
                           [(start, area, json.dumps(row)) for area, row in releases])
    await conn.executemany("INSERT INTO open_damp_members (period_start, area, household_id) VALUES ($1, $2, $3)",
                           [(start, area, h) for area, ids in counted.items() for h in sorted(ids)])


# --- what is served ------------------------------------------------------------------------

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
