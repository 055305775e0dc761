"""`cityops bench write`: how fast the storage write path takes readings on this database.

It writes synthetic frog readings for throwaway devices (ids `bench-...`) in batches
through `insert_readings`, then replays the same batches to time the duplicate path, and
deletes what it wrote. The ceiling to compare with is in DESIGN.md section 4.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import insert_readings, migrate


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="measure the platform's speed on this machine",
                                description="Benchmarks. Each prints its numbers and the settings used.")
    which = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
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
        try:
            for label in ("new", "duplicate"):
                written = 0
                began = time.perf_counter()
                async with db.pool.acquire() as conn:
                    for batch in batches:
                        written += await insert_readings(conn, "frog", batch)
                elapsed = time.perf_counter() - began
                print(f"{label:>9}: {args.rows / elapsed:10,.0f} readings/s "
                      f"({elapsed:.2f} s, {written} rows were new)")
        finally:
            await db.execute("DELETE FROM frog_readings WHERE device_id = ANY($1)",
                             sorted({row[0] for row in batches[0]}))
    return 0
