"""Tenancies: which householder belongs to which household, from when to when.

A householder sees their household's data only while their membership is open, and only
from its start: readings, diary and reports before it are a previous tenant's. Memberships
start when the account is made (or joins a household) and end when an operator ends them,
when the user is moved to another household or role, or when a new-tenancy invitation for
the household is issued (invitations.py). Access is looked up on every request, so an
ended membership stops working at once, whatever sessions are open; ending one also turns
off the user's alert subscriptions for that household.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from cityops.storage import Database
from cityops.storage.database import Connection
from ops_api.accounts.roles import Role, User
from ops_api.errors import Conflict, InvalidRequest, NotFound

_COLUMNS = "membership_id, user_id, household_id, starts_at, ends_at, ended_by, end_reason"


@dataclass(frozen=True)
class Tenancy:
    """One membership: a user of a household over [starts_at, ends_at)."""

    membership_id: int
    user_id: str
    household_id: str
    starts_at: datetime
    ends_at: datetime | None = None
    ended_by: str | None = None
    end_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.ends_at is None

    def as_json(self) -> dict[str, Any]:
        return {"membership_id": self.membership_id, "user_id": self.user_id, "household_id": self.household_id,
                "starts_at": self.starts_at.isoformat(),
                "ends_at": self.ends_at.isoformat() if self.ends_at else None,
                "ended_by": self.ended_by, "end_reason": self.end_reason}


def _tenancy(row: asyncpg.Record) -> Tenancy:
    return Tenancy(**dict(row))


def check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidRequest("say why the membership ends (it is kept with it)", field="reason")
    return text[:500]


async def current(db: Database | Connection, user: User) -> Tenancy | None:
    """The user's open membership of their household, or None (staff, or an ended tenancy)."""
    if user.role is not Role.HOUSEHOLDER:
        return None
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM household_members WHERE user_id = $1 AND household_id = $2 "
                            "AND ends_at IS NULL", user.user_id, user.household_id)
    return None if row is None else _tenancy(row)


async def start(conn: Connection, user_id: str, household_id: str, *, since: datetime | None = None) -> Tenancy:
    """Open a membership (on a transaction that made or moved the user); `since` backdates it
    (the demo, a council that knows when the tenancy began), else it starts now."""
    row = await conn.fetchrow(
        f"INSERT INTO household_members (user_id, household_id, starts_at) VALUES ($1, $2, coalesce($3, now())) "
        f"RETURNING {_COLUMNS}", user_id, household_id, since)
    assert row is not None
    return _tenancy(row)


async def _close(conn: Connection, where: str, args: tuple[Any, ...], *, by: str | None, reason: str
                 ) -> list[Tenancy]:
    """End the open memberships matching `where` now, and their alert subscriptions there."""
    n = len(args)
    rows = await conn.fetch(
        f"UPDATE household_members SET ends_at = greatest(now(), starts_at), ended_by = ${n + 1}, "
        f"end_reason = ${n + 2} WHERE ends_at IS NULL AND {where} RETURNING {_COLUMNS}", *args, by, reason)
    ended = [_tenancy(r) for r in rows]
    for tenancy in ended:
        await conn.execute("UPDATE alert_subscriptions SET enabled = false WHERE user_id = $1 AND household_id = $2",
                           tenancy.user_id, tenancy.household_id)
    return ended


async def end_for_user(conn: Connection, user_id: str, *, by: str | None, reason: str) -> list[Tenancy]:
    return await _close(conn, "user_id = $1", (user_id,), by=by, reason=reason)


async def end_for_household(conn: Connection, household_id: str, *, by: str | None, reason: str) -> list[Tenancy]:
    """A new tenancy begins: every current member of the household leaves it."""
    return await _close(conn, "household_id = $1", (household_id,), by=by, reason=reason)


async def end(db: Database, user_id: str, *, by: str | None, reason: str | None) -> Tenancy:
    """An operator ends a user's membership, with a reason; 409 when none is open."""
    text = check_reason(reason)
    async with db.transaction() as conn:
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1)", user_id):
            raise NotFound(f"no user {user_id!r}")
        ended = await end_for_user(conn, user_id, by=by, reason=text)
    if not ended:
        raise Conflict("this user has no current tenancy", hint="`cityops user tenancies` lists memberships")
    return ended[0]


async def listing(db: Database, *, household_id: str | None = None, user_id: str | None = None) -> list[Tenancy]:
    """Memberships, newest first, of a household and/or a user."""
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM household_members WHERE ($1::text IS NULL OR household_id = $1) "
                          "AND ($2::text IS NULL OR user_id = $2) ORDER BY starts_at DESC, membership_id DESC",
                          household_id, user_id)
    return [_tenancy(r) for r in rows]
