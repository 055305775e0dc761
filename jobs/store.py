"""The jobs in the database: the one owner of their SQL.

    jobs                  one row per job: kind, state (assigned -> started -> completed, or
                          cancelled), who (the assignee and the crew), what it points at (a
                          gritting run and plan, or a bin plan's truck)
    job_marks             the crews' marks on the stops (idempotent on the phone's mark_id)
    job_events            each job's history: assigned, reassigned, started, completed, cancelled
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
           "crew, created_at, started_at, completed_at, completed_by, note, skipped, cancelled_at, cancelled_by, "
           "cancel_reason")
OPEN = "state NOT IN ('completed', 'cancelled')"


async def user_role(db: Database, user_id: str) -> asyncpg.Record | None:
    """A user's role and whether they are disabled; None when there is no such user."""
    return await db.fetchrow("SELECT role, disabled FROM users WHERE user_id = $1", user_id)


async def insert(db: Database, values: dict[str, Any]) -> asyncpg.Record | None:
    """A new job and its `assigned` event; None when the one open job its route or truck may
    have exists already."""
    columns = list(values)
    try:
        return await db.pool.fetchrow(
            f"WITH j AS (INSERT INTO jobs ({', '.join(columns)}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) RETURNING {COLUMNS}), "
            "e AS (INSERT INTO job_events (job_id, at, by_user, what, to_user, members) SELECT job_id, created_at, "
            "assigned_by, 'assigned', assigned_to, assigned_to || crew FROM j) SELECT * FROM j", *values.values())
    except asyncpg.UniqueViolationError:
        return None


async def list_jobs(db: Database, *, member: str | None = None, state: str | None = None,
                    kind: str | None = None) -> list[asyncpg.Record]:
    """Open jobs first, newest first, at most 500; `member`: the assignee or one of the crew."""
    return await db.fetch(
        f"SELECT {COLUMNS} FROM jobs WHERE ($1::text IS NULL OR assigned_to = $1 OR $1 = ANY(crew)) "
        "AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR kind = $3) "
        f"ORDER BY NOT ({OPEN}), created_at DESC, job_id DESC LIMIT 500",
        member, state, kind)


async def get(db: Database, job_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM jobs WHERE job_id = $1", job_id)


async def lock(conn: Connection, job_id: int) -> asyncpg.Record | None:
    """The job, locked until the transaction ends (a start and a complete of the same job queue)."""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)


async def mark_started(conn: Connection, job_id: int, at: datetime, by: str) -> asyncpg.Record:
    row = await conn.fetchrow(f"UPDATE jobs SET state = 'started', started_at = $2 WHERE job_id = $1 "
                              f"RETURNING {COLUMNS}", job_id, at)
    assert row is not None
    await add_event(conn, job_id, at, by, "started")
    return row


async def mark_completed(conn: Connection, job_id: int, at: datetime, by: str, note: str, skipped: list[str]
                         ) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"UPDATE jobs SET state = 'completed', started_at = coalesce(started_at, $2), completed_at = $2, "
        f"completed_by = $3, note = $4, skipped = $5 WHERE job_id = $1 RETURNING {COLUMNS}",
        job_id, at, by, note, skipped)
    assert row is not None
    await add_event(conn, job_id, at, by, "completed")
    return row


async def mark_cancelled(conn: Connection, job_id: int, at: datetime, by: str, reason: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"UPDATE jobs SET state = 'cancelled', cancelled_at = $2, cancelled_by = $3, cancel_reason = $4 "
        f"WHERE job_id = $1 RETURNING {COLUMNS}", job_id, at, by, reason)
    assert row is not None
    await add_event(conn, job_id, at, by, "cancelled", reason=reason)
    return row


async def reassign(conn: Connection, job: asyncpg.Record, assigned_to: str, crew: Sequence[str], at: datetime,
                   by: str, reason: str) -> asyncpg.Record:
    row = await conn.fetchrow(f"UPDATE jobs SET assigned_to = $2, crew = $3 WHERE job_id = $1 RETURNING {COLUMNS}",
                              job["job_id"], assigned_to, list(crew))
    assert row is not None
    await add_event(conn, job["job_id"], at, by, "reassigned", reason=reason, from_user=job["assigned_to"],
                    to_user=assigned_to, members=[assigned_to, *crew])
    return row


async def add_event(conn: Connection, job_id: int, at: datetime, by: str | None, what: str, *,
                    reason: str | None = None, from_user: str | None = None, to_user: str | None = None,
                    members: Sequence[str] = ()) -> None:
    await conn.execute(
        "INSERT INTO job_events (job_id, at, by_user, what, reason, from_user, to_user, members) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", job_id, at, by, what, reason, from_user, to_user, list(members))


async def events(db: Database, job_id: int) -> list[asyncpg.Record]:
    """The job's history, oldest first."""
    return await db.fetch("SELECT at, by_user, what, reason, from_user, to_user, members FROM job_events "
                          "WHERE job_id = $1 ORDER BY at, event_id", job_id)


async def membership(conn: Connection | Database, job_id: int) -> list[tuple[datetime, frozenset[str]]]:
    """Who was on the job from when: (time, assignee and crew after) per assignment, oldest first."""
    rows = await conn.fetch("SELECT at, members FROM job_events WHERE job_id = $1 AND what IN "
                            "('assigned', 'reassigned') ORDER BY at, event_id", job_id)
    return [(r["at"], frozenset(r["members"])) for r in rows]


# --- the crews' marks ----------------------------------------------------------------------

MARK_COLUMNS = "job_id, mark_id::text AS mark_id, stop, status, reason, note, marked_at, marked_by, received"


async def marks(db: Connection | Database, job_ids: Sequence[int]) -> list[asyncpg.Record]:
    """The marks of these jobs, in order of receipt."""
    return await db.fetch(f"SELECT {MARK_COLUMNS} FROM job_marks WHERE job_id = ANY($1::bigint[]) ORDER BY received",
                          list(job_ids))


async def insert_marks(conn: Connection, job_id: int, rows: Sequence[tuple[str, str | None, str, str | None, str,
                                                                              datetime]],
                       received_at: datetime, by: str) -> set[str]:
    """Store (mark_id, stop, status, reason, note, marked_at) marks, in this order of receipt;
    the mark_ids stored now (one sent before is left as it is)."""
    if not rows:
        return set()
    columns = list(zip(*rows, strict=True))
    stored = await conn.fetch(
        "INSERT INTO job_marks (mark_id, job_id, stop, status, reason, note, marked_at, received_at, marked_by) "
        "SELECT m, $1, s, st, r, n, a, $8, $9 FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], "
        "$6::text[], $7::timestamptz[]) WITH ORDINALITY AS u (m, s, st, r, n, a, i) ORDER BY i "
        "ON CONFLICT (mark_id) DO NOTHING RETURNING mark_id::text", job_id, *[list(c) for c in columns],
        received_at, by)
    return {r["mark_id"] for r in stored}


async def bins_stops(db: Connection | Database, trucks: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[str]]:
    """Per (plan_id, truck), its bins in driving order (the jobs' stops)."""
    if not trucks:
        return {}
    rows = await db.fetch(
        "SELECT s.plan_id, s.truck, array_agg(s.device_id ORDER BY s.seq) AS bins FROM bin_plan_stops s "
        "JOIN unnest($1::bigint[], $2::int[]) AS t (plan_id, truck) USING (plan_id, truck) "
        "GROUP BY s.plan_id, s.truck", [p for p, _ in trucks], [t for _, t in trucks])
    return {(r["plan_id"], r["truck"]): list(r["bins"]) for r in rows}


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
    """Per route, its gritting job that is neither completed nor cancelled (job_id, state, assigned_to)."""
    rows = await db.fetch("SELECT route_id, job_id, state, assigned_to FROM jobs WHERE kind = 'gritting' "
                          f"AND {OPEN} AND route_id = ANY($1)", list(route_ids))
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
