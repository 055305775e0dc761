"""A synthetic city for the gritting benchmark: a street grid, sensors cooling through the evening.

The grid's segments are 150 m long, split into routes by district, with thermal offsets
that make a few "cold" districts and bridges; sensors have four hours of 10-minute
readings, cooling at different rates, some wet, some dead (silent or stuck), and a gritter
drives along one street. Deterministic under `seed`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from rules.gritting.assess import MobilePoints
from rules.gritting.network import Depot, RoadNetwork, Route, Segment
from rules.gritting.sensors import SensorHistory

SPACING_DEG_LAT = 0.00135     # ~150 m
LON0, LAT0 = -1.90, 52.48


@dataclass(frozen=True)
class City:
    network: RoadNetwork
    sensors: list[SensorHistory]
    mobile: MobilePoints
    now: datetime


def grid_network(segments: int, routes: int = 100, seed: int = 0) -> RoadNetwork:
    side = max(2, math.ceil(math.sqrt(segments / 2)) + 1)
    rng = np.random.default_rng(seed)
    dlon = SPACING_DEG_LAT / math.cos(math.radians(LAT0))
    out: list[Segment] = []
    districts = max(1, round(math.sqrt(routes)))
    cold = rng.normal(0.0, 1.0, (districts, districts))

    def node(i: int, j: int) -> tuple[float, float]:
        return round(LON0 + j * dlon, 6), round(LAT0 + i * SPACING_DEG_LAT, 6)

    for i in range(side):
        for j in range(side):
            for di, dj, name in ((0, 1, f"Street {i}"), (1, 0, f"Avenue {j}")):
                if len(out) >= segments or i + di >= side or j + dj >= side:
                    continue
                di_, dj_ = min(districts - 1, i * districts // side), min(districts - 1, j * districts // side)
                route = f"R{di_ * districts + dj_:03d}"
                bridge = bool(rng.random() < 0.01)
                offset = float(cold[di_, dj_] + rng.normal(0, 0.5) - (1.5 if bridge else 0.0))
                out.append(Segment(f"g{len(out):06d}", name, int(rng.choice([1, 2, 3], p=[0.2, 0.3, 0.5])), 150.0,
                                   7.3, (node(i, j), node(i + di, j + dj)), round(offset, 2), None, bridge, route))
    depots = tuple(Depot(f"D{k}", f"Depot {k}", *node(k * side // 4, k * side // 4)) for k in range(4))
    route_ids = sorted({s.route_id for s in out if s.route_id})
    routes_ = tuple(Route(r, r, depots[k % len(depots)].depot_id, 6000.0, 2, 3) for k, r in enumerate(route_ids))
    return RoadNetwork(tuple(out), depots, routes_)


def city(segments: int = 50_000, sensors: int = 500, seed: int = 0) -> City:
    network = grid_network(segments, seed=seed)
    rng = np.random.default_rng(seed + 1)
    now = datetime(2026, 1, 6, 22, 0, tzinfo=UTC)
    now_h = now.timestamp() / 3600.0
    lons = np.array([s.coords[0][0] for s in network.segments])
    lats = np.array([s.coords[0][1] for s in network.segments])
    t = now_h - np.arange(24, -1, -1) / 6.0                    # 4 hours, every 10 minutes
    histories = []
    for k in range(sensors):
        where = int(rng.integers(0, len(network.segments)))
        start = float(rng.uniform(-1.0, 7.0))
        rate = float(rng.uniform(-1.2, 0.1))
        rst = start + rate * (t - now_h) + rng.normal(0, 0.05, t.size)
        age = 0.0
        if rng.random() < 0.02:                                 # silent for hours
            age = 5.0
        elif rng.random() < 0.02:                               # stuck
            rst = np.full(t.size, 3.5)
        keep = t <= now_h - age
        air = rst + 1.5
        rh = np.full(t.size, float(rng.uniform(70, 99)))
        state = str(rng.choice(["dry", "damp", "wet"], p=[0.5, 0.3, 0.2]))
        histories.append(SensorHistory(f"road-{k:04d}", float(lons[where]), float(lats[where]), t[keep], rst[keep],
                                       air[keep], rh[keep], (state,) * int(keep.sum()),
                                       network.segments[where].segment_id))
    steps = np.arange(120)
    gx = lons[0] + steps * (lons[1] - lons[0]) / 4 + rng.normal(0, 3e-5, steps.size)
    gy = np.full(steps.size, lats[0]) + rng.normal(0, 3e-5, steps.size)
    mobile = MobilePoints(["gritter-1"] * steps.size, now_h - (steps[::-1]) / 240.0, gx, gy,
                          rng.normal(0.0, 0.5, steps.size), ["damp"] * steps.size)
    return City(network, histories, mobile, now)
