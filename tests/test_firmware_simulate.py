"""The simulated devices: physics that looks like the real thing, deterministic under a seed."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean

from firmware.clock import SimClock
from firmware.link import MqttOptions
from firmware.sampler import BinSource
from simulation.bins import BinSim, BinSpec
from simulation.fleet import FleetPlan, build_fleet
from simulation.gritter import Route
from simulation.homes import COLD_DAMP, WARM_DRY, HomeSim
from simulation.roads import RoadSim, RoadSite, surface_state
from simulation.seeds import rng_for
from simulation.weather import Weather

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
WEATHER = Weather.seeded(7)


def home_series(profile: object, days: int = 4) -> list[tuple[float, float, float]]:
    home = HomeSim(profile, WEATHER, rng_for("home"), START)  # type: ignore[arg-type]
    series = []
    for k in range(days * 24 * 12):
        ts = START + timedelta(minutes=5 * k)
        home.advance(ts)
        series.append((ts.hour + ts.minute / 60, home.temp_c, home.rh_pct))
    return series


def test_a_cold_damp_house_is_colder_and_damper_than_a_warm_dry_one() -> None:
    damp, dry = home_series(COLD_DAMP), home_series(WARM_DRY)
    assert mean(t for _, t, _ in damp) < mean(t for _, t, _ in dry) - 3
    assert mean(rh for *_, rh in damp) > mean(rh for *_, rh in dry) + 15
    assert 30 < mean(rh for *_, rh in dry) < 55 and 55 < mean(rh for *_, rh in damp) < 95
    assert all(0 <= rh <= 100 and 0 < t < 30 for _, t, rh in damp + dry)


def test_showers_make_morning_humidity_spikes_and_heating_warms_the_house() -> None:
    series = home_series(COLD_DAMP, days=2)
    rises = [b[2] - a[2] for a, b in itertools.pairwise(series) if 6.5 <= a[0] < 8.75]
    assert max(rises) > 3  # a shower: several points of RH within five minutes
    at = {round(h, 2): t for h, t, _ in series[:288]}
    assert at[8.5] > at[6.5] + 2  # heating on from 07:00


def test_a_bridge_cools_faster_and_colder_than_the_road_beside_it() -> None:
    road = RoadSim(RoadSite("road", 0.0), WEATHER, START)
    bridge = RoadSim(RoadSite("bridge", 0.0, bridge=True), WEATHER, START)
    road_t, bridge_t = [], []
    for k in range(3 * 24 * 6):
        ts = START + timedelta(minutes=10 * k)
        road.advance(ts)
        bridge.advance(ts)
        assert road.surface_c is not None and bridge.surface_c is not None
        road_t.append(road.surface_c)
        bridge_t.append(bridge.surface_c)
    assert min(bridge_t) < min(road_t) - 0.5
    assert max(road_t) - min(road_t) > 3  # a daily cycle
    assert surface_state(0.5, -1.0) == "ice" and surface_state(0.5, 2.0) == "wet"
    assert surface_state(0.05, 2.0) == "damp" and surface_state(0.0, -5.0) == "dry"


def test_wet_and_dry_spells_both_happen() -> None:
    hours = [WEATHER.rain_mm_h(START + timedelta(hours=h)) for h in range(24 * 14)]
    wet = [r > 0 for r in hours]
    assert 0.05 < mean(wet) < 0.7
    spells = sum(1 for a, b in itertools.pairwise(wet) if a != b)
    assert spells < len(hours) / 4  # spells last hours, not a coin toss every hour


def test_a_bin_fills_by_day_and_is_emptied_on_its_collection_day() -> None:
    sim = BinSim(BinSpec(collection_weekday=2, base_fill_per_day=0.3, fire_chance_per_day=0,
                         tilt_chance_per_day=0), WEATHER, random.Random(1), START, fill=0.1)
    fills = {}
    for k in range(7 * 48):
        ts = START + timedelta(minutes=30 * k)
        sim.advance(ts)
        fills[ts] = sim.fill
    monday_morning, tuesday_night = fills[START + timedelta(hours=6)], fills[START + timedelta(hours=46)]
    assert tuesday_night > monday_morning + 0.3
    assert fills[START + timedelta(days=2, hours=10)] < 0.1  # Wednesday 09:00 collection
    assert fills[START + timedelta(hours=3)] == fills[START + timedelta(hours=5)]  # nothing thrown at night


def test_a_bin_fire_shows_as_heat_and_a_knock_as_tilt() -> None:
    calm = BinSim(BinSpec(fire_chance_per_day=0, tilt_chance_per_day=0), WEATHER, random.Random(3), START)
    risky = BinSim(BinSpec(fire_chance_per_day=50, tilt_chance_per_day=50), WEATHER, random.Random(3), START)
    excess = {id(calm): 0.0, id(risky): 0.0}
    for k in range(24):
        for sim in (calm, risky):
            sim.advance(START + timedelta(minutes=30 * k))
            excess[id(sim)] = max(excess[id(sim)], sim.temp_c - WEATHER.air_temp_c(sim.time))
    assert excess[id(risky)] > 30 and excess[id(calm)] < 2
    assert risky.tilt_deg == 90.0 and calm.tilt_deg < 10


def test_the_gritter_drives_its_route() -> None:
    route = Route()
    assert 5 < route.length_km < 15
    start = route.where(0.0)
    assert start[:2] == route.points[0] and route.where(route.length_km / 2)[:2] != start[:2]


async def fleet_values(seed: int) -> dict[str, list[object]]:
    """Read every simulated sensor of a small fleet through a simulated day, no broker."""
    plan = FleetPlan(homes=3, roads=2, bins=2, gritters=1, seed=seed, speed=1e9, start=START)
    values: dict[str, list[object]] = {}
    for spec in build_fleet(plan, MqttOptions("127.0.0.1"), Path("/nonexistent")):
        assert isinstance(spec.clock, SimClock)
        if isinstance(spec.source, BinSource) and spec.source.geometry:
            assert spec.source.geometry.bin_depth_mm == 1000
        readings = values.setdefault(spec.device_id, [])
        for k in range(48):
            await spec.clock.sleep_until(START + timedelta(minutes=30 * k))  # speed 1e9: no real wait
            for driver in spec.drivers():
                try:
                    readings.append(driver.read())
                except Exception as exc:  # NoFix at the gritter's cold start, blind-zone pings
                    readings.append(type(exc).__name__)
    return values


async def test_the_same_seed_gives_the_same_fleet_and_another_seed_does_not() -> None:
    first, again, other = await fleet_values(11), await fleet_values(11), await fleet_values(12)
    assert first == again
    assert first.keys() == other.keys() and first != other
    assert sum(len(v) for v in first.values()) > 8 * 48
