"""Users in the database: create, find, list, update, disable.

Usernames are stored lower-case (`Alice` and `alice` are one account). A householder has a
household_id and nobody else does (the table checks it too). Disabling a user also closes
their sessions, so it takes effect on their next request. A householder's membership of their
household (tenancies.py) opens with the account and ends when they move household or role.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from cityops.storage import Database
from cityops.storage.database import Connection
from ops_api.accounts import tenancies
from ops_api.accounts.passwords import hash_password
from ops_api.accounts.roles import Role, User
from ops_api.errors import Conflict, InvalidRequest, NotFound

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
HOUSEHOLD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_COLUMNS = "user_id, username, role, household_id, display_name"


@dataclass(frozen=True)
class UserRecord:
    """A user as an administrator sees them."""

    user: User
    disabled: bool
    created_at: datetime
    created_by: str | None
    has_password: bool

    def as_json(self) -> dict[str, Any]:
        return {**self.user.as_json(), "disabled": self.disabled, "created_at": self.created_at.isoformat(),
                "created_by": self.created_by, "has_password": self.has_password}


def normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise InvalidRequest("2-64 characters: letters, digits and . _ @ - (starting with a letter or digit)",
                             field="username")
    return name


def parse_role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidRequest(f"{role!r} is not one of {', '.join(r.value for r in Role)}", field="role") from None


def check_household(role: Role, household_id: str | None) -> str | None:
    if role is Role.HOUSEHOLDER:
        if not household_id:
            raise InvalidRequest("a householder needs the household they live in", field="household_id")
        if not HOUSEHOLD_ID.match(household_id):
            raise InvalidRequest("letters, digits and . _ : - only, up to 64", field="household_id")
        return household_id
    if household_id:
        raise InvalidRequest(f"only a householder belongs to a household, not a {role.value}", field="household_id")
    return None


def user_from_row(row: asyncpg.Record) -> User:
    return User(user_id=row["user_id"], username=row["username"], role=Role(row["role"]),
                household_id=row["household_id"], display_name=row["display_name"])


@dataclass(frozen=True)
class NewUser:
    """A user checked and with the password hashed, ready to insert."""

    username: str
    role: Role
    household_id: str | None
    display_name: str
    password_hash: str | None
    created_by: str | None


async def prepare_user(*, username: str, password: str | None, role: Role | str, household_id: str | None = None,
                       display_name: str | None = None, created_by: str | None = None) -> NewUser:
    name = normalise_username(username)
    role = parse_role(role)
    household_id = check_household(role, household_id)
    password_hash = await hash_password(password) if password is not None else None
    return NewUser(name, role, household_id, (display_name or name).strip()[:200] or name, password_hash, created_by)


async def insert_user(conn: Connection, new: NewUser, *, member_since: datetime | None = None) -> User:
    """Insert on an open transaction; a taken username raises Conflict. A householder's
    membership starts with the account (or at `member_since`, when the council knows it)."""
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users (user_id, username, role, household_id, display_name, password_hash, created_by) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}",
            f"u_{secrets.token_hex(8)}", new.username, new.role.value, new.household_id, new.display_name,
            new.password_hash, new.created_by)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"username {new.username!r} is taken", hint="pick another username") from None
    assert row is not None
    user = user_from_row(row)
    if user.household_id is not None:
        await tenancies.start(conn, user.user_id, user.household_id, since=member_since)
    return user


async def create_user(db: Database, *, username: str, password: str | None, role: Role | str,
                      household_id: str | None = None, display_name: str | None = None,
                      created_by: str | None = None, member_since: datetime | None = None) -> User:
    """A new user. `password=None` makes an account that cannot sign in with a password
    (sessions can still be opened for it, as the tests do). A householder's tenancy starts now,
    or at `member_since`."""
    new = await prepare_user(username=username, password=password, role=role, household_id=household_id,
                             display_name=display_name, created_by=created_by)
    async with db.transaction() as conn:
        return await insert_user(conn, new, member_since=member_since)


async def get_user(db: Database, user_id: str) -> UserRecord:
    records = await list_users(db, user_ids=[user_id])
    if not records:
        raise NotFound(f"no user {user_id!r}")
    return records[0]


async def find_user(db: Database, username_or_id: str) -> UserRecord:
    """By user id or (case-insensitive) username."""
    row = await db.fetchrow("SELECT user_id FROM users WHERE user_id = $1 OR username = lower($1)", username_or_id)
    if row is None:
        raise NotFound(f"no user {username_or_id!r}", hint="`cityops user list` shows the users")
    return await get_user(db, row["user_id"])


async def list_users(db: Database, *, role: Role | None = None, household_id: str | None = None,
                     user_ids: list[str] | None = None, include_disabled: bool = True) -> list[UserRecord]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS}, disabled, created_at, created_by, password_hash IS NOT NULL AS has_password "
        "FROM users WHERE ($1::text IS NULL OR role = $1) AND ($2::text IS NULL OR household_id = $2) "
        "AND ($3::text[] IS NULL OR user_id = ANY($3)) AND ($4 OR NOT disabled) ORDER BY username",
        role.value if role else None, household_id, user_ids, include_disabled)
    return [UserRecord(user_from_row(r), r["disabled"], r["created_at"], r["created_by"], r["has_password"])
            for r in rows]


async def password_hash_of(db: Database, username: str) -> tuple[User, str | None] | None:
    """The enabled user with this username and their stored hash, for a login."""
    row = await db.fetchrow(f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = lower($1) "
                            "AND NOT disabled", username.strip())
    return None if row is None else (user_from_row(row), row["password_hash"])


async def update_user(db: Database, user_id: str, *, display_name: str | None = None, role: Role | str | None = None,
                      household_id: str | None = None, disabled: bool | None = None,
                      password: str | None = None, changed_by: str | None = None) -> UserRecord:
    """Change what is given; a new role is checked with the household as a whole. Disabling,
    a new role or a new password closes the user's sessions. A new household (or role) ends
    the user's membership and, for a householder, opens one in the new household from now."""
    current = (await get_user(db, user_id)).user
    new_role = parse_role(role) if role is not None else current.role
    new_household = household_id if household_id is not None else current.household_id
    if new_role is not Role.HOUSEHOLDER and role is not None and household_id is None:
        new_household = None  # a householder made staff leaves the household
    new_household = check_household(new_role, new_household)
    password_hash = await hash_password(password) if password is not None else None
    sign_out = bool(disabled) or new_role is not current.role or password is not None \
        or new_household != current.household_id
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE users SET display_name = coalesce($2, display_name), role = $3, household_id = $4, "
            "disabled = coalesce($5, disabled), password_hash = coalesce($6, password_hash) WHERE user_id = $1",
            user_id, display_name.strip()[:200] if display_name is not None else None, new_role.value,
            new_household, disabled, password_hash)
        if sign_out:
            await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
        if new_household != current.household_id:
            reason = f"moved to household {new_household}" if new_household else f"became {new_role.value}"
            await tenancies.end_for_user(conn, user_id, by=changed_by, reason=reason)
            if new_household is not None:
                await tenancies.start(conn, user_id, new_household)
    return await get_user(db, user_id)


async def disable_user(db: Database, user_id: str) -> UserRecord:
    return await update_user(db, user_id, disabled=True)


async def count_admins(db: Database) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled")
    return count
