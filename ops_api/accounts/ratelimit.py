"""The login limit, kept in the database so every API process agrees.

Failed logins are counted per username and per client address over a sliding window
(15 minutes by default): 5 failures for one username, or 20 from one address (a shared
office or phone network), and further attempts get 429 with Retry-After until the oldest
failure leaves the window. A successful login forgets that username's failures.
Attempts are checked before the password is, so a locked name costs no hashing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from cityops.storage import Database
from ops_api.errors import TooManyRequests


@dataclass(frozen=True)
class LoginLimits:
    per_username: int = 5
    per_client: int = 20
    window: timedelta = timedelta(minutes=15)


async def check_login_allowed(db: Database, username: str, client: str, limits: LoginLimits) -> None:
    """Raise TooManyRequests when this username or address has failed too often lately."""
    row = await db.fetchrow(
        "WITH failed AS (SELECT at, username = $1 AS by_name, client = $2 AS by_client FROM login_attempts "
        "                WHERE (username = $1 OR client = $2) AND NOT succeeded AND at > now() - $3::interval), "
        "     name AS (SELECT at FROM failed WHERE by_name ORDER BY at DESC LIMIT $4), "
        "     addr AS (SELECT at FROM failed WHERE by_client ORDER BY at DESC LIMIT $5) "
        "SELECT (SELECT count(*) FROM name) AS by_name, (SELECT count(*) FROM addr) AS by_client, "
        "       extract(epoch FROM (SELECT min(at) FROM name) + $3::interval - now()) AS name_wait, "
        "       extract(epoch FROM (SELECT min(at) FROM addr) + $3::interval - now()) AS client_wait",
        username, client, limits.window, limits.per_username, limits.per_client)
    assert row is not None
    minutes = round(limits.window.total_seconds() / 60)
    if row["by_name"] >= limits.per_username:
        raise TooManyRequests(f"too many failed logins for {username!r} in the last {minutes} minutes",
                              retry_after_s=math.ceil(float(row["name_wait"])))
    if row["by_client"] >= limits.per_client:
        raise TooManyRequests(f"too many failed logins from your address in the last {minutes} minutes",
                              retry_after_s=math.ceil(float(row["client_wait"])))


async def record_login(db: Database, username: str, client: str, *, succeeded: bool) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO login_attempts (username, client, succeeded) VALUES ($1, $2, $3)",
                           username, client, succeeded)
        if succeeded:
            await conn.execute("DELETE FROM login_attempts WHERE username = $1 AND NOT succeeded", username)


async def purge_attempts(db: Database, older_than: timedelta = timedelta(days=1)) -> int:
    result = await db.execute("DELETE FROM login_attempts WHERE at < now() - $1::interval", older_than)
    return int(result.split()[-1])
