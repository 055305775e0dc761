"""The demo town's devices as simulated agents (simulation physics, real agents).

Each of the town's 391 devices is a real `firmware.agent.Agent` (sampler, SQLite spool,
sender, its own MQTT connection) whose drivers read the simulated physics of its place:
a home with its heating and moisture, a road site with its thermal offset and bridge, a
bin filling by its area's weekday, the gritter on its loop. Time is a StoryClock, so the
week catches up fast and then runs live (story.py).

Run as a child process of the demo (`python -m democity.fleet ...`, the broker URL
in CITYOPS_MQTT_URL): it writes its progress, and at the end the readings each device
produced, to a JSON file, which is how "sent" is counted against "stored".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityops.times import utc_argument
from contract.telemetry import Reading
from democity.accounts import read_device_secrets
from democity.story import Pace, StoryClock, StoryWeather, Timeline
from democity.town import BIN_DEPTH_MM, BIN_HEIGHT_MM, Town, build_town
from firmware.agent import Agent, AgentSpec
from firmware.link import Backoff, MqttOptions
from firmware.sampler import Sampler
from firmware.sender import SendPolicy
from firmware.spool import READING_TYPES, Spool
from simulation.bins import BinSim, BinSpec
from simulation.fleet import AgentTemplate, bin_agent, gritter_agent, home_agent, road_agent
from simulation.gritter import GritterSim, Route
from simulation.homes import COLD_DAMP, TYPICAL, WARM_DRY, HomeSim
from simulation.roads import RoadSim, RoadSite
from simulation.seeds import rng_for

log = logging.getLogger("democity.fleet")

PROGRESS_EVERY_S = 1.0
MAX_DEVICES_PER_PROCESS = 130


def build_agents(town: Town, pace: Pace, mqtt: MqttOptions, spool_dir: Path, *, rate: float = 1.0) -> list[AgentSpec]:
    """One agent spec per device of the town, deterministic under the town's seed, built by
    the simulator's own builders (simulation/fleet.py) from the town's places."""
    timeline = pace.timeline
    weather = StoryWeather.for_timeline(timeline)
    start = timeline.start
    t = AgentTemplate(mqtt, spool_dir, SendPolicy(batch_max=500, messages_per_s=rate, replay_jitter_s=0.0),
                      Backoff(initial_s=0.2, max_s=3.0, refused_min_s=3.0))
    specs: list[AgentSpec] = []
    for index, home in enumerate(town.homes):
        key = f"{town.seed}/home/{home.device_id}"
        rng = rng_for(key)
        profile = COLD_DAMP if home.damp else (TYPICAL, WARM_DRY)[index % 2]
        sim = HomeSim(profile, weather, rng_for(key, "life"), start, temp_c=rng.uniform(14.0, 19.0),
                      ah_g_m3=rng.uniform(6.0, 8.0))
        specs.append(home_agent(t, home.device_id, sim, StoryClock(pace), rng, key))
    for sensor in town.road_sensors:
        key = f"{town.seed}/road/{sensor.device_id}"
        road = RoadSim(RoadSite(sensor.segment_id, sensor.offset_c, sensor.bridge), weather, start)
        specs.append(road_agent(t, sensor.device_id, road, StoryClock(pace), rng_for(key), key))
    for b in town.bins:
        key = f"{town.seed}/bin/{b.device_id}"
        bin_spec = BinSpec(sensor_height_mm=BIN_HEIGHT_MM, depth_mm=BIN_DEPTH_MM, base_fill_per_day=b.fill_per_day,
                           collection_weekday=b.collection_weekday)
        bin_sim = BinSim(bin_spec, weather, rng_for(key, "life"), start, fill=rng_for(key).uniform(0.0, 0.4))
        specs.append(bin_agent(t, b.device_id, bin_sim, StoryClock(pace), key))
    key = f"{town.seed}/gritter/{town.gritter_id}"
    gritter = GritterSim(Route(points=town.gritter_loop, speed_kmh=30.0), weather, start)
    specs.append(gritter_agent(t, town.gritter_id, gritter, StoryClock(pace), rng_for(key), key))
    return specs


def _ignore(reading: Reading) -> None:
    """The backlog's sampler hands readings back to its caller instead."""


class FleetRun:
    """The town's agents: first each device's backlog for the week, then live.

    The backlog is what the device's own sampler would have taken at every due time from
    the week's start to `live_from` (the same Sampler, drivers and physics), committed to
    its spool; the agent then replays it over MQTT in batches, as any agent does after
    being offline, while it samples live. `produced` counts every reading spooled."""

    def __init__(self, specs: list[AgentSpec], pace: Pace):
        self.specs = specs
        self.pace = pace
        self.produced: dict[str, int] = {spec.device_id: 0 for spec in specs}
        self.agents: list[Agent] = []
        self.backlog_done = 0.0          # share of the week computed
        self.done = False

    async def write_backlog(self, chunk: timedelta = timedelta(hours=12)) -> None:
        """Every device's readings from the week's start to live_from, into its spool."""
        timeline = self.pace.timeline
        samplers: list[tuple[AgentSpec, Sampler, Spool]] = []
        for spec in self.specs:
            spool = Spool(spec.spool_path, READING_TYPES[spec.source.kind], spec.spool_budget_bytes, durable=False)
            sampler = Sampler(spec.source, spec.clock, _ignore, interval_s=spec.interval_s, battery=spec.battery,
                              drivers_block=False, device_id=spec.device_id)
            samplers.append((spec, sampler, spool))
        due = {spec.device_id: timeline.start for spec in self.specs}
        edge = timeline.start
        try:
            while edge < timeline.live_from:
                edge = min(edge + chunk, timeline.live_from)
                for spec, sampler, spool in samplers:
                    clock = spec.clock
                    assert isinstance(clock, StoryClock)
                    step = timedelta(seconds=sampler.interval_s)
                    moment = due[spec.device_id]
                    while moment < edge:
                        clock.set(moment)
                        reading = sampler.sample_once()
                        if reading is not None:
                            spool.add(reading)
                            self.produced[spec.device_id] += 1
                        moment += step
                    due[spec.device_id] = moment
                self.backlog_done = (edge - timeline.start) / (timeline.live_from - timeline.start)
                await asyncio.sleep(0)       # let the progress reporter write
        finally:
            for _, _, spool in samplers:
                spool.close()
        for spec in self.specs:
            assert isinstance(spec.clock, StoryClock)
            spec.clock.set(timeline.live_from)

    def _counting(self, device_id: str, sink: Callable[[Reading], None]) -> Callable[[Reading], None]:
        def count(reading: Reading) -> None:
            self.produced[device_id] += 1
            sink(reading)
        return count

    def progress(self) -> dict[str, Any]:
        live = self.pace.live_real is not None
        week = self.pace.timeline
        sim_now = self.pace.sim_now() if live else week.start + (week.live_from - week.start) * self.backlog_done
        return {"sim_now": sim_now.isoformat(), "live": live, "done": self.done, "devices": len(self.specs),
                "backlog_done": round(self.backlog_done, 3), "produced": sum(self.produced.values()),
                "acked": sum(a.sender.counters.acked_readings for a in self.agents),
                "written_at": datetime.now(UTC).isoformat()}

    async def run(self, until: datetime | None, drain_timeout_s: float) -> None:
        await self.write_backlog()
        self.agents = [Agent(spec) for spec in self.specs]
        for agent in self.agents:
            agent.sampler.sink = self._counting(agent.device_id, agent.sampler.sink)
        self.pace.go_live()
        async with asyncio.TaskGroup() as group:
            for agent in self.agents:
                group.create_task(agent.run(until, drain_timeout_s), name=f"agent-{agent.device_id}")
        self.done = True


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically, so a reader never sees half of it."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


def parts_for(devices: int) -> int:
    """How many processes the fleet needs: paho waits on its sockets with select(), which
    cannot watch a file descriptor above 1023, and each device holds about six (its MQTT
    socket and wake-up pair, its spool's database, journal and shared memory)."""
    return -(-devices // MAX_DEVICES_PER_PROCESS)


async def run(town: Town, timeline: Timeline, speed: float, mqtt_url: str, spool_dir: Path, progress_path: Path,
              until: datetime | None = None, rate: float = 1.0, drain_timeout_s: float = 120.0,
              part: int = 0, parts: int = 1, secrets: dict[str, str] | None = None) -> FleetRun:
    """Run the town's devices `part`, `part + parts`, ... (all of them with the defaults).
    `secrets`: device id -> its broker secret; each device then connects as itself."""
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    pace = Pace(timeline, speed)
    specs = build_agents(town, pace, MqttOptions.from_url(mqtt_url), spool_dir, rate=rate)[part::parts]
    if secrets is not None:
        specs = [replace(s, mqtt=replace(s.mqtt, username=s.device_id, password=secrets[s.device_id]))
                 for s in specs]
    fleet = FleetRun(specs, pace)

    async def report() -> None:
        while True:
            write_json(progress_path, fleet.progress())
            await asyncio.sleep(PROGRESS_EVERY_S)

    reporter = asyncio.create_task(report())
    try:
        await fleet.run(until, drain_timeout_s)
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        final = fleet.progress()
        final["per_device"] = fleet.produced
        write_json(progress_path, final)
    return fleet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m democity.fleet",
                                     description="The demo town's simulated devices (started by `cityops demo`).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=utc_argument, required=True)
    parser.add_argument("--live-from", type=utc_argument, required=True)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--until", type=utc_argument, default=None)
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per device at most")
    parser.add_argument("--spool-dir", type=Path, required=True)
    parser.add_argument("--progress", type=Path, required=True)
    parser.add_argument("--part", type=int, default=0, help="this process runs devices part, part + parts, ...")
    parser.add_argument("--parts", type=int, default=1)
    parser.add_argument("--secrets", type=Path, default=None,
                        help="the demo's broker accounts file: each device connects under its own account")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("CITYOPS_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    timeline = Timeline(args.start, args.live_from, datetime.now(UTC))
    mqtt_url = os.environ.get("CITYOPS_MQTT_URL", "")
    if not mqtt_url:
        parser.error("CITYOPS_MQTT_URL must name the broker")
    secrets = read_device_secrets(args.secrets) if args.secrets is not None else None

    async def go() -> None:
        task = asyncio.ensure_future(run(build_town(args.seed), timeline, args.speed, mqtt_url, args.spool_dir,
                                         args.progress, args.until, args.rate, part=args.part,
                                         parts=args.parts, secrets=secrets))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    began = time.monotonic()
    asyncio.run(go())
    log.info("fleet stopped after %.1f s", time.monotonic() - began)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
