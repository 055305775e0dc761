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

from cityops.telemetry import Reading
from cityops.times import utc_argument
from democity.accounts import read_device_secrets
from democity.story import Pace, StoryClock, StoryWeather, Timeline
from democity.town import BIN_DEPTH_MM, BIN_HEIGHT_MM, Town, build_town
from firmware.agent import Agent, AgentSpec
from firmware.drivers.base import Battery, Driver
from firmware.link import Backoff, MqttOptions
from firmware.sampler import BinGeometry, BinSource, FrogSource, ReadingSource, RoadSource, Sampler
from firmware.sender import SendPolicy
from firmware.spool import READING_TYPES, Spool
from simulation.bins import BinSim, BinSpec
from simulation.drivers import (
    SimBattery,
    SimBinTemperature,
    SimBinTilt,
    SimGPS,
    SimGritterSurface,
    SimHomeClimate,
    SimRoadAir,
    SimRoadState,
    SimRoadSurface,
    sim_ultrasonic,
)
from simulation.gritter import GritterSim, Route
from simulation.homes import COLD_DAMP, TYPICAL, WARM_DRY, HomeSim
from simulation.roads import RoadSim, RoadSite
from simulation.seeds import rng_for

log = logging.getLogger("democity.fleet")

GRITTER_INTERVAL_S = 60
PROGRESS_EVERY_S = 1.0
MAX_DEVICES_PER_PROCESS = 130


def _spec(device_id: str, source: ReadingSource, clock: StoryClock, mqtt: MqttOptions, spool_dir: Path, key: str,
          rate: float, *, battery: Driver[Battery] | None = None, interval_s: int | None = None) -> AgentSpec:
    return AgentSpec(device_id=device_id, source=source, clock=clock, mqtt=mqtt,
                     spool_path=spool_dir / f"{device_id}.sqlite3", spool_durable=False, drivers_block=False,
                     send=SendPolicy(batch_max=500, messages_per_s=rate, replay_jitter_s=0.0),
                     backoff=Backoff(initial_s=0.2, max_s=3.0, refused_min_s=3.0),
                     seed=rng_for(key, "link").randrange(2**32), battery=battery, interval_s=interval_s)


def build_agents(town: Town, pace: Pace, mqtt: MqttOptions, spool_dir: Path, *, rate: float = 1.0) -> list[AgentSpec]:
    """One agent spec per device of the town, deterministic under the town's seed."""
    timeline = pace.timeline
    weather = StoryWeather.for_timeline(timeline)
    start = timeline.start
    specs: list[AgentSpec] = []
    for index, home in enumerate(town.homes):
        key = f"{town.seed}/home/{home.device_id}"
        rng = rng_for(key)
        profile = COLD_DAMP if home.damp else (TYPICAL, WARM_DRY)[index % 2]
        sim = HomeSim(profile, weather, rng_for(key, "life"), start, temp_c=rng.uniform(14.0, 19.0),
                      ah_g_m3=rng.uniform(6.0, 8.0))
        clock = StoryClock(pace)
        specs.append(_spec(home.device_id, FrogSource(SimHomeClimate(f"{home.device_id}/sht31", sim, clock, rng)),
                           clock, mqtt, spool_dir, key, rate))
    for sensor in town.road_sensors:
        key = f"{town.seed}/road/{sensor.device_id}"
        rng = rng_for(key)
        road = RoadSim(RoadSite(sensor.segment_id, sensor.offset_c, sensor.bridge), weather, start)
        clock = StoryClock(pace)
        source: ReadingSource = RoadSource(
            SimRoadSurface(f"{sensor.device_id}/ds18b20", road, clock, rng),
            air=SimRoadAir(f"{sensor.device_id}/sht31", road, clock, rng),
            state=SimRoadState(f"{sensor.device_id}/surface-state", road, clock))
        specs.append(_spec(sensor.device_id, source, clock, mqtt, spool_dir, key, rate))
    for b in town.bins:
        key = f"{town.seed}/bin/{b.device_id}"
        rng = rng_for(key)
        bin_spec = BinSpec(sensor_height_mm=BIN_HEIGHT_MM, depth_mm=BIN_DEPTH_MM, base_fill_per_day=b.fill_per_day,
                           collection_weekday=b.collection_weekday)
        bin_sim = BinSim(bin_spec, weather, rng_for(key, "life"), start, fill=rng.uniform(0.0, 0.4))
        clock = StoryClock(pace)
        source = BinSource(sim_ultrasonic(f"{b.device_id}/jsn-sr04t", bin_sim, clock),
                           temperature=SimBinTemperature(f"{b.device_id}/ds18b20", bin_sim, clock),
                           tilt=SimBinTilt(f"{b.device_id}/tilt", bin_sim, clock),
                           geometry=BinGeometry(BIN_HEIGHT_MM, BIN_DEPTH_MM))
        specs.append(_spec(b.device_id, source, clock, mqtt, spool_dir, key, rate,
                           battery=SimBattery(f"{b.device_id}/battery", clock)))
    key = f"{town.seed}/gritter/{town.gritter_id}"
    rng = rng_for(key)
    gritter = GritterSim(Route(points=town.gritter_loop, speed_kmh=30.0), weather, start)
    clock = StoryClock(pace)
    source = RoadSource(SimGritterSurface(f"{town.gritter_id}/ir-probe", gritter, clock, rng),
                        position=SimGPS(f"{town.gritter_id}/gps", gritter, clock))
    specs.append(_spec(town.gritter_id, source, clock, mqtt, spool_dir, key, rate, interval_s=GRITTER_INTERVAL_S))
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
