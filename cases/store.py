"""The cases in the database: the one owner of their SQL.

    landlords     the landlord organisations (council, housing association, private)
    homes         a household id's landlord, label and whether it is social housing
    damp_cases    one row per case: state, category, awareness, vulnerability flags,
                  alternative accommodation, closure
    case_events   the one timeline; `milestone` marks the steps the clocks count
    case_photos   the householders' photos (the files are cases/photos.py's)

and what the sensor suggester reads (damp_assessments) and a user's landlord (users). The
functions that take `conn` run inside the lifecycle's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from cityops.storage import Database
from cityops.storage.database import Connection

if TYPE_CHECKING:
    from cases.photos import StoredPhoto

CASE_COLUMNS = ("c.case_id, c.household_id, c.state, c.category, c.category_reason, c.created_at, c.opened_at, "
                "c.aware_at, c.aware_how, c.opened_by, c.suggestion, c.vulnerabilities, c.vulnerability_note, "
                "c.vulnerabilities_by, c.alt_accommodation, c.alt_accommodation_at, c.alt_accommodation_note, "
                "c.closed_at, c.closed_by, c.closed_reason, h.landlord_id, h.label AS home_label, "
                "h.social_housing")
CASES = "damp_cases c JOIN homes h USING (household_id)"
ACTIVE = "('suggested', 'open')"
EVENT_COLUMNS = "event_id, case_id, kind, at, recorded_at, by_user, visible_to_tenant, milestone, summary, details"
PHOTO_COLUMNS = "photo_id, case_id, sha256, media_type, bytes, path, uploaded_by, uploaded_at"

DB = Database | Connection


# --- landlords and homes ---------------------------------------------------------------------

async def landlords(db: DB) -> list[asyncpg.Record]:
    return await db.fetch("SELECT landlord_id, name, kind, social, created_at FROM landlords ORDER BY name")


async def insert_landlord(db: DB, landlord_id: str, name: str, kind: str, social: bool) -> asyncpg.Record | None:
    """The new landlord; None when the id is taken."""
    return await db.fetchrow(
        "INSERT INTO landlords (landlord_id, name, kind, social) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING "
        "RETURNING landlord_id, name, kind, social, created_at", landlord_id, name, kind, social)


async def landlord_exists(db: DB, landlord_id: str) -> bool:
    return bool(await db.fetchval("SELECT EXISTS (SELECT 1 FROM landlords WHERE landlord_id = $1)", landlord_id))


async def user_landlord(db: DB, user_id: str) -> str | None:
    """A landlord officer's organisation (None: none recorded, or not a landlord officer)."""
    value: str | None = await db.fetchval("SELECT landlord_id FROM users WHERE user_id = $1", user_id)
    return value


async def set_user_landlord(conn: Connection, user_id: str, landlord_id: str) -> None:
    await conn.execute("UPDATE users SET landlord_id = $2 WHERE user_id = $1", user_id, landlord_id)


async def home(db: DB, household_id: str) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT household_id, landlord_id, label, social_housing, updated_at FROM homes "
                             "WHERE household_id = $1", household_id)


async def ensure_home(conn: DB, household_id: str) -> None:
    """A row for a household id first seen now (no landlord until an admin sets one)."""
    await conn.execute("INSERT INTO homes (household_id) VALUES ($1) ON CONFLICT DO NOTHING", household_id)


async def put_home(db: DB, household_id: str, landlord_id: str | None, label: str, social_housing: bool,
                   now: datetime) -> asyncpg.Record:
    row = await db.fetchrow(
        "INSERT INTO homes (household_id, landlord_id, label, social_housing, updated_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (household_id) DO UPDATE SET landlord_id = $2, label = $3, social_housing = $4, "
        "updated_at = $5 RETURNING household_id, landlord_id, label, social_housing, updated_at",
        household_id, landlord_id, label, social_housing, now)
    assert row is not None
    return row


# --- cases --------------------------------------------------------------------------------

async def insert_case(conn: Connection, values: dict[str, Any]) -> int | None:
    """A new case's id; None when the home already has a suggested or open one."""
    columns = list(values)
    try:
        case_id: int = await conn.fetchval(
            f"INSERT INTO damp_cases ({', '.join(columns)}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) RETURNING case_id", *values.values())
    except asyncpg.UniqueViolationError:
        return None
    return case_id


async def get_case(db: DB, case_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(f"SELECT {CASE_COLUMNS} FROM {CASES} WHERE c.case_id = $1", case_id)


async def lock_case(conn: Connection, case_id: int) -> asyncpg.Record | None:
    """The case, locked until the transaction ends (two officers' steps queue)."""
    return await conn.fetchrow(f"SELECT {CASE_COLUMNS} FROM {CASES} WHERE c.case_id = $1 FOR UPDATE OF c", case_id)


async def active_case(conn: DB, household_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    """The home's suggested or open case, if any."""
    return await conn.fetchrow(f"SELECT {CASE_COLUMNS} FROM {CASES} WHERE c.household_id = $1 AND c.state IN "
                               f"{ACTIVE}{' FOR UPDATE OF c' if lock else ''}", household_id)


async def latest_case(db: DB, household_id: str, states: Sequence[str], *, since: datetime | None
                      ) -> asyncpg.Record | None:
    """The home's open case in `states` first, else its newest one (created or still open from `since` on)."""
    return await db.fetchrow(
        f"SELECT {CASE_COLUMNS} FROM {CASES} WHERE c.household_id = $1 AND c.state = ANY($2::text[]) "
        "AND ($3::timestamptz IS NULL OR c.state = 'open' OR c.created_at >= $3 OR c.closed_at >= $3) "
        "ORDER BY c.state = 'open' DESC, c.created_at DESC, c.case_id DESC LIMIT 1", household_id, list(states), since)


async def update_case(conn: Connection, case_id: int, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(values, start=2))
    await conn.execute(f"UPDATE damp_cases SET {sets} WHERE case_id = $1", case_id, *values.values())


async def list_cases(db: DB, *, landlord_id: str | None, all_landlords: bool, state: str | None
                     ) -> list[asyncpg.Record]:
    """Cases (at most 500, newest first) of one landlord's homes, or of all when `all_landlords`."""
    return await db.fetch(
        f"SELECT {CASE_COLUMNS} FROM {CASES} WHERE ($1 OR h.landlord_id = $2) AND ($3::text IS NULL OR c.state = $3) "
        "ORDER BY c.created_at DESC, c.case_id DESC LIMIT 500", all_landlords, landlord_id, state)


# --- the timeline -------------------------------------------------------------------------

async def add_event(conn: DB, case_id: int, kind: str, at: datetime, by: str | None, summary: str, *,
                    visible_to_tenant: bool, milestone: str | None = None, details: dict[str, Any] | None = None,
                    recorded_at: datetime | None = None) -> int:
    event_id: int = await conn.fetchval(
        "INSERT INTO case_events (case_id, kind, at, recorded_at, by_user, visible_to_tenant, milestone, summary, "
        "details) VALUES ($1, $2, $3, coalesce($4, now()), $5, $6, $7, $8, $9::jsonb) RETURNING event_id",
        case_id, kind, at, recorded_at, by, visible_to_tenant, milestone, summary, json.dumps(details or {},
                                                                                              default=str))
    return event_id


async def events(db: DB, case_id: int, *, tenant_only: bool = False, since: datetime | None = None
                 ) -> list[asyncpg.Record]:
    """The timeline, oldest first; `tenant_only`: what the tenant may see, from `since` on."""
    return await db.fetch(
        f"SELECT {EVENT_COLUMNS} FROM case_events WHERE case_id = $1 AND (NOT $2 OR visible_to_tenant) "
        "AND ($3::timestamptz IS NULL OR at >= $3) ORDER BY at, event_id", case_id, tenant_only, since)


async def milestones(db: DB, case_ids: Sequence[int]) -> dict[int, dict[str, datetime]]:
    """Per case, the earliest time each milestone was reached (the awareness is the case's)."""
    rows = await db.fetch(
        "SELECT case_id, milestone, min(at) AS at FROM case_events WHERE case_id = ANY($1::bigint[]) "
        "AND milestone IS NOT NULL GROUP BY case_id, milestone", list(case_ids))
    found: dict[int, dict[str, datetime]] = {case_id: {} for case_id in case_ids}
    for r in rows:
        found[r["case_id"]][r["milestone"]] = r["at"]
    return found


# --- photos -------------------------------------------------------------------------------

async def insert_photos(conn: DB, case_id: int, photos: Sequence[StoredPhoto], by: str, now: datetime) -> list[int]:
    ids = []
    for photo in photos:
        ids.append(await conn.fetchval(
            "INSERT INTO case_photos (case_id, sha256, media_type, bytes, path, uploaded_by, uploaded_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING photo_id", case_id, photo.sha256, photo.media_type,
            photo.bytes, photo.path, by, now))
    return ids


async def photos(db: DB, case_id: int, *, since: datetime | None = None) -> list[asyncpg.Record]:
    return await db.fetch(f"SELECT {PHOTO_COLUMNS} FROM case_photos WHERE case_id = $1 AND "
                          "($2::timestamptz IS NULL OR uploaded_at >= $2) ORDER BY uploaded_at, photo_id",
                          case_id, since)


async def photo(db: DB, photo_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(f"SELECT {PHOTO_COLUMNS} FROM case_photos WHERE photo_id = $1", photo_id)


# --- what the sensor suggester reads ------------------------------------------------------

async def persistently_damp(db: DB, now: datetime, days: int) -> list[asyncpg.Record]:
    """Homes whose damp level was high or severe on each of the last `days` days (24-hour
    windows back from `now`) and whose latest assessment still is, with no suggested or open
    case and none dismissed or closed within those days: (household_id, latest_level,
    latest_at, worst_level)."""
    return await db.fetch(
        "WITH a AS (SELECT coalesce(a.household_id, d.household_id) AS household_id, a.data_until, a.level "
        "  FROM damp_assessments a JOIN devices d USING (device_id) "
        "  WHERE a.data_until > $1::timestamptz - $2::int * interval '1 day' AND a.data_until <= $1), "
        "per_day AS (SELECT household_id, floor(extract(epoch FROM $1::timestamptz - data_until) / 86400)::int AS day, "
        "  bool_or(level IN ('high', 'severe')) AS damp, bool_or(level = 'severe') AS severe "
        "  FROM a WHERE household_id IS NOT NULL GROUP BY 1, 2), "
        "latest AS (SELECT DISTINCT ON (household_id) household_id, level, data_until FROM a "
        "  WHERE household_id IS NOT NULL ORDER BY household_id, data_until DESC) "
        "SELECT p.household_id, l.level AS latest_level, l.data_until AS latest_at, "
        "  CASE WHEN bool_or(p.severe) THEN 'severe' ELSE 'high' END AS worst_level "
        "FROM per_day p JOIN latest l USING (household_id) "
        "WHERE l.level IN ('high', 'severe') AND NOT EXISTS (SELECT 1 FROM damp_cases c WHERE "
        "  c.household_id = p.household_id AND (c.state IN ('suggested', 'open') "
        "  OR c.closed_at > $1::timestamptz - $2::int * interval '1 day')) "
        "GROUP BY p.household_id, l.level, l.data_until HAVING count(*) FILTER (WHERE p.damp) = $2 "
        "ORDER BY p.household_id", now, days)
