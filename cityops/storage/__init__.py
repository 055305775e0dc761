"""One storage API over TimescaleDB (production) and plain PostgreSQL (embedded, tests).

    Database            the asyncpg pool and the back end it found (database.py)
    migrate / status    versioned SQL migrations under an advisory lock (migrations.py)
    insert_readings     the batched, idempotent write path (readings.py)
    hourly_stats        hourly statistics per device, from the same view name on both
"""

from cityops.storage.database import Backend, Database, open_database
from cityops.storage.migrations import MigrationReport, MigrationStatus, migrate, status
from cityops.storage.readings import (
    READING_TABLES,
    HourlyStat,
    hourly_stats,
    insert_dead_letter,
    insert_readings,
)

__all__ = [
    "READING_TABLES",
    "Backend",
    "Database",
    "HourlyStat",
    "MigrationReport",
    "MigrationStatus",
    "hourly_stats",
    "insert_dead_letter",
    "insert_readings",
    "migrate",
    "open_database",
    "status",
]
