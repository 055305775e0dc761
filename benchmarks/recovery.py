"""`cityops bench recovery`: ingest killed and restarted while a backlog waits for it.

The scenario of issue 28, as an operator would run it: a real Mosquitto with the
project's embedded config (persistence on, its queue limits), one `mosquitto_pub -V
mqttv5 -q 1 -l` process per registered device (independent publishers, each with its own
connection and client id) sending single-reading telemetry lines as fast as the broker
takes them, and `cityops ingest` consumers as child processes. In the "kill" runs a
consumer gets SIGKILL every `--kill-every` seconds for the first `--kill-for` seconds and
is started again at once (with several consumers, one at a time, in turn).

Each configuration runs twice in the same invocation, without kills and with them, so the
kill run is judged against a drain time measured on the same machine under the same load.

What is counted, and where it comes from:
- accepted: PUBACKs with reason code 0 that the publishers printed (`mosquitto_pub -d`):
  what a device was told the platform had taken;
- stored: rows in frog_readings for the run's devices; lost = accepted - stored;
- duplicated: rows minus distinct (device_id, ts) (the table's key makes this 0 unless
  the key is broken; a replay shows in ingest's duplicates counter, not here);
- drain_s: from the first publisher's start to the sample that saw every accepted
  reading stored; longest_stall_s: the longest stretch between two samples (every
  `SAMPLE_S`) in which the stored count did not move, from the start until drained;
- restarts: for each kill, how long until the new process served its metrics (Python start-up,
  the database), until it was connected to the broker, and until the stored count rose above
  what it was at the kill (the resumed session's first commit): where a stall's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityops.embedded.broker import EmbeddedBroker
from cityops.embedded.process import free_port
from cityops.errors import ConfigError
from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import Database, migrate
from contract.telemetry import FrogBatch, FrogReading, encode_batch, telemetry_topic
from ingest.process import start_consumer

SAMPLE_S = 0.5
GOAL_DRAIN_FACTOR = 1.5  # the kill run drains within 1.5 x the no-kill run (issue 28)
GOAL_STALL_S = 15.0


@dataclass
class RunResult:
    consumers: int
    kills: int
    messages: int
    accepted: int = 0
    refused: int = 0  # PUBACKs with a failure or "no matching subscribers" code (kept by a device)
    stored: int = 0
    duplicated: int = 0
    dead_letters: int = 0
    publish_s: float = 0.0
    drain_s: float | None = None  # None: not drained before the time limit
    longest_stall_s: float = 0.0
    consumer_errors: list[str] = field(default_factory=list)
    restarts: list[Restart] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return max(0, self.accepted - self.stored)


@dataclass
class Restart:
    """Where a restart's time went, in seconds after the kill (sampled every SAMPLE_S; None: not seen
    before the next kill or the end): the new process serving metrics (imports, database), connected
    to the broker (CONNACK), and the run's stored count moving again."""
    killed_at_s: float  # after the start
    stored_at_kill: int  # the run's rows just after the kill: progress is a count above it
    metrics_s: float | None = None
    connected_s: float | None = None
    progress_s: float | None = None
    duplicates: int | None = None  # readings the new process found already stored, when rows moved again


@dataclass(frozen=True)
class Scenario:
    devices: int
    per_device: int
    consumers: int
    kill_every_s: float = 0.0  # 0: no kills
    kill_for_s: float = 60.0
    timeout_s: float = 600.0
    consumer_settings: dict[str, str] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return self.devices * self.per_device


def register_bench(which: argparse._SubParsersAction[Any]) -> None:
    bench = which.add_parser(
        "recovery", help="ingest SIGKILLed while a backlog waits: stored, duplicated, drain time, stalls",
        description="Independent mosquitto_pub publishers (one per device) and cityops ingest consumers "
                    "killed with SIGKILL and restarted at once, against the same without kills.")
    bench.add_argument("--devices", type=int, default=1000, help="publishers, one per device (default 1000)")
    bench.add_argument("--per-device", type=int, default=1000, help="single-reading messages each (default 1000)")
    bench.add_argument("--consumers", default="1,2", help="consumer counts to run, comma-separated (default 1,2)")
    bench.add_argument("--kill-every", type=float, default=10.0, help="seconds between kills (default 10)")
    bench.add_argument("--kill-for", type=float, default=60.0, help="kill during the first N seconds (default 60)")
    bench.add_argument("--timeout", type=float, default=600.0, help="give up on a run after N seconds")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.set_defaults(handler=run_bench)


async def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_pub") is None:
        raise ConfigError("the recovery benchmark needs `mosquitto` and `mosquitto_pub`",
                          hint="apt-get install mosquitto mosquitto-clients")
    try:
        counts = [int(c) for c in args.consumers.split(",")]
    except ValueError:
        raise ConfigError(f"--consumers {args.consumers!r}: expected numbers like 1,2") from None
    if args.devices < 1 or args.per_device < 1 or any(c < 1 for c in counts):
        raise ConfigError("--devices, --per-device and --consumers must be at least 1")
    rows: list[dict[str, Any]] = []
    async with database_for(settings) as db:
        await migrate(db, settings.storage)
        if not args.json:
            print(f"database: {redact_url(db.url)}; {args.devices} publishers x {args.per_device} messages; "
                  f"load before: {_load()}", flush=True)
        with tempfile.TemporaryDirectory(prefix="cityops-recovery-") as scratch:
            for consumers in counts:
                pair = {}
                for kill_every in (0.0, args.kill_every):
                    scenario = Scenario(args.devices, args.per_device, consumers, kill_every, args.kill_for,
                                        args.timeout)
                    result = await run_scenario(db, Path(scratch), scenario)
                    pair["kill" if kill_every else "baseline"] = result
                    if not args.json:
                        print(_line(result) + f" | load: {_load()}", flush=True)
                        for restart in result.restarts:
                            print("    " + _restart_line(restart), flush=True)
                        for line in result.consumer_errors:
                            if not line.split(" x ", 1)[-1].startswith("ingest: "):  # the start-up banner
                                print("    consumers' log: " + line, flush=True)
                rows.append(_verdict(pair["baseline"], pair["kill"]))
                if not args.json:
                    print(_verdict_line(rows[-1]), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0 if all(row["goal_met"] for row in rows) else 1


def _verdict(baseline: RunResult, kill: RunResult) -> dict[str, Any]:
    limit = baseline.drain_s * GOAL_DRAIN_FACTOR if baseline.drain_s else None
    met = (kill.drain_s is not None and limit is not None and kill.drain_s <= limit and kill.lost == 0
           and kill.duplicated == 0 and kill.longest_stall_s <= GOAL_STALL_S and baseline.lost == 0)
    return {"consumers": kill.consumers, "baseline": {**asdict(baseline), "lost": baseline.lost},
            "kill": {**asdict(kill), "lost": kill.lost}, "drain_limit_s": limit, "goal_met": met}


def _verdict_line(row: dict[str, Any]) -> str:
    kill, limit = row["kill"], row["drain_limit_s"]
    return (f"  {row['consumers']} consumer(s): {'GOAL MET' if row['goal_met'] else 'GOAL MISSED'} "
            f"(drained with kills in {_secs(kill['drain_s'])} against a limit of {_secs(limit)}; "
            f"longest stall {kill['longest_stall_s']:.1f} s against {GOAL_STALL_S:.0f} s)")


def _line(r: RunResult) -> str:
    return (f"{r.consumers} consumer(s), {r.kills:>2} kills: accepted {r.accepted:,} of {r.messages:,} "
            f"(refused {r.refused:,}), stored {r.stored:,}, lost {r.lost:,}, duplicated {r.duplicated}, "
            f"dead letters {r.dead_letters}; published in {r.publish_s:.0f} s, drained in {_secs(r.drain_s)}, "
            f"longest stall {r.longest_stall_s:.1f} s")


def _restart_line(r: Restart) -> str:
    return (f"killed at {r.killed_at_s:.1f} s: metrics up after {_secs(r.metrics_s)}, connected after "
            f"{_secs(r.connected_s)}, rows moving again after {_secs(r.progress_s)}"
            + (f" ({r.duplicates:,} readings found already stored by then)" if r.duplicates is not None else ""))


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f} (1/5 min, {os.cpu_count()} cores)"


# --- one run ----------------------------------------------------------------------------

async def run_scenario(db: Database, scratch: Path, scenario: Scenario) -> RunResult:
    """Run the scenario once against a broker of its own; the devices are registered for the run
    and removed (with their rows) afterwards."""
    run = f"rec{uuid.uuid4().hex[:6]}"
    folder = scratch / run
    folder.mkdir(parents=True)
    ids = [f"{run}-{i:04d}" for i in range(scenario.devices)]
    await db.execute(
        "INSERT INTO devices (device_id, kind, registered_at) "
        "SELECT unnest($1::text[]), 'frog', now() - interval '1 day'", ids)
    try:
        files = await asyncio.to_thread(_write_payloads, folder, ids, scenario.per_device)
        broker = EmbeddedBroker(folder / "broker", free_port(), "mosquitto")
        async with broker:
            return await _run(db, broker, folder, run, ids, files, scenario)
    finally:
        await db.execute("DELETE FROM frog_readings WHERE device_id LIKE $1", f"{run}-%")
        await db.execute("DELETE FROM dead_letters WHERE device_id LIKE $1", f"{run}-%")
        await db.execute("DELETE FROM devices WHERE device_id LIKE $1", f"{run}-%")


def _write_payloads(folder: Path, ids: list[str], per_device: int) -> list[Path]:
    """One file per device, one JSON message per line; timestamps one second apart, in the past."""
    start = datetime.now(UTC) - timedelta(seconds=per_device + 120)
    files = []
    for device in ids:
        path = folder / f"{device}.lines"
        lines = [encode_batch(FrogBatch(v=1, device_id=device, seq=n, fw="bench", readings=[
            FrogReading(ts=start + timedelta(seconds=n), air_temp_c=20.0, rh_pct=55.0)])) for n in range(per_device)]
        path.write_bytes(b"\n".join(lines) + b"\n")
        files.append(path)
    return files


class _Consumers:
    """The consumer processes, each restartable under its own client id."""

    def __init__(self, db: Database, broker: EmbeddedBroker, folder: Path, group: str, count: int,
                 settings: dict[str, str]):
        self._args = (db.url, broker.url)
        self._folder = folder
        self._group = group
        self._settings = {"device_messages_per_s": "0", **settings}  # floods of 1 device are the scenario
        self.ids = [f"{group}-ingest-{n}" for n in range(count)]
        self.ports = {client_id: free_port() for client_id in self.ids}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for client_id in self.ids:
            self.start(client_id)

    def start(self, client_id: str) -> None:
        self.procs[client_id] = start_consumer(
            *self._args, client_id=client_id, group=self._group, metrics_port=self.ports[client_id],
            log_path=self._folder / f"{client_id}.log", **self._settings)

    def kill_and_restart(self, client_id: str) -> None:
        proc = self.procs[client_id]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.start(client_id)

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)

    def errors(self) -> list[str]:
        """The distinct warning and error lines the consumers logged (numbers blanked)."""
        seen: dict[str, int] = {}
        for client_id in self.ids:
            path = self._folder / f"{client_id}.log"
            if path.exists():
                for line in path.read_text(errors="replace").splitlines():
                    key = "".join("#" if ch.isdigit() else ch for ch in line)[:160]
                    seen[key] = seen.get(key, 0) + 1
        return [f"{count} x {line}" for line, count in sorted(seen.items(), key=lambda kv: -kv[1])][:12]


async def _run(db: Database, broker: EmbeddedBroker, folder: Path, run: str, ids: list[str], files: list[Path],
               scenario: Scenario) -> RunResult:
    result = RunResult(scenario.consumers, 0, scenario.messages)
    consumers = _Consumers(db, broker, folder, run, scenario.consumers, scenario.consumer_settings)
    publishers: list[subprocess.Popen[bytes]] = []
    spawning: asyncio.Task[None] | None = None
    try:
        await _until_subscribed(consumers)
        began = time.monotonic()
        # started in a thread: 1,000 process starts take seconds on a busy machine, and the samples
        # (stalls, kills) must go on meanwhile
        def spawn() -> None:
            for device, path in zip(ids, files, strict=True):
                publishers.append(_publisher(broker.port, device, path, folder))

        spawning = asyncio.create_task(asyncio.to_thread(spawn))
        stored, last_progress, next_kill = 0, began, began + scenario.kill_every_s
        expected: int | None = None
        while time.monotonic() - began < scenario.timeout_s:
            await asyncio.sleep(SAMPLE_S)
            now = time.monotonic()
            if scenario.kill_every_s and now >= next_kill and now - began <= scenario.kill_for_s:
                restarted = consumers.ids[result.kills % len(consumers.ids)]
                consumers.kill_and_restart(restarted)
                result.restarts.append(Restart(now - began, await _stored(db, run)))
                result.kills += 1
                # every kill_every_s; a late sample delays the next kill rather than bunching two
                next_kill = max(next_kill + scenario.kill_every_s, now + scenario.kill_every_s / 2)
            count = await _stored(db, run)
            if result.restarts:
                await _follow(result.restarts[-1], consumers.ports[restarted], count, now - began)
            if count > stored:
                stored, last_progress = count, now
            result.longest_stall_s = max(result.longest_stall_s, now - last_progress)
            if expected is None and spawning.done() and all(p.poll() is not None for p in publishers):
                result.publish_s = now - began
                result.accepted, result.refused = await asyncio.to_thread(_pubacks, folder, ids)
                expected = result.accepted
            if expected is not None and stored >= expected:
                result.drain_s = now - began
                break
    finally:
        if spawning is not None:
            await spawning
        for proc in publishers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        await consumers.stop()
    if expected is None:
        result.accepted, result.refused = await asyncio.to_thread(_pubacks, folder, ids)
    row = await db.fetchrow("SELECT count(*) AS n, count(DISTINCT (device_id, ts)) AS d FROM frog_readings "
                            "WHERE device_id LIKE $1", f"{run}-%")
    assert row is not None
    result.stored, result.duplicated = int(row["d"]), int(row["n"]) - int(row["d"])
    result.dead_letters = int(await db.fetchval("SELECT count(*) FROM dead_letters WHERE device_id LIKE $1",
                                                f"{run}-%"))
    result.consumer_errors = consumers.errors()
    return result


async def _follow(restart: Restart, port: int, count: int, at_s: float) -> None:
    """Note the latest restart's milestones as they are first seen."""
    after = round(at_s - restart.killed_at_s, 1)
    if restart.progress_s is not None:
        return
    text = await asyncio.to_thread(_metrics, port)
    if text is not None and restart.metrics_s is None:
        restart.metrics_s = after
    if text is not None and restart.connected_s is None and "cityops_ingest_broker_connected 1.0" in text:
        restart.connected_s = after
    if count > restart.stored_at_kill:
        restart.progress_s = after
        restart.duplicates = _counter(text or "", "cityops_ingest_duplicates_dropped_total")


def _counter(text: str, name: str) -> int:
    """A counter's samples summed over their labels, from a metrics page."""
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)))


async def _until_subscribed(consumers: _Consumers, timeout_s: float = 60.0) -> None:
    """Wait until every consumer says (on its metrics endpoint) it is connected and subscribed:
    a device's QoS 1 publish is then queued for them, never answered "no matching subscribers"."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = await asyncio.gather(*(asyncio.to_thread(_connected, port) for port in consumers.ports.values()))
        if all(states):
            return
        await asyncio.sleep(0.2)
    raise ConfigError(f"the consumers did not subscribe within {timeout_s:.0f} s")


def _connected(port: int) -> bool:
    text = _metrics(port)
    return text is not None and "cityops_ingest_broker_connected 1.0" in text


def _metrics(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text: str = response.read().decode()
    except OSError:
        return None
    return text


def _publisher(port: int, device: str, lines: Path, folder: Path) -> subprocess.Popen[bytes]:
    """A device: mosquitto_pub sending each line of its file as one QoS 1 message, -d printing each PUBACK."""
    with lines.open("rb") as stdin, (folder / f"{device}.pub").open("wb") as out:
        return subprocess.Popen(["mosquitto_pub", "-V", "mqttv5", "-q", "1", "-l", "-d", "-h", "127.0.0.1",
                                 "-p", str(port), "-i", device, "-t", telemetry_topic(device)],
                                stdin=stdin, stdout=out, stderr=subprocess.STDOUT)


def _pubacks(folder: Path, ids: list[str]) -> tuple[int, int]:
    accepted = refused = 0
    for device in ids:
        for line in (folder / f"{device}.pub").read_text(errors="replace").splitlines():
            if "received PUBACK" in line:
                if line.endswith("RC:0)"):
                    accepted += 1
                else:
                    refused += 1
    return accepted, refused


async def _stored(db: Database, run: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM frog_readings WHERE device_id LIKE $1", f"{run}-%"))
