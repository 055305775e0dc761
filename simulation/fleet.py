"""A fleet of simulated agents in one process: homes, road sites, bins and gritters.

Connections: every simulated device has its own MQTT connection (its own paho client
and network thread), exactly as a real device would. A device's identity on the broker
belongs to its connection: the client id, the credentials the ACL checks, the Last Will
that marks it `offline` and the retained `online` status. Multiplexing devices over one
shared connection would make one dropped socket look like the whole fleet dying and
could not exercise the per-device status contract. The price is one thread and one
socket per device: fine for hundreds; for thousands, run several `cityops agent
simulate` processes with different `--prefix`es.

Determinism: each device draws from its own generator seeded with (seed, kind, index),
the weather from (seed), and time is a SimClock per device, so a run's readings depend
only on the seed, the start time and the fleet's shape, never on wall-clock timing.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from firmware.agent import Agent, AgentSpec
from firmware.clock import Clock, SimClock
from firmware.drivers.base import Battery, Driver
from firmware.link import Backoff, MqttOptions
from firmware.sampler import BinGeometry, BinSource, FrogSource, ReadingSource, RoadSource
from firmware.sender import SendPolicy
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
from simulation.homes import PROFILES, HomeSim
from simulation.roads import RoadSim, RoadSite
from simulation.seeds import rng_for
from simulation.weather import Weather

GRITTER_INTERVAL_S = 60  # a moving sensor samples often: 35 km/h is ~600 m a minute


@dataclass(frozen=True)
class FleetPlan:
    homes: int = 0
    roads: int = 0
    bins: int = 0
    gritters: int = 0
    seed: int = 1
    speed: float = 60.0
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 5))
    prefix: str = "sim-"
    batch_max: int = 200
    rate: float | None = None  # messages/s per device; default speed / 60, at least 2

    def send_policy(self) -> SendPolicy:
        rate = self.rate if self.rate is not None else max(2.0, self.speed / 60.0)
        return SendPolicy(batch_max=self.batch_max, messages_per_s=rate, replay_jitter_s=0.0)

    @property
    def size(self) -> int:
        return self.homes + self.roads + self.bins + self.gritters


@dataclass(frozen=True)
class AgentTemplate:
    """What every simulated agent of one fleet shares: where it connects, spools, how it
    sends and backs off. The per-device parts are the builders' arguments."""

    mqtt: MqttOptions
    spool_dir: Path
    send: SendPolicy
    backoff: Backoff

    def spec(self, device_id: str, source: ReadingSource, clock: Clock, key: str, *,
             battery: Driver[Battery] | None = None, interval_s: int | None = None) -> AgentSpec:
        return AgentSpec(device_id=device_id, source=source, clock=clock, mqtt=self.mqtt,
                         spool_path=self.spool_dir / f"{device_id}.sqlite3", spool_durable=False,
                         drivers_block=False, send=self.send, backoff=self.backoff,
                         seed=rng_for(key, "link").randrange(2**32), battery=battery, interval_s=interval_s)


# One builder per kind of device, used by `cityops agent simulate` (build_fleet) and by the
# demo town (democity/fleet.py): the simulated physics comes in built, the drivers here.

def home_agent(t: AgentTemplate, device_id: str, home: HomeSim, clock: Clock, rng: random.Random,
               key: str) -> AgentSpec:
    return t.spec(device_id, FrogSource(SimHomeClimate(f"{device_id}/sht31", home, clock, rng)), clock, key)


def road_agent(t: AgentTemplate, device_id: str, road: RoadSim, clock: Clock, rng: random.Random,
               key: str) -> AgentSpec:
    source = RoadSource(SimRoadSurface(f"{device_id}/ds18b20", road, clock, rng),
                        air=SimRoadAir(f"{device_id}/sht31", road, clock, rng),
                        state=SimRoadState(f"{device_id}/surface-state", road, clock))
    return t.spec(device_id, source, clock, key)


def bin_agent(t: AgentTemplate, device_id: str, bin_sim: BinSim, clock: Clock, key: str) -> AgentSpec:
    spec = bin_sim.spec
    source = BinSource(sim_ultrasonic(f"{device_id}/jsn-sr04t", bin_sim, clock),
                       temperature=SimBinTemperature(f"{device_id}/ds18b20", bin_sim, clock),
                       tilt=SimBinTilt(f"{device_id}/tilt", bin_sim, clock),
                       geometry=BinGeometry(spec.sensor_height_mm, spec.depth_mm))
    return t.spec(device_id, source, clock, key, battery=SimBattery(f"{device_id}/battery", clock))


def gritter_agent(t: AgentTemplate, device_id: str, gritter: GritterSim, clock: Clock, rng: random.Random,
                  key: str) -> AgentSpec:
    source = RoadSource(SimGritterSurface(f"{device_id}/ir-probe", gritter, clock, rng),
                        position=SimGPS(f"{device_id}/gps", gritter, clock))
    return t.spec(device_id, source, clock, key, interval_s=GRITTER_INTERVAL_S)


def build_fleet(plan: FleetPlan, mqtt: MqttOptions, spool_dir: Path) -> list[AgentSpec]:
    weather = Weather.seeded(plan.seed)
    t = AgentTemplate(mqtt, spool_dir, plan.send_policy(), Backoff(initial_s=0.2, max_s=5.0, refused_min_s=5.0))
    specs: list[AgentSpec] = []

    def clock() -> SimClock:
        return SimClock(plan.start, plan.speed)

    for i in range(plan.homes):
        key, c = f"{plan.seed}/home/{i}", clock()
        rng = rng_for(key)
        home = HomeSim(PROFILES[i % len(PROFILES)], weather, rng_for(key, "life"), plan.start,
                       temp_c=rng.uniform(14.0, 19.0), ah_g_m3=rng.uniform(6.0, 8.0))
        specs.append(home_agent(t, f"{plan.prefix}home-{i:03d}", home, c, rng, key))
    for i in range(plan.roads):
        key, c = f"{plan.seed}/road/{i}", clock()
        rng = rng_for(key)
        site = RoadSite(f"site-{i}", offset_c=round(rng.uniform(-2.5, 2.0), 2), bridge=i % 4 == 3)
        specs.append(road_agent(t, f"{plan.prefix}road-{i:03d}", RoadSim(site, weather, plan.start), c, rng, key))
    for i in range(plan.bins):
        key, c = f"{plan.seed}/bin/{i}", clock()
        rng = rng_for(key)
        bin_spec = BinSpec(collection_weekday=i % 5, base_fill_per_day=rng.uniform(0.12, 0.4))
        bin_sim = BinSim(bin_spec, weather, rng_for(key, "life"), plan.start, fill=rng.uniform(0, 0.5))
        specs.append(bin_agent(t, f"{plan.prefix}bin-{i:03d}", bin_sim, c, key))
    for i in range(plan.gritters):
        key, c = f"{plan.seed}/gritter/{i}", clock()
        rng = rng_for(key)
        gritter = GritterSim(Route(speed_kmh=rng.uniform(30, 40)), weather, plan.start + timedelta(minutes=5 * i))
        specs.append(gritter_agent(t, f"{plan.prefix}gritter-{i:03d}", gritter, c, rng, key))
    return specs


async def run_fleet(specs: list[AgentSpec], until: datetime | None, drain_timeout_s: float = 30.0) -> None:
    """Run every agent until `until` (simulated time) and their spools drain, or until cancelled."""
    agents = [Agent(spec) for spec in specs]
    async with asyncio.TaskGroup() as group:
        for agent in agents:
            group.create_task(agent.run(until, drain_timeout_s), name=f"agent-{agent.device_id}")
