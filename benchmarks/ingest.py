"""`cityops bench ingest`: readings/s committed and publish-to-commit latency, end to end.

For each case (1 or 2 consumers on a shared subscription; 1 or 50 readings per message)
a publisher process streams QoS 1 telemetry through a real Mosquitto started for the run,
`cityops ingest` processes consume it into the configured database, and the database
says what arrived: rows, lost (expected minus stored), duplicated (stored minus distinct),
and latency from `received_at - ts`. Each case runs three times: a backlog drained by the
consumers (their capacity: the publisher, a Python process too, would otherwise share the
two cores), live with the publisher flat out, and live at half the drained rate (latency).
The ceiling is the same rows written straight into the database in batches of 5,000,
measured in the same run. `--receipts both` runs each case with telemetry version 1 (no
receipts) and version 2 (a receipt per device per committed batch, delivered to a
subscriber standing in for the devices), to measure what receipts cost (issue 26).
`--transport nats` runs the same cases through a 3-node NATS JetStream cluster started for
each run (benchmarks/ingest_nats.py), `--transport both` each case on both, to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from benchmarks import nats_cluster
from benchmarks import recovery as bench_recovery
from cityops.embedded.broker import EmbeddedBroker
from cityops.embedded.process import free_port
from cityops.errors import ConfigError
from cityops.mqtt import MqttTarget
from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import Database, insert_readings, migrate
from contract.telemetry import TOPIC_ROOT
from ingest.process import start_consumer


def _consumer(database_url: str, broker_url: str, client_id: str, group: str) -> subprocess.Popen[bytes]:
    # simulated devices publish flat out (~70 messages/s each): the rate limit runs, but cannot bind
    return start_consumer(database_url, broker_url, client_id=client_id, group=group,
                          device_messages_per_s="1000000")


def _cases(text: str) -> list[tuple[int, int]]:
    try:
        cases = [(int(c), int(r)) for c, r in (item.lower().split("x") for item in text.split(","))]
    except ValueError:
        raise ConfigError(f"--cases {text!r}: expected items like 2x50 (consumers x readings per message)") from None
    if any(c < 1 or r < 1 for c, r in cases):
        raise ConfigError("--cases: consumers and readings per message must be at least 1")
    return cases


def register_bench(which: argparse._SubParsersAction[Any]) -> None:
    bench = which.add_parser("ingest", help="MQTT to database: readings/s, latency, loss, against the ceiling")
    bench.add_argument("--readings", type=int, default=100_000, help="readings per case (default 100000)")
    bench.add_argument("--devices", type=int, default=200, help="simulated devices (default 200)")
    bench.add_argument("--cases", default="1x1,1x50,2x1,2x50",
                       help="CONSUMERSxREADINGS_PER_MESSAGE, comma-separated (default all four)")
    bench.add_argument("--receipts", choices=("on", "off", "both"), default="on",
                       help="devices asking for receipts (telemetry v2, the default agent), not (v1), or each "
                            "case both ways in this run, to measure what receipts cost (default on)")
    bench.add_argument("--transport", choices=("mqtt", "nats", "both"), default="mqtt",
                       help="Mosquitto (default), a 3-node NATS JetStream cluster, or each case on both")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.set_defaults(handler=run_bench)
    bench_recovery.register_bench(which)


async def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    from benchmarks import ingest_nats

    transports = {"mqtt": ("mqtt",), "nats": ("nats",), "both": ("mqtt", "nats")}[args.transport]
    if "mqtt" in transports and shutil.which("mosquitto") is None:
        raise ConfigError("the ingest benchmark needs a `mosquitto` binary", hint="apt-get install mosquitto")
    if "nats" in transports:
        nats_cluster.nats_server()  # the binary, or a ConfigError saying how to get it
    run = uuid.uuid4().hex[:6]
    results: list[dict[str, Any]] = []
    async with database_for(settings) as db:
        await migrate(db, settings.storage)
        ceiling = await _ceiling(db, args.readings, run)
        if not args.json:
            print(f"database: {redact_url(db.url)}; {args.readings} readings per case, {args.devices} devices")
            print(f"ceiling (straight inserts, batches of 5000): {ceiling:,.0f} readings/s", flush=True)
        modes = {"on": (True,), "off": (False,), "both": (False, True)}[args.receipts]
        with tempfile.TemporaryDirectory() as scratch:
            runs_wanted = ((case, mode, transport) for case in _cases(args.cases) for mode in modes
                           for transport in transports)
            for (consumers, per_message), receipts, transport in runs_wanted:
                prefix = f"bench{run}-{transport}{consumers}c{per_message}r{'v2' if receipts else 'v1'}"
                await _register(db, prefix, args.devices)
                scratch_dir = Path(scratch)
                run_case = _case if transport == "mqtt" else ingest_nats.case
                try:
                    drain = await run_case(db, settings, scratch_dir, prefix, args, consumers, per_message, 0.0,
                                           receipts, backlog=True)
                    live = await run_case(db, settings, scratch_dir, prefix, args, consumers, per_message, 0.0,
                                          receipts)
                    half = await run_case(db, settings, scratch_dir, prefix, args, consumers, per_message,
                                          drain["messages_per_s"] / 2, receipts)
                finally:
                    await _cleanup(db, prefix)
                runs = (drain, live, half)
                row = {"transport": transport, "consumers": consumers, "readings_per_message": per_message,
                       "receipts": receipts,
                       "receipts_received": sum(r["receipts"] for r in runs),
                       "readings_per_s": drain["readings_per_s"], "messages_per_s": drain["messages_per_s"],
                       "of_ceiling": drain["readings_per_s"] / ceiling,
                       "live_readings_per_s": live["readings_per_s"], "live_p99_ms": live["p99_ms"],
                       "half_rate_msg_per_s": drain["messages_per_s"] / 2,
                       "half_rate_achieved_msg_per_s": half["messages_per_s"],
                       "p50_ms_at_half_rate": half["p50_ms"], "p99_ms_at_half_rate": half["p99_ms"],
                       "lost": sum(r["lost"] for r in runs), "duplicated": sum(r["duplicated"] for r in runs)}
                results.append(row)
                if not args.json:
                    _print_row(row)
    if args.json:
        print(json.dumps({"ceiling_readings_per_s": ceiling, "cases": results}, indent=2))
    return 0


def _print_row(row: dict[str, Any]) -> None:
    print(f"{row['transport']:>4}: {row['consumers']} consumer(s), {row['readings_per_message']:>2} readings/msg, "
          f"receipts {'on ' if row['receipts'] else 'off'}: "
          f"{row['readings_per_s']:>8,.0f} readings/s = {row['messages_per_s']:>6,.0f} msg/s "
          f"({row['of_ceiling']:>4.0%} of ceiling) | live with publisher: {row['live_readings_per_s']:>8,.0f} "
          f"readings/s | at {row['half_rate_achieved_msg_per_s']:,.0f} msg/s: p50 {row['p50_ms_at_half_rate']:.0f} ms, "
          f"p99 {row['p99_ms_at_half_rate']:.0f} ms | lost {row['lost']}, duplicated {row['duplicated']}",
          flush=True)


async def _ceiling(db: Database, readings: int, run: str) -> float:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    rows = [(f"ceil{run}-{i % 200:04d}", start + timedelta(seconds=i // 200), 20.0, 55.0) for i in range(readings)]
    began = time.perf_counter()
    async with db.pool.acquire() as conn:
        for i in range(0, readings, 5000):
            await insert_readings(conn, "frog", rows[i:i + 5000])
    elapsed = time.perf_counter() - began
    await db.execute("DELETE FROM frog_readings WHERE device_id LIKE $1", f"ceil{run}-%")
    return readings / elapsed


async def _register(db: Database, prefix: str, devices: int) -> None:
    await db.execute(
        "INSERT INTO devices (device_id, kind, registered_at) "
        "SELECT $1 || '-' || lpad(i::text, 4, '0'), 'frog', now() - interval '1 day' "
        "FROM generate_series(0, $2 - 1) AS i", prefix, devices)


async def _cleanup(db: Database, prefix: str) -> None:
    await db.execute("DELETE FROM frog_readings WHERE device_id LIKE $1", f"{prefix}-%")
    await db.execute("DELETE FROM devices WHERE device_id LIKE $1", f"{prefix}-%")


async def _case(db: Database, settings: Settings, scratch: Path, prefix: str, args: argparse.Namespace,
                consumers: int, per_message: int, rate: float, receipts: bool, *,
                backlog: bool = False) -> dict[str, float]:
    """One run. Live: consumers up, the publisher at `rate` messages/s (0: flat out). Backlog: the
    messages are queued at the broker while the consumers are away, then drained: the consumers'
    own capacity, without the publisher competing for the two cores. Rates come from the commit
    times in the database (first to last row of the run)."""
    messages = max(1, args.readings // per_message)
    expected = messages * per_message
    before = await _stored(db, prefix)
    since = await db.fetchval("SELECT now()")
    broker = EmbeddedBroker(scratch / f"broker-{uuid.uuid4().hex[:6]}", free_port(), "mosquitto")
    ids = [f"bench-{prefix}-{n}" for n in range(consumers)]
    out = b""
    async with broker, _receipts_counted(broker.url, receipts) as receipts_seen:
        procs = [_consumer(db.url, broker.url, client_id, prefix) for client_id in ids]
        try:
            await asyncio.sleep(1.5)  # connected and subscribed: the sessions exist from here on
            if backlog:
                await _stop(procs)
            publisher = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.ingest_publisher", broker.url, prefix, str(args.devices),
                str(messages), str(per_message), str(rate), "2" if receipts else "1", stdout=asyncio.subprocess.PIPE)
            out, _ = await publisher.communicate()
            if backlog:
                procs = [_consumer(db.url, broker.url, client_id, prefix) for client_id in ids]
            await _until_stored(db, prefix, before + expected, timeout_s=180)
            if receipts:  # the devices' side of the cost: receipts delivered
                await _until(lambda: receipts_seen[0] > 0, timeout_s=10)
        finally:
            await _stop(procs)
    published = json.loads(out) if out else {}
    return await case_result(db, prefix, since, before, expected, per_message, receipts_seen[0],
                             published.get("seconds", 0.0))


async def case_result(db: Database, prefix: str, since: datetime, before: int, expected: int, per_message: int,
                      receipts: int, publisher_seconds: float) -> dict[str, float]:
    """What a run came to, from the database: rates over the commit times, latency, loss, duplicates."""
    stored = await _stored(db, prefix) - before
    stats = await db.fetchrow(
        "SELECT count(*) - count(DISTINCT (device_id, ts)) AS duplicated, "
        "extract(epoch FROM max(received_at) - min(received_at)) AS span, "
        "percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts)) AS p "
        "FROM frog_readings WHERE device_id LIKE $1 AND received_at >= $2", f"{prefix}-%", since)
    assert stats is not None
    span = max(float(stats["span"] or 0.0), 1e-3)
    p50, p99 = stats["p"] or [0.0, 0.0]
    return {"readings_per_s": stored / span, "messages_per_s": stored / per_message / span,
            "p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "lost": expected - stored,
            "duplicated": int(stats["duplicated"]), "receipts": receipts,
            "publisher_seconds": publisher_seconds}


@asynccontextmanager
async def _receipts_counted(broker_url: str, on: bool) -> AsyncIterator[list[int]]:
    """The devices' end of the receipts: one subscriber to all of them, counting (in [0])."""
    seen = [0]
    if not on:
        yield seen
        return
    async with aiomqtt.Client(**MqttTarget.from_url(broker_url).client_kwargs()) as client:
        await client.subscribe(f"{TOPIC_ROOT}/+/receipts", qos=0)

        async def count() -> None:
            async for _ in client.messages:
                seen[0] += 1

        counting = asyncio.create_task(count())
        try:
            yield seen
        finally:
            counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counting


async def _until(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while not predicate() and time.perf_counter() < deadline:  # noqa: ASYNC110 (another task counts)
        await asyncio.sleep(0.05)


async def _stop(procs: list[Any]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        await asyncio.to_thread(proc.wait, 30)


async def _until_stored(db: Database, prefix: str, rows: int, timeout_s: float) -> None:
    """Poll the database until it holds `rows` of this case, or the time is up (the rest is lost)."""
    deadline = time.perf_counter() + timeout_s
    for _ in iter(lambda: time.perf_counter() < deadline, False):
        if await _stored(db, prefix) >= rows:
            return
        await asyncio.sleep(0.05)


async def _stored(db: Database, prefix: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM frog_readings WHERE device_id LIKE $1", f"{prefix}-%"))


