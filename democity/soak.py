"""`cityops bench soak`: the whole platform under load while its parts fail, and nothing lost.

The demo town (391 devices: real agents with SQLite spools, their own MQTT connections)
runs at `--speed` (300 simulated seconds per real second by default: about 130 readings
a second) for `--minutes`, with `cityops ingest`, the rules and the alerts, against a
PostgreSQL and a Mosquitto the soak starts for itself in a temporary folder (so that it
may pause and restart them: it never touches CITYOPS_DATABASE_URL's server). Every
`--fault-every` seconds, a round of faults:

    ingest killed   SIGKILL to the consumer (no chance to flush), restarted 3 s later
    broker restart  Mosquitto stopped and started again on the same port (persistence on)
    database pause  SIGSTOP to PostgreSQL's whole process group for 8 s, then SIGCONT: every
                    connection hangs mid-query, as on a stalled disk or a frozen VM
    broker killed   the database paused for 5 s so that a backlog builds up in the broker,
                    then Mosquitto SIGKILLed (an OOM kill, a power cut: what it held since
                    its last autosave is gone) and started again 1 s later; the agents
                    resend what has no receipt (docs/ingest.md, "Receipts")

At the end the devices drain their spools and the soak compares, device by device, the
readings each device took with the rows stored: lost (taken, not stored) and duplicated
(stored more often than taken) must both be 0. It prints them with the rules' last
successful run, and exits 1 if anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityops.embedded.broker import EmbeddedBroker
from cityops.embedded.postgres import EmbeddedPostgres
from cityops.embedded.process import free_port
from cityops.errors import CityOpsError
from cityops.settings import Settings
from cityops.storage import Database, migrate
from democity import seed as seeding
from democity.accounts import TownAccounts, town_broker
from democity.stack import Story, StoryOptions, stored_readings
from democity.story import Timeline
from democity.town import Town, build_town

DRAIN_TIMEOUT_S = 180.0
PAUSE_S = 8.0
INGEST_DOWN_S = 3.0
BACKLOG_S = 5.0  # the database paused this long before the broker is killed


def register_bench(benchmarks: argparse._SubParsersAction[Any]) -> None:
    soak = benchmarks.add_parser(
        "soak", help="the demo town under load while ingest is killed, the broker restarted, the database paused",
        description="Run the whole platform with the demo town's 391 simulated devices for --minutes while "
                    "faults are injected, then count readings taken, stored, lost and duplicated (docs/demo.md).")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long to run under faults (default 10)")
    soak.add_argument("--speed", type=float, default=300.0,
                      help="simulated seconds per real second (default 300: ~130 readings/s)")
    soak.add_argument("--fault-every", type=float, default=60.0, metavar="S",
                      help="seconds between rounds of faults (default 60)")
    soak.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    soak.set_defaults(handler=run_soak)


@dataclass
class SoakReport:
    minutes: float
    speed: float
    sent: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    dead_letters: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    rules_last_success: dict[str, str] = field(default_factory=dict)
    rules_as_of: dict[str, str] = field(default_factory=dict)
    rules_failures: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        faults = ", ".join(f"{n} x {name}" for name, n in self.faults.items()) or "none"
        out = [f"soak: {self.minutes:g} min at {self.speed:g}x ({self.seconds:.0f} s in all); faults: {faults}",
               f"readings sent: {self.sent:,}", f"stored:        {self.stored:,}",
               f"lost:          {self.lost}", f"duplicated:    {self.duplicated}",
               f"dead letters:  {self.dead_letters}"]
        for rule, at in sorted(self.rules_last_success.items()):
            out.append(f"rules: {rule:<9} last successful run {at} (as of simulated {self.rules_as_of.get(rule)})")
        out.append(f"rules: {self.rules_failures} failed cycles (retried)")
        return out


def compare(taken: dict[str, int], stored: dict[str, int]) -> tuple[int, int]:
    """(lost, duplicated) device by device: rows missing, and rows beyond what was taken."""
    lost = sum(max(0, n - stored.get(device, 0)) for device, n in taken.items())
    extra = sum(max(0, n - taken.get(device, 0)) for device, n in stored.items())
    return lost, extra


def _postmaster_pid(postgres: EmbeddedPostgres) -> int:
    """From PostgreSQL's own lock file; the server leads its process group (spawn gives it a session)."""
    return int((postgres.pgdata / "postmaster.pid").read_text().splitlines()[0])


class Faults:
    def __init__(self, story: Story, broker: EmbeddedBroker, postgres: EmbeddedPostgres, began: float):
        self.story = story
        self.broker = broker
        self.postgres = postgres
        self.began = began
        self.counts: dict[str, int] = {}

    def _say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.began:6.1f}s] fault: {text}", flush=True)

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    async def kill_ingest(self) -> None:
        self._say("ingest killed (SIGKILL)")
        await self.story.stop_ingest(1, signal.SIGKILL)
        await asyncio.sleep(INGEST_DOWN_S)
        self.story.start_ingest(1)
        self._say("ingest restarted")
        self._count("ingest killed")

    async def restart_broker(self) -> None:
        self._say("broker stopped")
        await self.broker.stop()
        await asyncio.sleep(1.0)
        await self.broker.start()
        self._say("broker started again")
        self._count("broker restarted")

    @contextlib.asynccontextmanager
    async def _database_paused(self) -> AsyncIterator[int]:
        """SIGSTOP to PostgreSQL's whole process group (yields it), SIGCONT on the way out, whatever happens."""
        group = await asyncio.to_thread(_postmaster_pid, self.postgres)
        os.killpg(group, signal.SIGSTOP)
        try:
            yield group
        finally:
            os.killpg(group, signal.SIGCONT)

    async def pause_database(self) -> None:
        async with self._database_paused() as group:
            self._say(f"database paused (SIGSTOP to process group {group}) for {PAUSE_S:g} s")
            await asyncio.sleep(PAUSE_S)
        self._say("database resumed (SIGCONT)")
        self._count("database paused")

    async def kill_broker(self) -> None:
        async with self._database_paused():
            self._say(f"database paused for {BACKLOG_S:g} s so that a backlog builds up in the broker")
            await asyncio.sleep(BACKLOG_S)
            self._say("broker killed (SIGKILL) with the backlog in it")
            await self.broker.kill()
            await asyncio.sleep(1.0)
            await self.broker.start()
        self._say("broker started again, database resumed")
        self._count("broker killed")

    async def rounds(self, every_s: float, until: asyncio.Event) -> None:
        steps = (self.kill_ingest, self.restart_broker, self.pause_database, self.kill_broker)
        while not until.is_set():
            for step in steps:
                try:
                    await asyncio.wait_for(until.wait(), every_s / len(steps))
                    return
                except TimeoutError:
                    await step()


async def run_soak(args: argparse.Namespace, settings: Settings) -> int:
    if args.minutes <= 0 or args.speed <= 0 or args.fault_every <= 0:
        raise CityOpsError("--minutes, --speed and --fault-every must be positive")
    began = time.monotonic()
    report = SoakReport(args.minutes, args.speed)
    work = Path(tempfile.mkdtemp(prefix="cityops-soak-"))
    print(f"soak: own PostgreSQL and Mosquitto in {work} (the soak pauses and restarts them)", flush=True)
    passed = False
    try:
        postgres = EmbeddedPostgres(work, free_port(), durable=False)
        async with postgres:
            await _soak(args, settings, postgres, work, report, began)
        passed = report.lost == 0 and report.duplicated == 0
    finally:
        if passed:
            shutil.rmtree(work, ignore_errors=True)
        else:  # the logs of the broker, ingest and database, for the post-mortem
            print(f"soak: kept {work} (logs and data) for the post-mortem; delete it when done", flush=True)
    report.seconds = time.monotonic() - began
    for line in report.lines():
        print(line)
    if args.json:
        print(json.dumps(report.__dict__, default=str))
    return 0 if passed else 1


async def _soak(args: argparse.Namespace, settings: Settings, postgres: EmbeddedPostgres, work: Path,
                report: SoakReport, began: float) -> None:
    def say(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {text}", flush=True)

    simulated = timedelta(seconds=args.minutes * 60 * args.speed)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    week = Timeline(now - simulated - timedelta(days=1), now - simulated, now)
    town = build_town(1)
    async with Database.connect(postgres.url, settings.storage) as db:
        await migrate(db, settings.storage)
        await seeding.seed(db, town, week, settings, work)
        broker, accounts = await _broker(db, town, work, settings)
        say(f"broker: Mosquitto with {'per-device accounts (dynamic security)' if accounts else 'anonymous access'}")
        story = Story(postgres.url, broker.url, work, week, StoryOptions(
            days=1, speed=args.speed, until=week.live_from + simulated, rules_every_s=5.0, plan_seconds=5.0),
            accounts)
        say(f"town seeded; {story.parts} device processes, one day of backlog, then {args.minutes:g} min at "
            f"{args.speed:g}x with a round of faults every {args.fault_every:g} s")
        async with broker:
            await _under_faults(args, db, story, Faults(story, broker, postgres, began), report, say)


async def _broker(db: Database, town: Town, work: Path, settings: Settings
                  ) -> tuple[EmbeddedBroker, TownAccounts | None]:
    """The production broker's accounts when the plugin is here (as `cityops demo` does)."""
    return await town_broker(db, list(town.device_ids), work, free_port(), "mosquitto", work / "accounts",
                             share_group=settings.ingest.share_group, consumers=1)


async def _under_faults(args: argparse.Namespace, db: Database, story: Story, faults: Faults, report: SoakReport,
                        say: Any) -> None:
    await story.start()
    finished = asyncio.Event()
    injecting = asyncio.create_task(faults.rounds(args.fault_every, finished))
    try:
        await _until_fleet_done(story, db, say)
    finally:
        finished.set()
        await injecting
    report.faults = faults.counts
    say("devices done and drained; waiting for ingest to store the rest ...")
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    progress = story.fleet_progress() or {}
    taken: dict[str, int] = progress.get("per_device") or {}
    stored = await stored_readings(db)
    while sum(stored.values()) < sum(taken.values()) and time.monotonic() < deadline:
        await asyncio.sleep(2)
        stored = await stored_readings(db)
    await asyncio.sleep(2 * 5.0)      # one more rules cycle on the complete data
    status = story.worker_status() or {}
    await story.stop()
    report.sent, report.stored = sum(taken.values()), sum(stored.values())
    report.lost, report.duplicated = compare(taken, stored)
    report.dead_letters = int(await db.fetchval(
        "SELECT count(*) FROM dead_letters WHERE device_id LIKE 'demo-%'") or 0)
    report.rules_last_success = status.get("last_success", {})
    report.rules_as_of = status.get("as_of", {})
    report.rules_failures = int(status.get("failures", 0))


async def _until_fleet_done(story: Story, db: Database, say: Any) -> None:
    last = 0.0
    while True:
        await asyncio.sleep(2)
        progress = story.fleet_progress()
        if progress is not None and progress["done"]:
            return
        crashed = [c for c in story.crashed() if not c.startswith("ingest")]
        if crashed:
            raise CityOpsError(f"a soak process stopped: {', '.join(crashed)}")
        if progress is not None and time.monotonic() - last >= 15:
            last = time.monotonic()
            try:
                stored = sum((await stored_readings(db)).values())
            except CityOpsError:
                stored = -1
            when = datetime.fromisoformat(progress["sim_now"])
            say(f"simulated {when:%a %H:%M}; taken {progress['produced']:,}, stored {stored:,}")
