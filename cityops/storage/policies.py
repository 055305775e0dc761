"""TimescaleDB compression and retention policies, kept in line with the settings.

The intervals are settings (CITYOPS_STORAGE__COMPRESS_AFTER, ..._RETAIN_FOR), not
migrations, so each `cityops db migrate` compares the jobs the server has with the
settings and replaces only those that differ. `retain_for` of zero keeps data forever.
"""

from __future__ import annotations

from datetime import timedelta

from cityops.settings import StorageSettings
from cityops.storage.database import Connection

HYPERTABLES = ("frog_readings", "road_readings", "bin_readings")

_CURRENT = """
SELECT (SELECT (config->>'compress_after')::interval FROM timescaledb_information.jobs
         WHERE proc_name = 'policy_compression' AND hypertable_name = $1) AS compress_after,
       (SELECT (config->>'drop_after')::interval FROM timescaledb_information.jobs
         WHERE proc_name = 'policy_retention' AND hypertable_name = $1) AS drop_after
"""


async def sync(conn: Connection, storage: StorageSettings) -> list[str]:
    """Make every hypertable's policies match the settings; say what changed."""
    changes: list[str] = []
    for table in HYPERTABLES:
        current = await conn.fetchrow(_CURRENT, table)
        assert current is not None
        if current["compress_after"] != storage.compress_after:
            async with conn.transaction():
                await conn.execute("SELECT remove_compression_policy($1::regclass, if_exists => true)", table)
                await conn.execute("SELECT add_compression_policy($1::regclass, $2::interval)",
                                   table, storage.compress_after)
            changes.append(f"{table}: compress after {_days(storage.compress_after)}")
        wanted = storage.retain_for if storage.retain_for > timedelta(0) else None
        if current["drop_after"] != wanted:
            async with conn.transaction():
                await conn.execute("SELECT remove_retention_policy($1::regclass, if_exists => true)", table)
                if wanted is not None:
                    await conn.execute("SELECT add_retention_policy($1::regclass, $2::interval)",
                                       table, wanted)
            changes.append(f"{table}: keep {_days(wanted) if wanted else 'forever'}")
    return changes


def _days(interval: timedelta) -> str:
    if interval % timedelta(days=1) == timedelta(0):
        return f"{interval.days} days"
    return str(interval)
