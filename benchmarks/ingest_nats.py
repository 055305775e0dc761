"""`cityops bench ingest --transport nats`: the same cases as on Mosquitto (benchmarks/ingest.py),
through a 3-node NATS JetStream cluster started for each run (benchmarks/nats_cluster.py).

The publisher (benchmarks/ingest_nats_publisher.py) sends to the three nodes' MQTT listeners
at once, MQTT 3.1.1, QoS 1; the telemetry stream keeps every message on the three nodes; the
`cityops ingest` processes (CITYOPS_INGEST__TRANSPORT=nats) share the durable pull consumer.
Backlog: the messages wait in the stream while the consumers are away, then are drained.
Receipts are counted by a core NATS subscriber standing in for the devices.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg

from benchmarks.nats_cluster import PUBLISHER, BenchCluster, bench_cluster
from cityops.nats_cluster import jetstream
from cityops.nats_cluster.config import CONSUMER, STREAM, every
from cityops.settings import Settings
from cityops.storage import Database
from devices.dynsec import ADMIN
from ingest.process import start_consumer


@contextmanager
def _nats_env(cluster: BenchCluster) -> Iterator[None]:
    """The consumers' NATS settings, in the environment start_consumer passes on."""
    values = {"CITYOPS_NATS__URLS": ",".join(cluster.client_urls),
              "CITYOPS_NATS__PASSWORD": cluster.ingest_password}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _consumer(database_url: str, cluster: BenchCluster, client_id: str, group: str) -> subprocess.Popen[bytes]:
    with _nats_env(cluster):
        return start_consumer(database_url, cluster.mqtt_urls[0], client_id=client_id, group=group,
                              transport="nats", device_messages_per_s="1000000")


@asynccontextmanager
async def _receipts_counted(cluster: BenchCluster, on: bool) -> AsyncIterator[list[int]]:
    seen = [0]
    if not on:
        yield seen
        return
    nc = await jetstream.connect(cluster.client_urls, ADMIN, cluster.admin_password, name="bench-receipts")

    async def count(_msg: Msg) -> None:
        seen[0] += 1

    await nc.subscribe(every("receipts"), cb=count)
    try:
        yield seen
    finally:
        await nc.close()


async def _until_received(seen: list[int], timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while not seen[0]:  # noqa: ASYNC110 (a subscriber's callback counts)
                await asyncio.sleep(0.05)


async def _until_pulling(cluster: BenchCluster, consumers: int, timeout_s: float = 60.0) -> None:
    """Until the consumer has a pull request waiting from each process."""
    nc = await jetstream.connect(cluster.client_urls, ADMIN, cluster.admin_password, name="bench-watch")
    try:
        js = nc.jetstream(timeout=5)
        async with asyncio.timeout(timeout_s):
            while ((await js.consumer_info(STREAM, CONSUMER)).num_waiting or 0) < consumers:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def case(db: Database, settings: Settings, scratch: Path, prefix: str, args: argparse.Namespace,
               consumers: int, per_message: int, rate: float, receipts: bool = True, *,
               backlog: bool = False) -> dict[str, float]:
    """One run, as benchmarks.ingest._case, on a cluster of its own."""
    from benchmarks.ingest import _stop, _stored, _until_stored, case_result  # the shared measuring helpers

    messages = max(1, args.readings // per_message)
    expected = messages * per_message
    before = await _stored(db, prefix)
    since = await db.fetchval("SELECT now()")
    ids = [f"bench-{prefix}-{n}" for n in range(consumers)]
    out = b""
    folder = scratch / f"nats-{uuid.uuid4().hex[:6]}"
    async with bench_cluster(folder) as cluster, _receipts_counted(cluster, receipts) as receipts_seen:
        # the consumer is durable: what comes before a process does waits in the stream
        procs = [] if backlog else [_consumer(db.url, cluster, client_id, prefix) for client_id in ids]
        try:
            if not backlog:  # live: the publisher starts once every consumer pulls (as the MQTT case waits)
                await _until_pulling(cluster, consumers)
            publisher = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.ingest_nats_publisher", ",".join(cluster.mqtt_urls), PUBLISHER,
                prefix, str(args.devices), str(messages), str(per_message), str(rate), "2" if receipts else "1",
                stdout=asyncio.subprocess.PIPE, env={**os.environ, "BENCH_NATS_PASSWORD": cluster.publisher_password})
            out, _ = await publisher.communicate()
            if backlog:
                procs = [_consumer(db.url, cluster, client_id, prefix) for client_id in ids]
            await _until_stored(db, prefix, before + expected, timeout_s=180)
            if receipts:  # the devices' side: receipts delivered
                await _until_received(receipts_seen, timeout_s=10)
        finally:
            await _stop(procs)
    published: dict[str, Any] = json.loads(out) if out else {}
    return await case_result(db, prefix, since, before, expected, per_message, receipts_seen[0],
                             published.get("seconds", 0.0))
