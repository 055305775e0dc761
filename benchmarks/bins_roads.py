"""`cityops bench bins-roads`: how much the demo town's bin rounds change on the road network.

The demo town (democity.town, built in memory: no database) and every one of its bins, all to
be emptied (load: half the bin), planned twice from its waste depot with the same fleet, seed
and search: on straight lines x1.3 at the depot's 25 km/h (what plans did before the road
network), and on the road network (rules.routing.roads, as the bins pipeline does: the same
`on_roads`). Per truck and in total: km and driving minutes as each plan estimates them, and
the straight-line plan's own order driven on the roads (what its estimate really costs), and
the time the road-network matrix took. Speeds by road class are the settings' (CITYOPS_BINS__*).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cityops.settings import BinsSettings, Settings
from democity.town import build_town
from pipelines.bins.pipeline import on_roads
from rules.gritting.network import parse_network
from rules.routing.plan import CollectionPlan, Fleet, PlanBin, TruckRoute, plan_collection
from rules.routing.roads import RoadMatrices

SHIFT_START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
LOAD_SHARE = 0.5                     # each bin half full


@dataclass(frozen=True)
class TruckLine:
    truck: int
    bins: int
    km: float
    drive_min: float
    work_min: float                  # leave to return, with service at the bins


@dataclass(frozen=True)
class Comparison:
    bins: int
    snapped: int
    matrix_s: float
    straight: list[TruckLine]
    straight_on_roads: list[TruckLine]   # the straight plan's order, driven on the roads
    roads: list[TruckLine]
    notes: list[str]


def _lines(plan: CollectionPlan) -> list[TruckLine]:
    return [TruckLine(r.truck, len(r.stops), r.distance_m / 1000, sum(leg.duration_s for leg in r.legs) / 60,
                      (r.end - r.start).total_seconds() / 60) for r in plan.routes]


def _driven(route: TruckRoute, index: dict[str, int], roads: RoadMatrices) -> TruckLine:
    """A route's stops in its own order (tipping between trips) measured on the road matrices."""
    metres = seconds = 0
    at, trip = 0, route.stops[0].trip if route.stops else 1
    for stop in route.stops:
        if stop.trip != trip:
            metres += int(roads.distance_m[at, 0])
            seconds += int(roads.duration_s[at, 0])
            at, trip = 0, stop.trip
        metres += int(roads.distance_m[at, index[stop.device_id]])
        seconds += int(roads.duration_s[at, index[stop.device_id]])
        at = index[stop.device_id]
    metres += int(roads.distance_m[at, 0])
    seconds += int(roads.duration_s[at, 0])
    return TruckLine(route.truck, len(route.stops), metres / 1000, seconds / 60, float("nan"))


def compare(bins_settings: BinsSettings, *, town_seed: int = 1, seed: int = 0, time_limit_s: float = 30.0,
            max_iterations: int = 2_000) -> Comparison:
    town = build_town(town_seed)
    network = parse_network(town.network_geojson(), "demo town")
    depot = town.waste_depot
    fleet = Fleet(depot.lon, depot.lat, depot.trucks, depot.capacity_l, SHIFT_START, max_trips=depot.max_trips + 1)
    bins = [PlanBin(b.device_id, b.lon, b.lat, round(b.volume_l * LOAD_SHARE), True) for b in town.bins]
    began = time.perf_counter()
    roads = on_roads(network, fleet, bins, bins_settings)
    matrix_s = time.perf_counter() - began
    assert roads is not None
    straight = plan_collection(bins, fleet, seed=seed, time_limit_s=time_limit_s, max_iterations=max_iterations)
    on_the_roads = plan_collection(bins, fleet, seed=seed, time_limit_s=time_limit_s, max_iterations=max_iterations,
                                   roads=roads)
    index = {b.device_id: k + 1 for k, b in enumerate(bins)}
    return Comparison(len(bins), sum(a.snapped for a in roads.anchors[1:]), matrix_s, _lines(straight),
                      [_driven(r, index, roads) for r in straight.routes], _lines(on_the_roads),
                      on_the_roads.notes)


def report(c: Comparison) -> str:
    def total(lines: list[TruckLine]) -> tuple[float, float]:
        return sum(t.km for t in lines), sum(t.drive_min for t in lines)

    out = [f"demo town: {c.bins} bins, all to empty; {c.snapped} snapped to a street; "
           f"road-network matrix (depot + {c.bins} bins) {c.matrix_s:.2f} s",
           f"{'plan':<34}{'truck':>6}{'bins':>6}{'km':>9}{'drive min':>11}{'work min':>10}"]
    for title, lines in (("straight lines x1.3 (estimate)", c.straight),
                         ("straight-line order, on the roads", c.straight_on_roads),
                         ("road network", c.roads)):
        for t in lines:
            work = "" if t.work_min != t.work_min else f"{t.work_min:.0f}"
            out.append(f"{title:<34}{t.truck:>6}{t.bins:>6}{t.km:>9.1f}{t.drive_min:>11.0f}{work:>10}")
        km, minutes = total(lines)
        out.append(f"{title:<34}{'all':>6}{sum(t.bins for t in lines):>6}{km:>9.1f}{minutes:>11.0f}")
    (km_s, min_s), (km_d, min_d), (km_r, min_r) = total(c.straight), total(c.straight_on_roads), total(c.roads)
    out.append(f"road plan vs straight estimate: {km_r - km_s:+.1f} km ({(km_r / km_s - 1) * 100:+.0f} %), "
               f"{min_r - min_s:+.0f} driving min ({(min_r / min_s - 1) * 100:+.0f} %)")
    out.append(f"road plan vs the straight plan driven on the roads: {km_r - km_d:+.1f} km, "
               f"{min_r - min_d:+.0f} driving min")
    out += [f"note: {n}" for n in c.notes]
    return "\n".join(line.rstrip() for line in out)


def register_bench(which: argparse._SubParsersAction[Any]) -> None:
    bench = which.add_parser("bins-roads", help="bins: demo-town rounds on straight lines vs the road network",
                             description=__doc__.split("\n\n")[0] if __doc__ else None)
    bench.add_argument("--town-seed", type=int, default=1, help="the demo town's seed (default 1)")
    bench.add_argument("--seed", type=int, default=0, help="the solver's seed (default 0)")
    bench.add_argument("--plan-seconds", type=float, default=30.0, help="each plan's time limit (default 30)")
    bench.add_argument("--iterations", type=int, default=2_000, help="each plan's iteration limit (default 2000)")
    bench.set_defaults(handler=run_bench)


async def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.plan_seconds <= 0 or args.iterations <= 0:
        print("error: --plan-seconds and --iterations must be positive")
        return 2
    print(report(compare(settings.bins, town_seed=args.town_seed, seed=args.seed, time_limit_s=args.plan_seconds,
                         max_iterations=args.iterations)))
    return 0
