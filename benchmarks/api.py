"""`cityops bench api`: the householder's page endpoints under a fixed request rate.

The API runs as `cityops api` would (uvicorn, one worker, in a child process) on the
configured database, migrated. The bench adds a household with a frog box holding 7 days
of 5-minute readings and a signed-in householder, plus `--households` others (a day of
hourly readings each) so that the registry is the size of a real pilot. Then an open-loop
load generator (benchmarks/loadgen.py) sends requests at a fixed rate, alternating
GET /households/me and GET /households/me/history?hours=24. Open loop:
request i is due at start + i/rate whether or not earlier ones have answered, and its
latency counts from when it was due, so a slow server cannot slow the load down and hide
its own queueing. Everything the bench wrote is deleted afterwards.

Judged against the ceiling in issue #9: p99 under 50 ms at 200 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import loadgen
from cityops.embedded.process import free_port, stop_process, wait_for_port
from cityops.errors import EmbeddedServiceError
from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import Database, migrate

CEILING_P99_MS = 50.0
CEILING_RATE = 200.0
PATHS = ("/households/me", "/households/me/history?hours=24")


def register_bench(which: argparse._SubParsersAction[Any]) -> None:
    bench = which.add_parser("api", help="API: householder current + 24 h history at a fixed request rate",
                             description="Start the API (one worker) and send an open-loop load of "
                                         "GET /households/me and /households/me/history?hours=24 as a "
                                         "signed-in householder; report requests/s and p50/p95/p99 latency.")
    bench.add_argument("--rate", type=float, default=CEILING_RATE, help="requests per second (default 200)")
    bench.add_argument("--seconds", type=float, default=20.0, help="how long to send (default 20)")
    bench.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring (default 2)")
    bench.add_argument("--households", type=int, default=10_000,
                       help="other households (a frog box, a day of hourly readings each) as background (10000)")
    bench.add_argument("--connections", type=int, default=64, help="most connections open at once (default 64)")
    bench.set_defaults(handler=run_bench)


# --- pure: the numbers -----------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    path: str
    latency_s: float        # from when the request was due to when its body was read
    ok: bool


@dataclass(frozen=True)
class Summary:
    requests: int
    errors: int
    elapsed_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def meets(self, p99_ms: float = CEILING_P99_MS, rate: float = CEILING_RATE) -> bool:
        return self.errors == 0 and self.p99_ms < p99_ms and self.rate >= rate * 0.98


def summarise(samples: Sequence[Sample], elapsed_s: float) -> Summary:
    """Latency percentiles over every request, errors included (a failed request is slow too)."""
    if not samples:
        return Summary(0, 0, elapsed_s, 0.0, 0.0, 0.0, 0.0)
    ms = np.array([s.latency_s for s in samples]) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return Summary(len(samples), sum(not s.ok for s in samples), elapsed_s, float(p50), float(p95), float(p99),
                   float(ms.max()))


def schedule(rate: float, seconds: float) -> list[float]:
    """When each request is due, in seconds from the start: evenly spaced at the rate."""
    return [i / rate for i in range(int(rate * seconds))]


# --- the API in a child process ----------------------------------------------------------------

@dataclass(frozen=True)
class RunningApi:
    url: str
    pid: int


def _start_child(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A child in its own session (Ctrl-C reaches only us) that gets SIGTERM if we die."""

    def die_with_parent() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=die_with_parent)


@asynccontextmanager
async def api_server(database_url: str, log_path: Path, *, env: dict[str, str] | None = None,
                     attempts: int = 3) -> AsyncIterator[RunningApi]:
    """`cityops api` (uvicorn, one worker) on this database in a child process, on a free port
    (another one if something takes it between choosing and binding). The URL goes to the child
    in its environment, not its command line, where `ps` would show a password."""
    child_env = {**os.environ, **(env or {}), "CITYOPS_DATABASE_URL": database_url}
    for attempt in range(1, attempts + 1):
        port = free_port()
        proc = _start_child([sys.executable, "-m", "cityops_cli", "api", "--host", "127.0.0.1", "--port", str(port)],
                            child_env, log_path)
        try:
            await wait_for_port(proc, port, name="the API", log_path=log_path, timeout_s=30)
        except EmbeddedServiceError as exc:   # its message ends with the log's last lines
            await stop_process(proc, timeout_s=10)
            if attempt < attempts and "already in use" in str(exc):
                continue
            raise
        break
    try:
        yield RunningApi(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        await stop_process(proc, timeout_s=10)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), or None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- data: a household with a week of readings ---------------------------------------------------

@dataclass(frozen=True)
class BenchData:
    run: str
    household_id: str
    devices: list[str]
    user_id: str
    token: str


def week_of_readings(device_id: str, end: datetime, days: int = 7, step_min: int = 5,
                     seed: int = 0) -> list[tuple[str, datetime, float, float]]:
    """Plausible indoor readings: a daily temperature swing, humidity rising when it is cold."""
    count = days * 24 * 60 // step_min
    rng = np.random.default_rng(seed)
    hours = np.arange(count) * step_min / 60.0
    temp = 18.5 + 2.5 * np.sin(2 * np.pi * (hours - 8) / 24) + rng.normal(0, 0.2, count)
    rh = np.clip(65 - 3 * (temp - 18.5) + rng.normal(0, 2, count), 20, 99)
    start = end - timedelta(minutes=step_min * count)
    return [(device_id, start + timedelta(minutes=step_min * (i + 1)), round(float(t), 2), round(float(h), 1))
            for i, (t, h) in enumerate(zip(temp, rh, strict=True))]


async def seed(db: Database, households: int) -> BenchData:
    """The benchmark household (a frog box with 7 days of 5-minute readings, a signed-in
    householder) and `households` others with a day of hourly readings each, so the
    registry and readings tables are the size of a real pilot rather than one row."""
    from ops_api.accounts.sessions import open_session
    from ops_api.accounts.store import create_user

    run = secrets.token_hex(4)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    devices = [f"bench-{run}-{i:05d}" for i in range(households + 1)]
    household_id = devices[0]
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO devices (device_id, kind, household_id) "
                           "SELECT d, 'frog', d FROM unnest($1::text[]) AS d", devices)
        await conn.copy_records_to_table("frog_readings", records=week_of_readings(household_id, end),
                                         columns=["device_id", "ts", "air_temp_c", "rh_pct"])
        await conn.execute(
            "INSERT INTO frog_readings (device_id, ts, air_temp_c, rh_pct) "
            "SELECT d, t, 18 + random() * 4, 50 + random() * 30 FROM unnest($1::text[]) AS d "
            "CROSS JOIN generate_series($2::timestamptz - interval '23 hours', $2, interval '1 hour') AS t",
            devices[1:], end)
    await db.execute("ANALYZE devices")
    await db.execute("ANALYZE frog_readings")
    user = await create_user(db, username=f"bench-{run}", password=None, role="householder",
                             household_id=household_id, display_name="Bench household",
                             member_since=end - timedelta(days=8))  # the week of readings is this tenant's
    return BenchData(run, household_id, devices, user.user_id, await open_session(db, user.user_id))


async def clean_up(db: Database, data: BenchData) -> None:
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM sessions WHERE user_id = $1", data.user_id)
        await conn.execute("DELETE FROM users WHERE user_id = $1", data.user_id)
        await conn.execute("DELETE FROM frog_readings WHERE device_id = ANY($1)", data.devices)
        await conn.execute("DELETE FROM devices WHERE device_id = ANY($1)", data.devices)
    # The next run's plans must not meet this run's dead rows: where autovacuum is off (as on
    # test servers) they pile up in the indexes and a range scan wades through all of them.
    await db.execute("VACUUM (ANALYZE) frog_readings, devices")


# --- the load ------------------------------------------------------------------------------------

async def open_loop(client: loadgen.Client, rate: float, seconds: float) -> tuple[list[Sample], float]:
    """Send requests at their due times, each in its own task; (samples, seconds taken)."""
    loop = asyncio.get_running_loop()

    async def one(path: str, due: float) -> Sample:
        try:
            ok = (await client.get(path)).status == 200
        except loadgen.LoadError:
            ok = False
        return Sample(path, loop.time() - due, ok)

    began = loop.time() + 0.01
    tasks = []
    for i, offset in enumerate(schedule(rate, seconds)):
        due = began + offset
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(PATHS[i % len(PATHS)], due)))
    samples = await asyncio.gather(*tasks)
    return list(samples), loop.time() - began


def _report(label: str, summary: Summary) -> None:
    print(f"{label:>26}: {summary.requests:6d} requests, {summary.rate:7.1f}/s, errors {summary.errors}, "
          f"p50 {summary.p50_ms:6.1f} ms, p95 {summary.p95_ms:6.1f} ms, p99 {summary.p99_ms:6.1f} ms, "
          f"max {summary.max_ms:6.1f} ms")


async def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.rate <= 0 or args.seconds <= 0 or args.households < 0 or args.warmup < 0 or args.connections < 1:
        print("error: --rate, --seconds and --connections must be positive; --warmup, --households not negative")
        return 2
    async with database_for(settings) as db:
        await migrate(db, settings.storage)
        backend = await db.backend()
        print(f"database: {redact_url(db.url)} ({backend.describe()})")
        began = time.perf_counter()
        data = await seed(db, args.households)
        print(f"seeded household {data.household_id} with 7 days of 5-minute readings and {args.households:,} "
              f"others with a day of hourly readings in {time.perf_counter() - began:.1f} s")
        try:
            with tempfile.TemporaryDirectory(prefix="cityops-bench-api-") as folder:
                log_path = Path(folder) / "api.log"
                async with api_server(db.url, log_path) as api:
                    print(f"API: {api.url} (cityops api, one uvicorn worker); load: {args.rate:g} requests/s "
                          f"for {args.seconds:g} s after {args.warmup:g} s warm-up, alternating {' and '.join(PATHS)}")
                    client = loadgen.Client(api.url, connections=args.connections,
                                            headers={"Authorization": f"Bearer {data.token}"})
                    try:
                        for path in PATHS:
                            check = await client.get(path)
                            if check.status != 200:
                                print(f"error: GET {path} answered {check.status}: {check.body[:300]!r}")
                                return 1
                        if args.warmup > 0:
                            await open_loop(client, args.rate, args.warmup)
                        cpu_before, own_before = cpu_seconds(api.pid), time.process_time()
                        samples, elapsed = await open_loop(client, args.rate, args.seconds)
                        cpu_after, own_cpu = cpu_seconds(api.pid), time.process_time() - own_before
                    finally:
                        await client.close()
        finally:
            await clean_up(db, data)
    overall = summarise(samples, elapsed)
    for path in PATHS:
        _report(f"GET {path}", summarise([s for s in samples if s.path == path], elapsed))
    _report("all", overall)
    if cpu_before is not None and cpu_after is not None:
        print(f"{'API process CPU':>26}: {100 * (cpu_after - cpu_before) / elapsed:.0f} % of one core "
              f"({1000 * (cpu_after - cpu_before) / max(overall.requests, 1):.1f} ms per request); "
              f"load generator {100 * own_cpu / elapsed:.0f} %; this machine has {os.cpu_count()} cores")
    verdict = "met" if overall.meets() else "NOT met"
    print(f"ceiling: p99 under {CEILING_P99_MS:g} ms at {CEILING_RATE:g} requests/s with no errors: {verdict} "
          f"(p99 {overall.p99_ms:.1f} ms at {overall.rate:.1f} requests/s, {overall.errors} errors)")
    return 0
