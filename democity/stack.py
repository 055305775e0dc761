"""The demo's moving parts as child processes, and what they have achieved so far.

`Story` starts, against a database and a broker it is given, the services that make the
demo town live: `cityops ingest` consumers, the simulated fleet (fleet.py) and the rules
worker (worker.py); for the town's LoRaWAN devices, the simulated ChirpStack
(chirpstack.py) and `cityops lorawan run` against the same broker. Each is a child process
started through cityops.embedded.process, so it has its own session (Ctrl-C reaches only
the demo, which stops them in order) and dies with the demo if the demo is killed.
`cityops demo`, the end-to-end test and the soak benchmark all use it;
the soak also kills and restarts ingest through it.

`milestones` reads from the database what a visitor would see on the pages; `town_clock`
is the town's time for the API's clock file (cityops.clock).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityops.clock import ClockAnchor, write_anchor
from cityops.embedded.process import spawn, stop_process
from cityops.storage import Database
from democity.accounts import TownAccounts
from democity.fleet import parts_for
from democity.seed import PREFIX
from democity.story import Timeline
from democity.town import INTEGRATION_CLIENT_ID, LORAWAN_APPLICATION, NETWORK_SERVER, build_town

LIKE = f"{PREFIX}%"


@dataclass(frozen=True)
class StoryOptions:
    seed: int = 1
    days: float = 7.0
    speed: float = 60.0                 # simulated seconds per real second once caught up
    until: datetime | None = None       # simulated end (None: run until stopped)
    rules_every_s: float = 10.0
    plan_seconds: float = 10.0
    consumers: int = 1
    rate: float = 1.0                   # messages per second per device at most
    log_level: str = "WARNING"
    env: Mapping[str, str] = field(default_factory=dict)   # more settings for every child (CITYOPS_...)


class Story:
    def __init__(self, database_url: str, mqtt_url: str, work_dir: Path, timeline: Timeline,
                 options: StoryOptions | None = None, accounts: TownAccounts | None = None):
        self.database_url = database_url
        self.accounts = accounts          # None: an anonymous broker (amqtt, or a test's own)
        self.mqtt_url = mqtt_url
        self.work_dir = work_dir
        self.timeline = timeline
        self.options = options or StoryOptions()
        self.ingest: dict[int, subprocess.Popen[bytes]] = {}
        self.fleet: list[subprocess.Popen[bytes]] = []
        self.worker: subprocess.Popen[bytes] | None = None
        self.lorawan: subprocess.Popen[bytes] | None = None          # `cityops lorawan run`
        self.network_server: subprocess.Popen[bytes] | None = None   # the simulated ChirpStack
        self.parts = parts_for(len(build_town(self.options.seed).device_ids))
        self.status_path = work_dir / "worker-status.json"
        self.clock_path = work_dir / "clock.json"     # the town's clock, for the API (CITYOPS_API__CLOCK_FILE)
        self.network_server_path = work_dir / "chirpstack-progress.json"

    def _env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "CITYOPS_DATABASE_URL": self.database_url, "CITYOPS_MQTT_URL": self.mqtt_url,
               "CITYOPS_LOG_LEVEL": self.options.log_level}
        env.update(self.options.env)
        env.update(extra)
        return env

    def _log(self, name: str) -> Path:
        return self.work_dir / "logs" / f"{name}.log"

    def start_ingest(self, index: int = 1) -> subprocess.Popen[bytes]:
        """One `cityops ingest` consumer (a fixed client id: a restart resumes its session)."""
        if self.accounts is not None:  # its own account, bound to its client id
            who = {"CITYOPS_MQTT_URL": self.accounts.ingest_url(index),
                   "CITYOPS_INGEST__CLIENT_ID": self.accounts.ingest_client_id(index),
                   "CITYOPS_INGEST__SHARE_GROUP": self.accounts.share_group}
        else:
            who = {"CITYOPS_INGEST__CLIENT_ID": f"cityops-demo-ingest-{index}",
                   "CITYOPS_INGEST__SHARE_GROUP": "demo-ingest"}
        proc = spawn([sys.executable, "-m", "cityops_cli", "ingest"], log_path=self._log(f"ingest-{index}"),
                     env=self._env(**who, CITYOPS_INGEST__METRICS_PORT="0", CITYOPS_INGEST__REGISTRY_REFRESH_S="5"))
        self.ingest[index] = proc
        return proc

    def _progress_path(self, part: int) -> Path:
        return self.work_dir / f"fleet-progress-{part}.json"

    def start_fleet(self) -> list[subprocess.Popen[bytes]]:
        """The simulated devices, in as many processes as they need (fleet.parts_for)."""
        for part in range(self.parts):
            self._progress_path(part).unlink(missing_ok=True)
            argv = [sys.executable, "-m", "democity.fleet", "--seed", str(self.options.seed),
                    "--start", self.timeline.start.isoformat(), "--live-from", self.timeline.live_from.isoformat(),
                    "--speed", str(self.options.speed), "--rate", str(self.options.rate),
                    "--spool-dir", str(self.work_dir / "spool"), "--progress", str(self._progress_path(part)),
                    "--part", str(part), "--parts", str(self.parts)]
            if self.options.until is not None:
                argv += ["--until", self.options.until.isoformat()]
            if self.accounts is not None:
                argv += ["--secrets", str(self.accounts.accounts_file)]
            self.fleet.append(spawn(argv, log_path=self._log(f"fleet-{part}"), env=self._env()))
        return self.fleet

    def start_worker(self) -> subprocess.Popen[bytes]:
        self.status_path.unlink(missing_ok=True)
        self.worker = spawn([sys.executable, "-m", "democity.worker",
                             "--live-from", self.timeline.live_from.isoformat(),
                             "--every", str(self.options.rules_every_s),
                             "--plan-seconds", str(self.options.plan_seconds), "--status", str(self.status_path)],
                            log_path=self._log("rules"), env=self._env())
        return self.worker

    def start_lorawan(self) -> subprocess.Popen[bytes]:
        """`cityops lorawan run` for the demo's network server: ChirpStack's integration on our broker."""
        url = self.accounts.integration_url if self.accounts is not None else self.mqtt_url
        server = {"name": NETWORK_SERVER, "kind": "chirpstack", "url": url, "application": LORAWAN_APPLICATION,
                  "client_id": INTEGRATION_CLIENT_ID}
        self.lorawan = spawn([sys.executable, "-m", "cityops_cli", "lorawan", "run"], log_path=self._log("lorawan"),
                             env=self._env(CITYOPS_LORAWAN__SERVERS=json.dumps([server]),
                                           CITYOPS_LORAWAN__METRICS_PORT="0", CITYOPS_LORAWAN__DOWNLINK_CHECK_S="5"))
        return self.lorawan

    def start_network_server(self) -> subprocess.Popen[bytes]:
        """The simulated ChirpStack publishing the LoRaWAN devices' uplinks (chirpstack.py)."""
        self.network_server_path.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "democity.chirpstack", "--seed", str(self.options.seed),
                "--start", self.timeline.start.isoformat(), "--live-from", self.timeline.live_from.isoformat(),
                "--speed", str(self.options.speed), "--progress", str(self.network_server_path)]
        if self.options.until is not None:
            argv += ["--until", self.options.until.isoformat()]
        url = self.accounts.network_server_url if self.accounts is not None else self.mqtt_url
        self.network_server = spawn(argv, log_path=self._log("chirpstack"), env=self._env(CITYOPS_MQTT_URL=url))
        return self.network_server

    async def start(self) -> None:
        for index in range(1, self.options.consumers + 1):
            self.start_ingest(index)
        self.start_lorawan()
        self.start_fleet()
        self.start_network_server()
        self.start_worker()

    async def stop_ingest(self, index: int, sig: int = signal.SIGTERM) -> None:
        proc = self.ingest.pop(index, None)
        if proc is not None:
            await stop_process(proc, sig=sig, timeout_s=20)

    async def stop(self) -> None:
        """The devices first (the fleet's spools keep what is unsent), then the rules, then ingest and
        the LoRaWAN integration (they commit)."""
        await asyncio.gather(*(stop_process(proc, timeout_s=20) for proc in
                               [*self.fleet, *(p for p in (self.network_server, self.worker) if p is not None)]))
        integration = [stop_process(self.lorawan, timeout_s=20)] if self.lorawan is not None else []
        await asyncio.gather(*(self.stop_ingest(index) for index in list(self.ingest)), *integration)
        self.lorawan = None

    def network_server_progress(self) -> dict[str, Any] | None:
        """The simulated ChirpStack's counts: uplinks published, second-gateway copies, frames lost."""
        return _read_json(self.network_server_path)

    def fleet_progress(self) -> dict[str, Any] | None:
        """The fleet's processes' progress files together (None until each has written one)."""
        parts = [_read_json(self._progress_path(part)) for part in range(self.parts)]
        if any(p is None for p in parts):
            return None
        known = [p for p in parts if p is not None]
        per_device: dict[str, int] = {}
        for p in known:
            per_device.update(p.get("per_device") or {})
        return {"sim_now": min(p["sim_now"] for p in known), "live": all(p["live"] for p in known),
                "done": all(p["done"] for p in known), "backlog_done": min(p["backlog_done"] for p in known),
                "produced": sum(p["produced"] for p in known), "acked": sum(p["acked"] for p in known),
                "per_device": per_device if all("per_device" in p for p in known) else None}

    def town_clock(self) -> ClockAnchor:
        """The town's time for the API (cityops.clock): where the furthest device process has got
        to, so no reading is later than it, running at the story's speed while they are live
        (never past the real clock); before any process reports, the week's start."""
        real = datetime.now(UTC)
        parts = [p for p in (_read_json(self._progress_path(k)) for k in range(self.parts)) if p is not None]
        if not parts:
            return ClockAnchor(self.timeline.start, real, rate=0.0)
        furthest = max(datetime.fromisoformat(p["sim_now"]) for p in parts)
        running = any(p["live"] and not p["done"] for p in parts)
        return ClockAnchor(furthest, real, rate=self.options.speed if running else 0.0)

    def write_clock(self) -> None:
        """The town's clock into `clock_path`, where the API reads its time (cityops.clock)."""
        write_anchor(self.clock_path, self.town_clock())

    def worker_status(self) -> dict[str, Any] | None:
        return _read_json(self.status_path)

    def crashed(self) -> list[str]:
        """The children that exited on their own with an error."""
        named = [(f"ingest-{i}", p) for i, p in self.ingest.items()] + \
            [(f"fleet-{k}", p) for k, p in enumerate(self.fleet)] + [("rules", self.worker)] + \
            [("lorawan", self.lorawan), ("chirpstack", self.network_server)]
        return [f"{name} (exit {p.returncode}; see {self._log(name)})" for name, p in named
                if p is not None and p.poll() not in (None, 0)]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


async def stored_readings(db: Database) -> dict[str, int]:
    """Rows per demo device across the readings tables."""
    rows = await db.fetch(
        "SELECT device_id, count(*) AS n FROM frog_readings WHERE device_id LIKE $1 GROUP BY device_id UNION ALL "
        "SELECT device_id, count(*) FROM road_readings WHERE device_id LIKE $1 GROUP BY device_id UNION ALL "
        "SELECT device_id, count(*) FROM bin_readings WHERE device_id LIKE $1 GROUP BY device_id", LIKE)
    return {r["device_id"]: int(r["n"]) for r in rows}


async def milestones(db: Database) -> dict[str, Any]:
    """What the pages can show now: readings, the first damp alert, route to send, bin plan, jobs."""
    readings = await db.fetchval(
        "SELECT (SELECT count(*) FROM frog_readings WHERE device_id LIKE $1) + (SELECT count(*) FROM road_readings "
        "WHERE device_id LIKE $1) + (SELECT count(*) FROM bin_readings WHERE device_id LIKE $1)", LIKE)
    damp = await db.fetchrow("SELECT title, opened_at FROM alerts WHERE rule = 'damp_risk' AND household_id LIKE $1 "
                             "ORDER BY alert_id LIMIT 1", LIKE)
    route = await db.fetchrow(
        "SELECT d.route_id, r.as_of, d.latest_start, p.distance_m, jsonb_array_length(p.instructions) AS steps "
        "FROM gritting_route_decisions d JOIN gritting_plans p USING (run_id, route_id) JOIN gritting_runs r "
        "USING (run_id) WHERE d.send AND d.route_id LIKE $1 ORDER BY d.run_id, d.route_id LIMIT 1", LIKE)
    plan = await db.fetchrow(
        "SELECT p.plan_id, p.shift_start, count(s.*) AS stops, count(DISTINCT s.truck) AS trucks FROM bin_plans p "
        "JOIN bin_plan_stops s USING (plan_id) WHERE p.depot_id LIKE $1 GROUP BY p.plan_id ORDER BY p.plan_id "
        "LIMIT 1", LIKE)
    jobs = await db.fetchval("SELECT count(*) FROM jobs j JOIN users u ON u.user_id = j.assigned_to "
                             "WHERE u.username LIKE $1", LIKE)
    alerts = await db.fetchval("SELECT count(*) FROM alerts WHERE cause LIKE '%' || $1", LIKE)
    lorawan = await lorawan_uplinks(db)
    return {"readings": int(readings or 0), "damp_alert": dict(damp) if damp else None,
            "route": dict(route) if route else None, "bin_plan": dict(plan) if plan else None,
            "jobs": int(jobs or 0), "alerts": int(alerts or 0), "lorawan": lorawan}


async def lorawan_uplinks(db: Database) -> dict[str, int]:
    """The demo's LoRaWAN devices: uplinks logged, frames lost (gaps), readings they gave."""
    row = await db.fetchrow(
        "SELECT count(*) AS uplinks, coalesce(sum(gap), 0) AS lost, coalesce(sum(readings), 0) AS readings, "
        "count(DISTINCT device_id) AS devices FROM lorawan_uplinks WHERE device_id LIKE $1", LIKE)
    assert row is not None  # an aggregate has its one row
    return {name: int(row[name]) for name in ("uplinks", "lost", "readings", "devices")}
