"""The rules and alerts, on a schedule in simulated time, and the crews' jobs.

Each cycle runs "as of" the data's frontier: per device kind, the oldest of the demo
devices' newest readings (so every device's data up to then is in; the damp runner, which
carries the mould index forward hour by hour, must never see an hour half-filled). Then:
damp (frog frontier; then the sensors' damp case suggestions, cases.lifecycle.suggest_from_sensors),
bins (bin frontier; a collection plan every `plan_every` simulated
hours), gritting (road frontier, with its route plans), and the alerts runner with its
clock at the oldest frontier. Once the week has caught up (as of `live_from` less an hour),
the operator hands work to the demo crews through the jobs lifecycle (jobs/): every route to
send gets a gritting job, each truck of the first collection plan for a shift a bins job; and
the waste crew works its round, one bin marked emptied each time (so the operator's page shows
the progress), leaving the completion to a person.

Run as a child of the demo (`python -m democity.worker ...`, database and broker
in CITYOPS_DATABASE_URL / CITYOPS_MQTT_URL); it writes its status (the last successful
run, per rule) to a JSON file. A failed cycle (the database paused, say) is logged and
retried at the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cases.lifecycle import suggest_from_sensors
from cityops.periodic import Periodic, Task, stop_event_on_signals
from cityops.settings import Settings, get_settings
from cityops.storage import Database
from cityops.times import utc_argument
from democity.fleet import write_json
from democity.seed import PREFIX
from jobs import lifecycle
from jobs import store as jobs_store
from jobs.errors import JobError
from pipelines.bins import store as bins_store
from pipelines.bins.pipeline import BinsRunSettings, run_bins
from pipelines.damp.pipeline import run_damp
from pipelines.errors import RouteDecisionNotFound
from pipelines.gritting import store as gritting_store
from pipelines.gritting.pipeline import run_gritting
from pipelines.open_data.pipeline import publish_snapshots

log = logging.getLogger("democity.worker")

KINDS = {"frog": "frog_readings", "road": "road_readings", "bin": "bin_readings"}
OPEN_STATES = ("assigned", "started")


class FixedClock:
    def __init__(self, now: datetime):
        self._now = now

    def now(self) -> datetime:
        return self._now


async def frontiers(db: Database) -> dict[str, datetime | None]:
    """Per kind, the oldest of the demo devices' newest readings (None: a device has none yet)."""
    out: dict[str, datetime | None] = {}
    for kind, table in KINDS.items():
        row = await db.fetchrow(
            f"SELECT count(*) AS devices, count(newest) AS reporting, min(newest) AS frontier FROM ("
            f"SELECT (SELECT max(ts) FROM {table} r WHERE r.device_id = d.device_id) AS newest FROM devices d "
            "WHERE d.kind = $1 AND d.status = 'active' AND NOT d.mobile AND d.device_id LIKE $2) f", kind, f"{PREFIX}%")
        assert row is not None
        out[kind] = row["frontier"] if row["devices"] and row["reporting"] == row["devices"] else None
    return out


@dataclass
class WorkerStatus:
    cycles: int = 0
    failures: int = 0
    last_error: str | None = None
    last_success: dict[str, str] = field(default_factory=dict)     # rule -> real time of its last good run
    as_of: dict[str, str] = field(default_factory=dict)            # rule -> simulated time of that run
    jobs: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"cycles": self.cycles, "failures": self.failures, "last_error": self.last_error,
                "last_success": self.last_success, "as_of": self.as_of, "jobs": self.jobs}


class Worker:
    def __init__(self, db: Database, settings: Settings, *, live_from: datetime, plan_every: timedelta,
                 status_path: Path | None = None, plan_seconds: float = 10.0, assign_jobs: bool = True):
        self.db = db
        self.settings = settings
        self.live_from = live_from
        self.plan_every = plan_every
        self.status_path = status_path
        self.plan_seconds = plan_seconds
        self.assign_jobs = assign_jobs
        self.status = WorkerStatus()
        self._done: dict[str, datetime] = {}
        self._planned_at: datetime | None = None
        self._edges: dict[str, datetime | None] | None = None
        self._alerted_after: tuple[datetime | None, ...] | None = None

    def _ok(self, rule: str, as_of: datetime) -> None:
        self.status.last_success[rule] = datetime.now(UTC).isoformat()
        self.status.as_of[rule] = as_of.isoformat()
        self._done[rule] = as_of

    async def _frontiers(self) -> None:
        """Where each kind's data is complete up to; None until every kind has some."""
        edges = await frontiers(self.db)
        self._edges = edges if all(t is not None for t in edges.values()) else None

    async def _damp(self) -> None:
        if self._edges is not None and self._done.get("damp") != (frog := self._edges["frog"]):
            assert frog is not None
            await run_damp(self.db, now=frog)
            # homes damp on each of the last days get a suggested case for their landlord to triage
            await suggest_from_sensors(self.db, frog, days=self.settings.cases.suggest_after_days,
                                       sensor_is_awareness=self.settings.cases.sensor_alert_is_awareness)
            await publish_snapshots(self.db, now=frog)
            self._ok("damp", frog)

    async def _bins(self) -> None:
        if self._edges is not None and self._done.get("bins") != (bins := self._edges["bin"]):
            assert bins is not None
            plan = self._planned_at is None or bins - self._planned_at >= self.plan_every or (
                self._planned_at < self.live_from - timedelta(hours=1) <= bins)
            await run_bins(self.db, now=bins, settings=BinsRunSettings(plan=plan, time_limit_s=self.plan_seconds,
                                                                          roads=self.settings.bins))
            if plan:
                self._planned_at = bins
            self._ok("bins", bins)

    async def _gritting(self) -> None:
        if self._edges is not None and self._done.get("gritting") != (road := self._edges["road"]):
            assert road is not None
            await run_gritting(self.db, now=road, settings=self.settings.gritting)
            self._ok("gritting", road)

    async def _alerts_and_jobs(self) -> None:
        """After any rule has run on new data (as the cycle did before it was split into tasks)."""
        ran = tuple(self._done.get(rule) for rule in ("damp", "bins", "gritting"))
        if self._edges is None or ran == self._alerted_after:
            return
        alerts_at = min(t for t in self._edges.values() if t is not None)
        await self._alerts(alerts_at)
        self._ok("alerts", alerts_at)
        if self.assign_jobs and alerts_at >= self.live_from - timedelta(hours=1):
            self.status.jobs += await assign_jobs(self.db)
        self._alerted_after = ran

    async def _crews(self) -> None:
        """The waste crew empties a bin a cycle of the rounds the operator handed out."""
        if self.assign_jobs:
            await work_a_stop(self.db)

    def tasks(self) -> list[Task]:
        """A cycle: the frontiers, then each rule on its own (one rule's failure does not skip
        another's; cityops/periodic.py retries it), then the status file."""
        return [Task("frontiers", self._frontiers), Task("damp", self._damp), Task("bins", self._bins),
                Task("gritting", self._gritting), Task("alerts", self._alerts_and_jobs), Task("crews", self._crews)]

    async def _alerts(self, now: datetime) -> None:
        from alerts.runner import AlertsRunner

        await AlertsRunner(self.db, self.settings.alerts, clock=FixedClock(now)).cycle()

    async def run(self, stop: asyncio.Event, every_s: float) -> None:
        async def report() -> None:  # after the rules: what the demo and the soak read
            health = periodic.health()
            self.status.cycles = periodic.cycles
            self.status.failures = sum(h.total_failures for h in health.values())
            failing = [(name, h) for name, h in health.items() if h.failures]
            if failing:
                name, worst = failing[0]
                self.status.last_error = f"{datetime.now(UTC):%H:%M:%S}: {name}: {worst.last_error}"
            if self.status_path is not None:
                write_json(self.status_path, self.status.as_json())

        periodic = Periodic([*self.tasks(), Task("status", report)], every_s, max_backoff_s=4 * every_s)
        await periodic.run(stop)


async def assign_jobs(db: Database) -> int:
    """The operator's part: routes to send and the shift's bin plan, to the demo crews."""
    users = {r["username"]: r["user_id"] for r in await db.fetch(
        "SELECT username, user_id FROM users WHERE username = ANY($1)",
        [f"{PREFIX}operator", f"{PREFIX}gritting", f"{PREFIX}waste"])}
    operator, gritting, waste = (users.get(f"{PREFIX}{name}") for name in ("operator", "gritting", "waste"))
    if operator is None or gritting is None or waste is None:
        return 0
    made = 0
    run = await gritting_store.latest_run(db)
    planned = [] if run is None else await gritting_store.planned_sends(db, run["run_id"], f"{PREFIX}%")
    busy = await jobs_store.open_gritting_jobs(db, planned)
    for route_id in planned:
        if route_id in busy:
            continue
        with contextlib.suppress(JobError, RouteDecisionNotFound):
            await lifecycle.assign_gritting(db, route_id, gritting, operator)
            made += 1
    plan = await jobs_store.unassigned_bin_plan(db, f"{PREFIX}%")
    if plan is not None:
        for truck in await bins_store.plan_trucks(db, plan["plan_id"]):
            with contextlib.suppress(JobError, RouteDecisionNotFound):
                await lifecycle.assign_bins(db, plan["plan_id"], truck, waste, operator)
                made += 1
    return made


async def work_a_stop(db: Database) -> str | None:
    """The demo waste crew's next bin on its oldest unfinished round, marked done (starting the job
    first); the bin, or None when there is nothing to mark. The mark's id is the job's and the
    bin's, so a retried cycle marks it once."""
    waste = await db.fetchval("SELECT user_id FROM users WHERE username = $1", f"{PREFIX}waste")
    if waste is None:
        return None
    rounds = [r for r in await lifecycle.list_jobs(db, member=waste, kind="bins") if r["state"] in OPEN_STATES]
    if not rounds:
        return None
    states = await lifecycle.progress_of(db, rounds)
    todo = [(job, stop) for job in sorted(rounds, key=lambda r: r["job_id"])
            for stop, state in states[job["job_id"]].items() if state.status == "pending"]
    if not todo:
        return None
    job, stop = todo[0]
    now = datetime.now(UTC)
    with contextlib.suppress(JobError):
        if job["state"] == "assigned":
            await lifecycle.start(db, job["job_id"], now, waste)
        mark_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"cityops-demo:{job['job_id']}:{stop}"))
        await lifecycle.record_marks(db, job["job_id"], waste, False,
                                     [lifecycle.MarkIn(mark_id, stop, "done", None, "", now)], now)
        return stop
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m democity.worker",
                                     description="The demo's rules and alerts in simulated time (started by "
                                                 "`cityops demo`).")
    parser.add_argument("--live-from", type=utc_argument, required=True)
    parser.add_argument("--every", type=float, default=10.0, help="real seconds between cycles")
    parser.add_argument("--plan-every-h", type=float, default=3.0, help="simulated hours between bin plans")
    parser.add_argument("--plan-seconds", type=float, default=10.0)
    parser.add_argument("--status", type=Path, default=None)
    parser.add_argument("--no-jobs", action="store_true")
    args = parser.parse_args(argv)
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    async def go() -> None:
        stop = stop_event_on_signals()
        async with Database.connect(settings.resolved_database_url(), settings.storage) as db:
            worker = Worker(db, settings, live_from=args.live_from, plan_every=timedelta(hours=args.plan_every_h),
                            status_path=args.status, plan_seconds=args.plan_seconds, assign_jobs=not args.no_jobs)
            await worker.run(stop, args.every)

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("CITYOPS_LOG_LEVEL", "WARNING")
    raise SystemExit(main())
