"""The jobs in the database: the one owner of their SQL.

    jobs                  one row per job: kind, state (assigned -> started -> completed), who,
                          what it points at (a gritting run and plan, or a bin plan's truck)
    bin_collections       a completed bins job's emptied bins (the bins pipeline reads them)
    gritting_treatments   a completed gritting job's route, segments and salt

and the users a job goes to (read). A job's state change and its feedback are written in one
transaction (the lifecycle holds it; the functions that take `conn` run inside it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from cityops.storage import Database
from cityops.storage.database import Connection

COLUMNS = ("job_id, kind, title, state, route_id, run_id, gritting_plan_id, plan_id, truck, assigned_to, assigned_by, "
           "created_at, started_at, completed_at, completed_by, note, skipped")


async def user_role(db: Database, user_id: str) -> asyncpg.Record | None:
    """A user's role and whether they are disabled; None when there is no such user."""
    return await db.fetchrow("SELECT role, disabled FROM users WHERE user_id = $1", user_id)


async def insert(db: Database, values: dict[str, Any]) -> asyncpg.Record | None:
    """A new job; None when the one open job its route or truck may have exists already."""
    columns = list(values)
    try:
        return await db.pool.fetchrow(
            f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})"
            f" RETURNING {COLUMNS}", *values.values())
    except asyncpg.UniqueViolationError:
        return None


async def list_jobs(db: Database, *, assigned_to: str | None = None, state: str | None = None,
                    kind: str | None = None) -> list[asyncpg.Record]:
    """Open jobs first, newest first, at most 500."""
    return await db.fetch(
        f"SELECT {COLUMNS} FROM jobs WHERE ($1::text IS NULL OR assigned_to = $1) AND ($2::text IS NULL OR state = $2) "
        "AND ($3::text IS NULL OR kind = $3) ORDER BY (state = 'completed'), created_at DESC, job_id DESC LIMIT 500",
        assigned_to, state, kind)


async def get(db: Database, job_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM jobs WHERE job_id = $1", job_id)


async def lock(conn: Connection, job_id: int) -> asyncpg.Record | None:
    """The job, locked until the transaction ends (a start and a complete of the same job queue)."""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)


async def mark_started(conn: Connection, job_id: int, at: datetime) -> asyncpg.Record:
    row = await conn.fetchrow(f"UPDATE jobs SET state = 'started', started_at = $2 WHERE job_id = $1 "
                              f"RETURNING {COLUMNS}", job_id, at)
    assert row is not None
    return row


async def mark_completed(conn: Connection, job_id: int, at: datetime, by: str, note: str, skipped: list[str]
                         ) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"UPDATE jobs SET state = 'completed', started_at = coalesce(started_at, $2), completed_at = $2, "
        f"completed_by = $3, note = $4, skipped = $5 WHERE job_id = $1 RETURNING {COLUMNS}",
        job_id, at, by, note, skipped)
    assert row is not None
    return row


async def record_collections(conn: Connection, device_ids: Sequence[str], at: datetime, job_id: int, by: str) -> None:
    """The bins a completed job emptied (a bin already recorded for the job is left as it is)."""
    await conn.execute(
        "INSERT INTO bin_collections (device_id, collected_at, job_id, recorded_by) "
        "SELECT d, $2, $3, $4 FROM unnest($1::text[]) AS d ON CONFLICT DO NOTHING", list(device_ids), at, job_id, by)


async def record_treatment(conn: Connection, route_id: str, at: datetime, job_id: int, run_id: int | None,
                           segments: list[str], salt_kg: float, by: str) -> None:
    await conn.execute(
        "INSERT INTO gritting_treatments (route_id, treated_at, job_id, run_id, segments, salt_kg, "
        "recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7)", route_id, at, job_id, run_id, segments, salt_kg, by)


# --- what the API and the demo ask of the jobs ---------------------------------------------

async def open_gritting_jobs(db: Database, route_ids: Sequence[str]) -> dict[str, asyncpg.Record]:
    """Per route, its gritting job that is not completed (job_id, state, assigned_to)."""
    rows = await db.fetch("SELECT route_id, job_id, state, assigned_to FROM jobs WHERE kind = 'gritting' "
                          "AND state <> 'completed' AND route_id = ANY($1)", list(route_ids))
    return {r["route_id"]: r for r in rows}


async def last_treatments(db: Database, route_ids: Sequence[str]) -> dict[str, asyncpg.Record]:
    """Per route, its latest recorded treatment (treated_at, job_id, salt_kg)."""
    rows = await db.fetch("SELECT DISTINCT ON (route_id) route_id, treated_at, job_id, salt_kg FROM "
                          "gritting_treatments WHERE route_id = ANY($1) ORDER BY route_id, treated_at DESC",
                          list(route_ids))
    return {r["route_id"]: r for r in rows}


async def unassigned_bin_plan(db: Database, depot_like: str) -> asyncpg.Record | None:
    """The newest collection plan (plan_id, shift_start) of a depot LIKE `depot_like` whose
    depot and shift have no job yet."""
    return await db.fetchrow(
        "SELECT p.plan_id, p.shift_start FROM bin_plans p WHERE p.depot_id LIKE $1 AND NOT EXISTS (SELECT 1 FROM "
        "jobs j JOIN bin_plans q ON q.plan_id = j.plan_id WHERE q.depot_id = p.depot_id AND "
        "q.shift_start = p.shift_start) ORDER BY p.plan_id DESC LIMIT 1", depot_like)
