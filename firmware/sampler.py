"""Turn driver values into telemetry readings on a schedule.

A `ReadingSource` per device kind reads its drivers and builds one FrogReading,
RoadReading or BinReading, or nothing: a reading is built only from values the sensors
really gave (a failed driver is logged once through FaultLog and retried at the next
sample; it never becomes a made-up number). The `Sampler` runs the schedule: frog every
300 s, road 600 s, bin 1800 s by default, changed at any time by the retained config
topic (`apply_config`), with calibration offsets and bin geometry from the same place.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import msgspec

from contract.telemetry import (
    BinReading,
    DeviceConfig,
    FrogReading,
    Kind,
    Reading,
    RoadReading,
    reading_problem,
)
from firmware.clock import Clock
from firmware.drivers.base import Battery, Climate, Distance, Driver, Position, Temperature, Tilt
from firmware.errors import SensorError
from firmware.faults import FaultLog

log = logging.getLogger("firmware.sampler")

DEFAULT_INTERVAL_S: dict[Kind, int] = {"frog": 300, "road": 600, "bin": 1800}
T = TypeVar("T")


def read_or_report(driver: Driver[T] | None, faults: FaultLog) -> T | None:
    """The driver's value, or None after reporting its fault (once)."""
    if driver is None:
        return None
    try:
        value = driver.read()
    except SensorError as exc:
        faults.report(driver.name, f"{type(exc).__name__}: {exc.cause}")
        return None
    except Exception as exc:  # a driver bug must not stop the other sensors or crash-loop the agent
        faults.report(driver.name, f"driver failed unexpectedly: {type(exc).__name__}: {exc}")
        return None
    faults.clear(driver.name)
    return value


@dataclass
class BinGeometry:
    sensor_height_mm: int | None = None  # sensor to the bottom of the empty bin
    bin_depth_mm: int | None = None  # usable depth: full is sensor_height - depth

    def fill_fraction(self, distance_mm: float) -> float | None:
        if not self.sensor_height_mm or not self.bin_depth_mm:
            return None
        fill = (self.sensor_height_mm - distance_mm) / self.bin_depth_mm
        return round(min(max(fill, 0.0), 1.0), 3)


@dataclass
class FrogSource:
    climate: Driver[Climate]
    kind: Kind = "frog"

    def build(self, ts: datetime, unsynced: bool, faults: FaultLog) -> FrogReading | None:
        climate = read_or_report(self.climate, faults)
        if climate is None:
            return None
        return FrogReading(ts=ts, air_temp_c=climate.temp_c, rh_pct=climate.rh_pct, unsynced=unsynced)


@dataclass
class RoadSource:
    surface: Driver[Temperature]
    air: Driver[Climate] | None = None
    state: Driver[str] | None = None  # surface state sensor (dry/damp/wet/ice), when fitted
    position: Driver[Position] | None = None  # a gritter's GPS: no fix, no reading
    kind: Kind = "road"

    def build(self, ts: datetime, unsynced: bool, faults: FaultLog) -> RoadReading | None:
        position = read_or_report(self.position, faults)
        if self.position is not None and position is None:
            return None  # a mobile reading without a place cannot be used
        surface = read_or_report(self.surface, faults)
        air = read_or_report(self.air, faults)
        if surface is None and air is None:
            return None
        state = read_or_report(self.state, faults)
        return RoadReading(ts=ts, surface_temp_c=surface.temp_c if surface else None,
                           air_temp_c=air.temp_c if air else None, rh_pct=air.rh_pct if air else None,
                           surface_state=state if state in ("dry", "damp", "wet", "ice") else None,  # type: ignore[arg-type]
                           lat=position.lat if position else None, lon=position.lon if position else None,
                           unsynced=unsynced)


@dataclass
class BinSource:
    distance: Driver[Distance]
    temperature: Driver[Temperature] | None = None
    tilt: Driver[Tilt] | None = None
    geometry: BinGeometry | None = None
    kind: Kind = "bin"

    def build(self, ts: datetime, unsynced: bool, faults: FaultLog) -> BinReading | None:
        # Temperature first: the ultrasonic driver may use it for the speed of sound.
        temp = read_or_report(self.temperature, faults)
        distance = read_or_report(self.distance, faults)
        tilt = read_or_report(self.tilt, faults)
        if distance is None and temp is None and tilt is None:
            return None
        fill = self.geometry.fill_fraction(distance.distance_mm) if self.geometry and distance else None
        return BinReading(ts=ts, distance_mm=distance.distance_mm if distance else None, fill_fraction=fill,
                          temp_c=temp.temp_c if temp else None, tilt_deg=tilt.degrees if tilt else None,
                          unsynced=unsynced)


ReadingSource = FrogSource | RoadSource | BinSource


def source_drivers(source: ReadingSource) -> list[Driver[Any]]:
    """The drivers a source reads (for --check and for closing them)."""
    return [value for f in dataclasses.fields(source)
            if hasattr(value := getattr(source, f.name), "read")]


def calibrate(reading: Reading, offsets: dict[str, float]) -> Reading:
    """Add per-field offsets (from the config's `calibration`) to the fields present."""
    changes = {name: round(getattr(reading, name) + offset, 3) for name, offset in offsets.items()
               if isinstance(getattr(reading, name, None), float)}
    return msgspec.structs.replace(reading, **changes) if changes else reading


class Sampler:
    def __init__(self, source: ReadingSource, clock: Clock, sink: Callable[[Reading], None], *,
                 interval_s: int | None = None, battery: Driver[Battery] | None = None,
                 drivers_block: bool = True, device_id: str = "device"):
        self.source = source
        self.clock = clock
        self.sink = sink
        self.default_interval_s = interval_s or DEFAULT_INTERVAL_S[source.kind]
        self.interval_s = self.default_interval_s
        self.calibration: dict[str, float] = {}
        self.battery_driver = battery
        self.battery_v: float | None = None
        self.drivers_block = drivers_block  # real drivers sleep: run them off the event loop
        self.faults = FaultLog(logging.getLogger(f"firmware.sampler.{device_id}"))
        self.samples = 0
        self._rescheduled = asyncio.Event()

    def apply_config(self, config: DeviceConfig) -> None:
        interval = config.sample_interval_s or self.default_interval_s
        if interval != self.interval_s:
            log.info("sampling interval %d s -> %d s (config topic)", self.interval_s, interval)
            self.interval_s = interval
            self._rescheduled.set()
        self.calibration = dict(config.calibration)
        if isinstance(self.source, BinSource):
            self.source.geometry = BinGeometry(config.sensor_height_mm, config.bin_depth_mm)

    def sample_once(self) -> Reading | None:
        ts, unsynced = self.clock.now(), not self.clock.synced()
        reading = self.source.build(ts, unsynced, self.faults)
        battery = read_or_report(self.battery_driver, self.faults)
        if battery is not None:
            self.battery_v = battery.volts
        if reading is None:
            return None
        reading = calibrate(reading, self.calibration)
        problem = reading_problem(reading)
        if problem is not None:  # e.g. a miscalibrated sensor: the platform would reject it anyway
            self.faults.report("reading", f"implausible reading not kept: {problem}")
            return None
        self.faults.clear("reading")
        return reading

    async def run(self, until: datetime | None = None) -> None:
        """Sample now, then every interval, until `until` (excluded; simulated runs) or cancelled."""
        last: datetime | None = None
        due = self.clock.now()
        while until is None or due < until:
            step = timedelta(seconds=self.interval_s)
            if due > self.clock.now() + step:  # the wall clock stepped back (NTP at boot): resync
                due = self.clock.now()
            await self._sleep_until(due)
            if self._rescheduled.is_set():  # new interval: count it from the last sample
                self._rescheduled.clear()
                if last is not None:
                    due = max(self.clock.now(), last + timedelta(seconds=self.interval_s))
                continue
            reading = await asyncio.to_thread(self.sample_once) if self.drivers_block else self.sample_once()
            self.samples += 1
            if reading is not None:
                self.sink(reading)
            last, step = due, timedelta(seconds=self.interval_s)
            due = last + step
            now = self.clock.now()
            if due < now:  # fell behind (a suspended Pi): skip to the next slot, do not burst
                due += ((now - due) // step + 1) * step

    async def _sleep_until(self, due: datetime) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep_until(due))
        waker = asyncio.ensure_future(self._rescheduled.wait())
        try:
            await asyncio.wait([sleeper, waker], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

