"""Server-side sessions: an opaque random token for the client, its SHA-256 in the database.

A token leaked from a database backup is useless (only hashes are stored); closing a
session, disabling a user or changing their role or password takes effect at once. A
session has a fixed expiry; `last_seen_at` is refreshed at most once a minute, in the same
round trip as the lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cityops.storage import Database
from ops_api.accounts.roles import User
from ops_api.accounts.store import user_from_row

DEFAULT_TTL = timedelta(days=7)
MAX_TOKEN_LENGTH = 512  # longer is not one of ours: refused before hashing


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    user: User
    expires_at: datetime


async def open_session(db: Database, user_id: str, *, ttl: timedelta = DEFAULT_TTL) -> str:
    """A new session for the user; the token (shown to the client only, stored as a hash)."""
    token = new_token()
    await db.execute("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, now() + $3::interval)",
                     token_hash(token), user_id, ttl)
    return token


async def resolve_session(db: Database, token: str) -> Session | None:
    """The session's user, or None for an unknown, expired or disabled user's token."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = await db.fetchrow(
        "WITH touched AS (UPDATE sessions SET last_seen_at = now() WHERE token_hash = $1 AND expires_at > now() "
        "AND last_seen_at < now() - interval '1 minute') "
        "SELECT u.user_id, u.username, u.role, u.household_id, u.display_name, s.expires_at "
        "FROM sessions s JOIN users u USING (user_id) WHERE s.token_hash = $1 AND s.expires_at > now() "
        "AND NOT u.disabled", token_hash(token))
    return None if row is None else Session(user_from_row(row), row["expires_at"])


async def expires_at(db: Database, token: str) -> datetime | None:
    value: datetime | None = await db.fetchval("SELECT expires_at FROM sessions WHERE token_hash = $1",
                                               token_hash(token))
    return value


async def close_session(db: Database, token: str) -> bool:
    """Sign out this token; False when it was not open."""
    result = await db.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash(token))
    return result != "DELETE 0"


async def close_user_sessions(db: Database, user_id: str) -> int:
    result = await db.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
    return int(result.split()[-1])


async def purge_expired(db: Database) -> int:
    """Forget expired sessions (they are refused anyway); the number removed."""
    result = await db.execute("DELETE FROM sessions WHERE expires_at <= now()")
    return int(result.split()[-1])
