"""`cityops bench write`: how fast the storage write path takes readings on this database.

It writes synthetic frog readings for throwaway devices (ids `bench-...`) in batches
through `insert_readings`, then replays the same batches to time the duplicate path, and
deletes what it wrote. In the same run it measures two ceilings on a bare temporary
table keyed like the real one: COPY, and the same unnest insert without the real
table's extra index and defaults. The write path is judged against those.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import insert_readings, migrate
from cityops.storage.database import Connection


def register_bench(which: argparse._SubParsersAction[Any]) -> None:
    write = which.add_parser("write", help="storage write path: readings per second, new and duplicate")
    write.add_argument("--rows", type=int, default=200_000, help="readings to write (default 200000)")
    write.add_argument("--batch", type=int, default=5_000, help="readings per statement (default 5000)")
    write.set_defaults(handler=run_write)


def _batches(rows: int, batch: int) -> list[list[tuple[str, datetime, float, float]]]:
    run = uuid.uuid4().hex[:8]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    devices = [f"bench-{run}-{i:03d}" for i in range(100)]
    readings = [(devices[i % 100], start + timedelta(minutes=5 * (i // 100)), 18.0 + (i % 7) * 0.5,
                 55.0 + (i % 11)) for i in range(rows)]
    return [readings[i:i + batch] for i in range(0, rows, batch)]


async def run_write(args: argparse.Namespace, settings: Settings) -> int:
    if args.rows <= 0 or args.batch <= 0:
        print("error: --rows and --batch must be positive")
        return 2
    batches = _batches(args.rows, args.batch)
    async with database_for(settings) as db:
        await migrate(db, settings.storage)
        backend = await db.backend()
        print(f"database: {redact_url(db.url)} ({backend.describe()})")
        print(f"writing {args.rows} frog readings in batches of {args.batch}, one connection")
        async with db.pool.acquire() as conn:
            await _ceilings(conn, batches, args.rows)
        try:
            for label in ("new", "duplicate"):
                written = 0
                began = time.perf_counter()
                async with db.pool.acquire() as conn:
                    for batch in batches:
                        written += await insert_readings(conn, "frog", batch)
                elapsed = time.perf_counter() - began
                _report(f"write path, {label}", args.rows, elapsed, f"{written} rows were new")
        finally:
            await db.execute("DELETE FROM frog_readings WHERE device_id = ANY($1)",
                             sorted({row[0] for row in batches[0]}))
    return 0


def _report(label: str, rows: int, elapsed: float, note: str = "") -> None:
    print(f"{label:>28}: {rows / elapsed:10,.0f} readings/s  ({elapsed:.2f} s{', ' + note if note else ''})")


async def _ceilings(conn: Connection, batches: list[list[tuple[str, datetime, float, float]]],
                    rows: int) -> None:
    """What this server does at best with the same rows: COPY, and unnest into a bare table."""
    bare = ("CREATE TEMP TABLE bench_ceiling (device_id text, ts timestamptz, air_temp_c real, "
            "rh_pct real, PRIMARY KEY (device_id, ts))")
    columns = ["device_id", "ts", "air_temp_c", "rh_pct"]
    await conn.execute(bare)
    try:
        began = time.perf_counter()
        for batch in batches:
            await conn.copy_records_to_table("bench_ceiling", records=batch, columns=columns)
        _report("ceiling: COPY, bare table", rows, time.perf_counter() - began)
        await conn.execute("TRUNCATE bench_ceiling")
        insert = ("INSERT INTO bench_ceiling SELECT * FROM unnest($1::text[], $2::timestamptz[], "
                  "$3::real[], $4::real[]) ON CONFLICT DO NOTHING")
        began = time.perf_counter()
        for batch in batches:
            await conn.execute(insert, *[list(col) for col in zip(*batch, strict=True)])
        _report("ceiling: unnest, bare table", rows, time.perf_counter() - began)
    finally:
        await conn.execute("DROP TABLE bench_ceiling")
