"""The sampler: readings only from real values, faults logged once and retried, the schedule
and the config topic's changes to it."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar

import pytest

from contract.telemetry import DeviceConfig, FrogReading, Reading, RoadReading
from firmware.clock import SimClock
from firmware.drivers.base import Climate, Distance, Temperature
from firmware.drivers.ds18b20 import DS18B20Sensor
from firmware.errors import SensorAbsent
from firmware.sampler import BinGeometry, BinSource, FrogSource, RoadSource, Sampler
from simulation.drivers import SimGPS, SimGritterSurface
from simulation.gritter import GritterSim, Route
from simulation.seeds import rng_for
from simulation.weather import Weather

START = datetime(2026, 1, 5, tzinfo=UTC)
T = TypeVar("T")


class Unplugged:
    """A climate sensor that is absent for its first `failures` reads, then works."""

    def __init__(self, failures: int):
        self.name = "frog-1/climate/sht31"
        self.failures = failures
        self.reads = 0

    def read(self) -> Climate:
        self.reads += 1
        if self.reads <= self.failures:
            raise SensorAbsent(self.name, "no answer at 0x44 on bus 1")
        return Climate(19.5, 61.0)

    def close(self) -> None:
        pass


class Steady(Generic[T]):
    """A sensor that always reads the same value."""

    name = "steady"

    def __init__(self, value: T):
        self.value = value

    def read(self) -> T:
        return self.value

    def close(self) -> None:
        pass


def sampler_for(source: FrogSource | RoadSource | BinSource, out: list[Reading], speed: float = 1e6,
                ) -> Sampler:
    return Sampler(source, SimClock(START, speed), out.append, drivers_block=False, device_id="frog-1")


async def test_an_absent_sensor_is_logged_once_retried_every_sample_and_never_a_reading(
        caplog: pytest.LogCaptureFixture) -> None:
    driver, out = Unplugged(failures=6), []
    sampler = sampler_for(FrogSource(driver), out)
    with caplog.at_level(logging.INFO, logger="firmware.sampler"):
        await sampler.run(until=START + timedelta(minutes=50))  # 10 samples
    assert driver.reads == 10 and sampler.samples == 10
    assert [r.ts for r in out] == [START + timedelta(minutes=5 * k) for k in range(6, 10)]
    assert all(isinstance(r, FrogReading) and r.air_temp_c == 19.5 for r in out)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "SensorAbsent: no answer at 0x44" in warnings[0].getMessage()
    assert "recovered after 6 failed attempt(s)" in caplog.text


async def test_a_buggy_driver_is_contained_and_the_other_sensors_still_report(
        caplog: pytest.LogCaptureFixture) -> None:
    class Buggy:
        name = "bin-1/temperature"

        def read(self) -> Temperature:
            raise ZeroDivisionError("division by zero")

        def close(self) -> None:
            pass

    sampler = sampler_for(BinSource(Steady(Distance(650.0, 7)), temperature=Buggy()), [])
    with caplog.at_level(logging.WARNING):
        readings = [sampler.sample_once() for _ in range(3)]
    assert all(r is not None and r.distance_mm == 650.0 and r.temp_c is None for r in readings)  # type: ignore[union-attr]
    assert caplog.text.count("driver failed unexpectedly: ZeroDivisionError") == 1


async def test_a_crc_failure_on_the_road_probe_gives_no_reading(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    probe = tmp_path / "28-0316a2795cff"
    probe.mkdir()
    (probe / "w1_slave").write_text("72 01 4b 46 7f ff 0e 10 57 : crc=c3 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")
    out: list[Reading] = []
    sampler = sampler_for(RoadSource(DS18B20Sensor("road-1/surface", root=tmp_path)), out)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert sampler.sample_once() is None
    assert caplog.text.count("ChecksumError: 1-wire CRC check failed") == 1


async def test_a_gritter_without_a_gps_fix_publishes_nothing_until_it_has_one(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = SimClock(START, 1e6)
    gritter = GritterSim(Route(), Weather.seeded(1), START, cold_start_s=900)
    source = RoadSource(SimGritterSurface("g/ir", gritter, clock, rng_for(1)), position=SimGPS("g/gps", gritter, clock))
    out: list[Reading] = []
    sampler = Sampler(source, clock, out.append, interval_s=60, drivers_block=False)
    with caplog.at_level(logging.WARNING):
        await sampler.run(until=START + timedelta(minutes=30))
    assert sampler.samples == 30 and len(out) == 15  # the first 15 minutes had no fix
    assert all(isinstance(r, RoadReading) and r.lat is not None and r.ts >= START + timedelta(minutes=15)
               for r in out)
    assert caplog.text.count("NoFix") == 1


async def test_the_config_topic_changes_interval_calibration_and_bin_geometry() -> None:
    out: list[Reading] = []
    sampler = sampler_for(FrogSource(Steady(Climate(20.0, 50.0))), out)
    assert sampler.interval_s == 300
    sampler.apply_config(DeviceConfig(sample_interval_s=60, calibration={"air_temp_c": -0.4, "rh_pct": 2.0}))
    await sampler.run(until=START + timedelta(minutes=3))
    assert [r.ts for r in out] == [START + timedelta(minutes=k) for k in range(3)]
    assert out[0] == FrogReading(ts=START, air_temp_c=19.6, rh_pct=52.0)
    sampler.apply_config(DeviceConfig())  # back to the default
    assert sampler.interval_s == 300 and sampler.calibration == {}

    bins: list[Reading] = []
    bin_sampler = sampler_for(BinSource(Steady(Distance(800.0, 7))), bins)
    bin_sampler.apply_config(DeviceConfig(sensor_height_mm=1300, bin_depth_mm=1000))
    reading = bin_sampler.sample_once()
    assert reading is not None and reading.fill_fraction == 0.5  # type: ignore[union-attr]
    assert BinGeometry(1300, 1000).fill_fraction(100.0) == 1.0  # clipped, never above full


async def test_an_implausible_calibrated_value_is_not_kept() -> None:
    out: list[Reading] = []
    sampler = sampler_for(FrogSource(Steady(Climate(20.0, 99.5))), out)
    sampler.apply_config(DeviceConfig(calibration={"rh_pct": 3.0}))
    assert sampler.sample_once() is None



class SteppingClock:
    """An unsynchronised wall clock that NTP steps back two hours after the third sample."""

    def __init__(self) -> None:
        self.t = START

    def now(self) -> datetime:
        return self.t

    def synced(self) -> bool:
        return False

    async def sleep_until(self, when: datetime) -> None:
        self.t = max(self.t, when)


async def test_readings_before_clock_sync_are_flagged_and_a_clock_stepped_back_does_not_stall() -> None:
    clock, out = SteppingClock(), []

    def sink(reading: Reading) -> None:
        out.append(reading)
        if len(out) == 3:
            clock.t -= timedelta(hours=2)

    sampler = Sampler(FrogSource(Steady(Climate(20.0, 50.0))), clock, sink, drivers_block=False)
    await sampler.run(until=START + timedelta(minutes=30))
    assert all(r.unsynced for r in out)
    assert out[3].ts == START + timedelta(minutes=10) - timedelta(hours=2)  # at once, not 2 h later
    assert [b.ts - a.ts for a, b in itertools.pairwise(out[3:])] == [timedelta(minutes=5)] * (len(out) - 4)


def test_a_roadside_air_sensor_adds_humidity_for_the_frost_point() -> None:
    source = RoadSource(Steady(Temperature(-1.5)), air=Steady(Climate(-3.0, 88.0)))
    reading = sampler_for(source, []).sample_once()
    assert isinstance(reading, RoadReading)
    assert (reading.surface_temp_c, reading.air_temp_c, reading.rh_pct) == (-1.5, -3.0, 88.0)
