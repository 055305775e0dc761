"""The demo's simulated ChirpStack: the town's LoRaWAN devices' uplinks on the demo's broker.

Each LoRaWAN device of the town (democity.town: EM300-TH homes, LDDS75 and EM310-UDL bins)
reads the same simulated physics as the native devices (simulation.homes.HomeSim,
simulation.bins.BinSim under the story's weather), encodes it as the vendor does
(simulation.lorawan) and is heard every few simulated minutes. What ChirpStack v4's MQTT
integration would then publish is published (`application/<app>/device/<DevEUI>/event/up`,
QoS 1): the frame counter counting up, now and then a frame lost on the air (a gap in the
counter), now and then the same frame twice (heard by two gateways that two integrations did
not merge: the same fCnt, another deduplicationId, a second later), which `cityops lorawan
run` logs as a gap and ignores as a duplicate.

Time runs as for the native fleet (story.py): the week up to `live_from` as fast as ingest's
per-device limit allows (the network server catching up with what its devices said all
week), then live at the story's speed, never ahead of the real clock.

Run as a child process of the demo (`python -m democity.chirpstack ...`, the broker URL,
with the simulated network server's account, in CITYOPS_MQTT_URL). It writes its progress
to a JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import logging
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from cityops.times import utc_argument
from contract.urls import MqttTarget
from democity.fleet import write_json
from democity.story import Pace, StoryWeather, Timeline
from democity.town import (
    BIN_DEPTH_MM,
    BIN_HEIGHT_MM,
    LORAWAN_APPLICATION,
    NETWORK_SERVER_CLIENT_ID,
    Bin,
    Home,
    Town,
    build_town,
)
from simulation.bins import BinSim, BinSpec
from simulation.homes import COLD_DAMP, TYPICAL, WARM_DRY, HomeSim
from simulation.lorawan import SimulatedDevice, chirpstack_uplink, em300_th, em310_udl, ldds75
from simulation.seeds import rng_for

log = logging.getLogger("democity.chirpstack")

HOME_EVERY = timedelta(minutes=10)
BIN_EVERY = timedelta(minutes=15)
LOST_CHANCE = 0.03          # a frame no gateway heard: the next one shows a gap
TWICE_CHANCE = 0.05         # a frame heard through two gateways and not merged: published twice
SECOND_GATEWAY_AFTER = timedelta(seconds=1)
CATCH_UP_PER_DEVICE_S = 12.0    # messages a second per device while catching up (ingest allows 20)
PROGRESS_EVERY_S = 1.0


@dataclass(frozen=True)
class Transmission:
    """One message the network server publishes: an uplink, or its second gateway's copy."""

    at: datetime
    topic: str
    payload: bytes
    f_cnt: int
    copy: bool = False


@dataclass
class Radio:
    """One LoRaWAN device: its physics read and encoded at each due time, its frame counter."""

    device: SimulatedDevice
    every: timedelta
    encode: Callable[[datetime], tuple[int, bytes]]   # the physics at that instant, as the device's bytes
    rng: random.Random
    due: datetime
    f_cnt: int = 0
    lost: int = 0
    twice: int = 0

    def transmit(self) -> list[Transmission]:
        """The frame due now, as published (nothing when lost, twice when two gateways heard it);
        then the next one is due."""
        at, f_cnt = self.due, self.f_cnt
        payload = self.encode(at)
        self.due += self.every
        self.f_cnt += 1
        if f_cnt > 0 and self.rng.random() < LOST_CHANCE:
            self.lost += 1
            return []
        first = self._uplink(at, f_cnt, payload)
        if self.rng.random() >= TWICE_CHANCE:
            return [first]
        self.twice += 1
        return [first, self._uplink(at + SECOND_GATEWAY_AFTER, f_cnt, payload, copy=True)]

    def _uplink(self, at: datetime, f_cnt: int, payload: tuple[int, bytes], copy: bool = False) -> Transmission:
        dedup_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        topic, body = chirpstack_uplink(self.device, f_cnt=f_cnt, port_and_bytes=payload, at=at, dedup_id=dedup_id)
        return Transmission(at, topic, body, f_cnt, copy)


def _device(device_id: str, dev_eui: str | None, profile: str) -> SimulatedDevice:
    assert dev_eui is not None, f"{device_id} is not a LoRaWAN device"
    return SimulatedDevice(dev_eui=dev_eui, name=device_id, application_id=LORAWAN_APPLICATION, profile=profile,
                           dev_addr="260b" + dev_eui[-4:])


def home_radio(town: Town, index: int, home: Home, weather: StoryWeather, start: datetime) -> Radio:
    key = f"{town.seed}/lorawan-home/{home.device_id}"
    rng = rng_for(key)
    profile = COLD_DAMP if home.damp else (TYPICAL, WARM_DRY)[index % 2]
    sim = HomeSim(profile, weather, rng_for(key, "life"), start, temp_c=rng.uniform(14.0, 19.0),
                  ah_g_m3=rng.uniform(6.0, 8.0))

    def encode(at: datetime) -> tuple[int, bytes]:
        sim.advance(at)
        return em300_th(sim.temp_c + rng.gauss(0.0, 0.1), min(100.0, sim.rh_pct + rng.gauss(0.0, 0.5)))
    return Radio(_device(home.device_id, home.dev_eui, "milesight-em300-th"), HOME_EVERY, encode,
                 rng_for(key, "radio"), start)


def bin_radio(town: Town, b: Bin, weather: StoryWeather, start: datetime) -> Radio:
    key = f"{town.seed}/lorawan-bin/{b.device_id}"
    spec = BinSpec(sensor_height_mm=BIN_HEIGHT_MM, depth_mm=BIN_DEPTH_MM, base_fill_per_day=b.fill_per_day,
                   collection_weekday=b.collection_weekday)
    sim = BinSim(spec, weather, rng_for(key, "life"), start, fill=rng_for(key).uniform(0.0, 0.4))
    noise = rng_for(key, "noise")

    def encode(at: datetime) -> tuple[int, bytes]:
        sim.advance(at)
        distance = round(spec.distance_mm(sim.fill) + noise.gauss(0.0, 8.0))
        if b.codec == "milesight-em310-udl":
            return em310_udl(distance, battery_pct=92, tilted=sim.tilted)
        return ldds75(distance, battery_mv=3310, temp_c=sim.temp_c)
    return Radio(_device(b.device_id, b.dev_eui, b.codec or ""), BIN_EVERY, encode, rng_for(key, "radio"), start)


def build_radios(town: Town, timeline: Timeline) -> list[Radio]:
    """The town's LoRaWAN devices, deterministic under its seed, from the week's start."""
    weather = StoryWeather.for_timeline(timeline)
    return ([home_radio(town, i, h, weather, timeline.start) for i, h in enumerate(town.lorawan_homes)]
            + [bin_radio(town, b, weather, timeline.start) for b in town.lorawan_bins])


@dataclass
class NetworkServer:
    """The radios in time order, published as each frame falls due."""

    radios: list[Radio]
    pace: Pace
    published: int = 0
    copies: int = 0
    copied: list[tuple[str, int]] = field(default_factory=list)   # (device, fCnt) of the last copies published
    _next_send: dict[str, float] = field(default_factory=dict)   # catching up: each device's next slot

    def progress(self) -> dict[str, Any]:
        live = self.pace.live_real is not None
        return {"live": live, "devices": len(self.radios), "published": self.published, "copies": self.copies,
                "frames": sum(r.f_cnt for r in self.radios), "lost": sum(r.lost for r in self.radios),
                "copied": self.copied[-20:],
                "sim_now": min(r.due for r in self.radios).isoformat() if self.radios else None,
                "written_at": datetime.now(UTC).isoformat()}

    async def run(self, client: aiomqtt.Client, until: datetime | None) -> None:
        queue = [(r.due, k) for k, r in enumerate(self.radios)]
        heapq.heapify(queue)
        live_from = self.pace.timeline.live_from
        while queue:
            due, k = heapq.heappop(queue)
            if until is not None and due > until:
                return
            if due >= live_from:
                if self.pace.live_real is None:
                    self.pace.go_live()
                await self._until_sim(due)
            radio = self.radios[k]
            for message in radio.transmit():
                if message.at < live_from:
                    await self._slot(radio.device.dev_eui)
                else:
                    await self._until_sim(message.at)
                await client.publish(message.topic, message.payload, qos=1)
                self.published += 1
                if message.copy:
                    self.copies += 1
                    self.copied = [*self.copied[-19:], (radio.device.name, message.f_cnt)]
            heapq.heappush(queue, (radio.due, k))

    async def _slot(self, dev_eui: str) -> None:
        """Catching up: no device faster than ingest's per-device limit."""
        now = time.monotonic()
        at = max(now, self._next_send.get(dev_eui, now))
        self._next_send[dev_eui] = at + 1.0 / CATCH_UP_PER_DEVICE_S
        if at > now:
            await asyncio.sleep(at - now)

    async def _until_sim(self, moment: datetime) -> None:
        """Live: wait for the story's clock to reach `moment`, and the real clock too (as StoryClock does)."""
        live_real = self.pace.live_real
        assert live_real is not None, "the live phase has not started"
        due = live_real + (moment - self.pace.timeline.live_from).total_seconds() / self.pace.speed
        wall = (moment - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(max(0.0, due - time.monotonic(), wall))


async def run(town: Town, timeline: Timeline, speed: float, mqtt_url: str, progress_path: Path,
              until: datetime | None = None) -> NetworkServer:
    server = NetworkServer(build_radios(town, timeline), Pace(timeline, speed))

    async def report() -> None:
        while True:
            await asyncio.to_thread(write_json, progress_path, server.progress())
            await asyncio.sleep(PROGRESS_EVERY_S)

    reporter = asyncio.create_task(report())
    try:
        async with aiomqtt.Client(**MqttTarget.from_url(mqtt_url).client_kwargs(), identifier=NETWORK_SERVER_CLIENT_ID,
                                  timeout=30) as client:
            await server.run(client, until)
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        write_json(progress_path, {**server.progress(), "done": True})
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m democity.chirpstack",
                                     description="The demo town's LoRaWAN devices as ChirpStack publishes them "
                                                 "(started by `cityops demo`).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=utc_argument, required=True)
    parser.add_argument("--live-from", type=utc_argument, required=True)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--until", type=utc_argument, default=None)
    parser.add_argument("--progress", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("CITYOPS_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    mqtt_url = os.environ.get("CITYOPS_MQTT_URL", "")
    if not mqtt_url:
        parser.error("CITYOPS_MQTT_URL must name the broker")
    timeline = Timeline(args.start, args.live_from, datetime.now(UTC))

    async def go() -> None:
        task = asyncio.ensure_future(run(build_town(args.seed), timeline, args.speed, mqtt_url, args.progress,
                                         args.until))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            server = await task
            log.info("published %d uplinks (%d second-gateway copies)", server.published, server.copies)

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
