"""The damp tables in the database: the one owner of their SQL.

    damp_home_settings (read)          a home's fRsi, mould sensitivity class, fallback, area, landlord
    damp_mould_state                   each box's mould index carried hour by hour
    damp_assessments                   one assessment per box and hour the data runs to
    damp_diary                         the householder's activity diary

and what the damp rules read of the others: the frog boxes and fixed road sensors in the
registry, their hourly statistics (cityops.storage.hourly_stats) and 5-minute frog readings.
The pipeline, the API's reads (ops_api.queries.households) and the commands come here; no
other module writes damp_mould_state, damp_assessments or damp_diary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from cityops.storage import Database, HourlyStat, hourly_stats
from cityops.storage.database import translate_query_error
from rules.damp.risk import Assessment

# --- the boxes and their homes -------------------------------------------------------------

async def frog_boxes(db: Database) -> list[asyncpg.Record]:
    """Every active frog box with its place and its home's settings (None where not set)."""
    return await db.fetch(
        "SELECT d.device_id, d.household_id, d.lon, d.lat, s.f_rsi, s.sensitivity, s.outdoor_fallback_c "
        "FROM devices d LEFT JOIN damp_home_settings s ON s.household_id = d.household_id "
        "WHERE d.kind = 'frog' AND d.status = 'active' ORDER BY d.device_id")


async def household_box(db: Database, household_id: str) -> str | None:
    """The household's active frog box (the first by id when there are several)."""
    box: str | None = await db.fetchval(
        "SELECT device_id FROM devices WHERE household_id = $1 AND kind = 'frog' AND status = 'active' "
        "ORDER BY device_id LIMIT 1", household_id)
    return box


async def outdoor_sensors(db: Database) -> list[asyncpg.Record]:
    """The active fixed road sensors with a place (their air temperature is the outdoor one)."""
    return await db.fetch(
        "SELECT device_id, lon, lat FROM devices WHERE kind = 'road' AND status = 'active' AND NOT mobile "
        "AND lon IS NOT NULL AND lat IS NOT NULL ORDER BY device_id")


async def social_landlord(db: Database, household_id: str) -> bool:
    return bool(await db.fetchval("SELECT social_landlord FROM damp_home_settings WHERE household_id = $1",
                                  household_id))


# --- readings ------------------------------------------------------------------------------

async def hourly(db: Database, kind: str, start: datetime, end: datetime, device_ids: list[str]
                 ) -> list[HourlyStat]:
    """Hourly statistics of frog boxes or road sensors over [start, end) (cityops.storage)."""
    return await hourly_stats(db, kind, start, end, device_ids)


async def readings_after(db: Database, device_ids: list[str], after: datetime) -> dict[str, int]:
    """Per box, how many readings are stamped after `after` (clocks ahead)."""
    rows = await db.fetch("SELECT device_id, count(*) AS n FROM frog_readings WHERE ts > $1 "
                          "AND device_id = ANY($2) GROUP BY device_id", after, device_ids)
    return {r["device_id"]: r["n"] for r in rows}


async def frog_readings(db: Database, device_id: str, start: datetime, end: datetime) -> list[asyncpg.Record]:
    """A box's 5-minute readings over [start, end), oldest first."""
    return await db.fetch("SELECT ts, air_temp_c, rh_pct FROM frog_readings WHERE device_id = $1 "
                          "AND ts >= $2 AND ts < $3 ORDER BY ts", device_id, start, end)


# --- mould state and assessments -----------------------------------------------------------

async def mould_states(db: Database, device_ids: list[str]) -> dict[str, asyncpg.Record]:
    """Each box's stored mould state (mould_index, dry_hours, through_hour), by device id."""
    rows = await db.fetch("SELECT device_id, mould_index, dry_hours, through_hour FROM damp_mould_state "
                          "WHERE device_id = ANY($1)", device_ids)
    return {r["device_id"]: r for r in rows}


async def mould_index_at(db: Database, device_ids: list[str], at: datetime) -> dict[str, float]:
    """Each box's mould index in its last assessment at or before `at` (boxes without one left out)."""
    rows = await db.fetch("SELECT DISTINCT ON (device_id) device_id, mould_index FROM damp_assessments "
                          "WHERE device_id = ANY($1) AND data_until <= $2 "
                          "ORDER BY device_id, data_until DESC", device_ids, at)
    return {r["device_id"]: r["mould_index"] for r in rows}


_WRITE_ASSESSMENTS = """
INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d,
                              condensation_hours_7d, surface_rh_30d, surface_t_30d, reasons, changes, faults,
                              metrics)
SELECT d, $2, h, l, m, dh, ch, rh, t, r::jsonb, c::jsonb, f::jsonb, x::jsonb
FROM unnest($1::text[], $3::text[], $4::text[], $5::float8[], $6::int[], $7::int[], $8::real[], $9::real[],
            $10::text[], $11::text[], $12::text[], $13::text[]) AS u(d, h, l, m, dh, ch, rh, t, r, c, f, x)
ON CONFLICT (device_id, data_until) DO UPDATE SET
    computed_at = now(), level = excluded.level, mould_index = excluded.mould_index,
    damp_hours_7d = excluded.damp_hours_7d, condensation_hours_7d = excluded.condensation_hours_7d,
    surface_rh_30d = excluded.surface_rh_30d, surface_t_30d = excluded.surface_t_30d,
    reasons = excluded.reasons, changes = excluded.changes, faults = excluded.faults,
    metrics = excluded.metrics
"""

_WRITE_STATE = """
INSERT INTO damp_mould_state (device_id, mould_index, dry_hours, through_hour, sensitivity)
SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[], $4::timestamptz[], $5::text[])
ON CONFLICT (device_id) DO UPDATE SET mould_index = excluded.mould_index, dry_hours = excluded.dry_hours,
    through_hour = excluded.through_hour, sensitivity = excluded.sensitivity, updated_at = now()
"""


def _assessment_columns(assessments: Sequence[Assessment]) -> list[list[object]]:
    """level, mould index, the metrics columns and the JSON columns, in _WRITE_ASSESSMENTS order."""
    rows = [(a.level, a.mould_index, int(a.metrics["damp_hours_7d"] or 0),
             int(a.metrics["condensation_hours_7d"] or 0), a.metrics["surface_rh_30d"],
             a.metrics["surface_t_30d"], json.dumps(list(a.reasons)), json.dumps(list(a.changes)),
             json.dumps(list(a.faults)), json.dumps(a.metrics)) for a in assessments]
    return [list(column) for column in zip(*rows, strict=True)]


async def save_assessments(db: Database, device_ids: list[str], household_ids: list[str | None],
                           assessments: Sequence[Assessment], data_until: datetime, mould_index: list[float],
                           dry_hours: list[float], through_hour: datetime, sensitivities: list[str]) -> None:
    """One assessment per box as of `data_until` (rewritten when run again) and each box's mould
    state through `through_hour`, in one transaction."""
    try:
        async with db.pool.acquire() as conn, conn.transaction():
            await conn.execute(_WRITE_ASSESSMENTS, device_ids, data_until, household_ids,
                               *_assessment_columns(assessments))
            await conn.execute(_WRITE_STATE, device_ids, mould_index, dry_hours, [through_hour] * len(device_ids),
                               sensitivities)
    except asyncpg.PostgresError as exc:
        raise translate_query_error(exc) from exc


async def latest_assessments_with_area(db: Database) -> list[asyncpg.Record]:
    """Each box's latest assessment that names a household, with the home's area."""
    return await db.fetch(
        "SELECT DISTINCT ON (a.device_id) a.device_id, a.household_id, a.level, a.mould_index, a.damp_hours_7d, "
        "s.area FROM damp_assessments a LEFT JOIN damp_home_settings s ON s.household_id = a.household_id "
        "WHERE a.household_id IS NOT NULL ORDER BY a.device_id, a.data_until DESC")


async def latest_assessments(db: Database, household_id: str, device_ids: list[str],
                             not_before: datetime | None = None) -> list[asyncpg.Record]:
    """Each of the household's boxes' latest assessment (one index probe per box), only those
    whose data runs to `not_before` or later when it is given."""
    return await db.fetch(
        "SELECT a.* FROM unnest($1::text[]) AS d(id) CROSS JOIN LATERAL (SELECT device_id, data_until, level, "
        "mould_index, reasons, changes FROM damp_assessments WHERE device_id = d.id AND household_id = $2 "
        "AND ($3::timestamptz IS NULL OR data_until >= $3) ORDER BY data_until DESC LIMIT 1) a",
        device_ids, household_id, not_before)


# --- the diary -----------------------------------------------------------------------------

# An entry is a tenant's when it is dated and was written within their tenancy: a previous
# tenant's last entries (dated up to a few minutes ahead) are not. `since` None: all of them.
_VISIBLE = "household_id = $1 AND ($2::timestamptz IS NULL OR (ts >= $2 AND created_at >= $2))"


async def diary_entries(db: Database, household_id: str, start: datetime, end: datetime,
                        since: datetime | None = None) -> list[asyncpg.Record]:
    """The household's entries dated in [start, end) (those of the tenancy from `since`), newest first."""
    return await db.fetch(f"SELECT id, ts, activity, minutes, note FROM damp_diary WHERE {_VISIBLE} "
                          "AND ts >= $3 AND ts < $4 ORDER BY ts DESC, id DESC", household_id, since, start, end)


async def diary_activities(db: Database, household_id: str, start: datetime, end: datetime) -> list[asyncpg.Record]:
    """Every entry of the household dated in [start, end), oldest first (ts, activity, minutes)."""
    return await db.fetch("SELECT ts, activity, minutes FROM damp_diary WHERE household_id = $1 "
                          "AND ts >= $2 AND ts < $3 ORDER BY ts", household_id, start, end)


async def add_diary_entry(db: Database, household_id: str, at: datetime, activity: str, minutes: int | None,
                          note: str | None = None, membership_id: int | None = None) -> asyncpg.Record:
    row = await db.fetchrow("INSERT INTO damp_diary (household_id, ts, activity, minutes, note, membership_id) "
                            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, ts, activity, minutes, note",
                            household_id, at, activity, minutes, note, membership_id)
    assert row is not None
    return row


async def delete_diary_entry(db: Database, household_id: str, entry_id: int, since: datetime | None = None) -> bool:
    """Delete one entry (of the tenancy from `since`); False when there is no such entry."""
    status = await db.execute(f"DELETE FROM damp_diary WHERE {_VISIBLE} AND id = $3", household_id, since,
                              entry_id)
    return not status.endswith(" 0")
