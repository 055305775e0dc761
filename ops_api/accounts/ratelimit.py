"""The login limit, kept in the database so every API process agrees.

An attempt is *reserved* before its password is hashed: under transaction-scoped advisory
locks on its username and its client key, the recent failures are counted, and if the
attempt may go ahead it is written down as a failure at once. Only then is argon2 run;
a success turns the row into one. So a burst of parallel guesses cannot pass the count
(each sees the ones before it), and a refused attempt costs no hashing.

- per username: `per_username` failures in the window are free; then each attempt must wait
  `delay`, doubling per further failure, never more than `max_delay`, after the latest
  failure. A delay, not a lockout: whoever holds the password gets in within `max_delay` of
  the last guess, and a client key that signed in as this user within `known_for` skips
  the delay altogether (only its own limit applies).
- per client key (an IPv4 address or an IPv6 /64, see ops_api.clientinfo): `per_client`
  failures in the window, then 429 until the oldest leaves it.

Refused attempts are not recorded, so hammering does not lengthen anyone's wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from cityops.storage import Database
from ops_api.errors import TooManyRequests

# Times here are clock_timestamp(), not now(): now() is when a transaction began, which may be
# before a row that the lock's previous holder wrote.
# Advisory lock namespaces (pg_advisory_xact_lock(int, int)): usernames and client keys.
_USER_LOCKS, _CLIENT_LOCKS = 18_001, 18_002


@dataclass(frozen=True)
class LoginLimits:
    per_username: int = 5
    per_client: int = 20
    window: timedelta = timedelta(minutes=15)
    delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(minutes=5)
    known_for: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if self.per_username < 1 or self.per_client < 1 or self.delay > self.max_delay:
            raise ValueError("login limits: at least one free attempt each, and delay <= max_delay")

    def wait_after(self, failures: int) -> float:
        """Seconds an attempt must wait after the latest failure, with this many in the window."""
        if failures < self.per_username:
            return 0.0
        doublings = min(failures - self.per_username, 30)
        return min(self.delay.total_seconds() * 2 ** doublings, self.max_delay.total_seconds())


@dataclass(frozen=True)
class Attempt:
    """A reserved login attempt: finish it with `finish_attempt` once the password is checked."""
    attempt_id: int
    username: str
    client: str


_COUNTS = """
WITH failed AS (SELECT at, username = $1 AS by_name, client = $2 AS by_client FROM login_attempts
                WHERE (username = $1 OR client = $2) AND NOT succeeded AND at > clock_timestamp() - $3::interval),
     addr AS (SELECT at FROM failed WHERE by_client ORDER BY at DESC LIMIT $4)
SELECT (SELECT count(*) FROM failed WHERE by_name) AS name_failures,
       extract(epoch FROM clock_timestamp() - (SELECT max(at) FROM failed WHERE by_name)) AS since_name_failure,
       (SELECT count(*) FROM addr) AS client_failures,
       extract(epoch FROM (SELECT min(at) FROM addr) + $3::interval - clock_timestamp()) AS client_wait,
       EXISTS (SELECT 1 FROM login_attempts WHERE username = $1 AND client = $2 AND succeeded
               AND at > clock_timestamp() - $5::interval) AS known
"""


async def reserve_attempt(db: Database, username: str, client: str, limits: LoginLimits) -> Attempt:
    """Reserve one attempt for this username from this client key, or raise TooManyRequests."""
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _USER_LOCKS, username)
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _CLIENT_LOCKS, client)
        row = await conn.fetchrow(_COUNTS, username, client, limits.window, limits.per_client, limits.known_for)
        assert row is not None
        minutes = round(limits.window.total_seconds() / 60)
        if row["client_failures"] >= limits.per_client:
            raise TooManyRequests(f"too many failed logins from your address in the last {minutes} minutes",
                                  retry_after_s=math.ceil(float(row["client_wait"])))
        wait = 0.0 if row["known"] else limits.wait_after(row["name_failures"])
        since = max(0.0, float(row["since_name_failure"] or 0))
        if wait and since < wait:
            raise TooManyRequests(f"too many failed logins for {username!r}: the next attempt may be made "
                                  f"{wait:.0f} s after the last one", retry_after_s=math.ceil(wait - since))
        attempt_id = await conn.fetchval(
            "INSERT INTO login_attempts (username, client, succeeded, at) VALUES ($1, $2, false, clock_timestamp()) "
            "RETURNING id",
            username, client)
    return Attempt(int(attempt_id), username, client)


async def finish_attempt(db: Database, attempt: Attempt, *, succeeded: bool) -> None:
    """A reserved attempt stays a failure unless it succeeded; a success forgets the username's failures."""
    if not succeeded:
        return
    async with db.transaction() as conn:
        await conn.execute("UPDATE login_attempts SET succeeded = true WHERE id = $1", attempt.attempt_id)
        await conn.execute("DELETE FROM login_attempts WHERE username = $1 AND NOT succeeded", attempt.username)


async def purge_attempts(db: Database, failures_older_than: timedelta = timedelta(days=1),
                         successes_older_than: timedelta = timedelta(days=30)) -> int:
    """Forget failures past any window, and successes once they no longer make a client known."""
    result = await db.execute(
        "DELETE FROM login_attempts WHERE at < now() - CASE WHEN succeeded THEN $2::interval ELSE $1::interval END",
        failures_older_than, successes_older_than)
    return int(result.split()[-1])
