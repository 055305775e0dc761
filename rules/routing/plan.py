"""Today's collection plan as a prize-collecting VRP (Wouda et al. 2024), solved with PyVRP.

Bins that would overflow are required; the others are optional, each with a prize (its
priority score times `prize_m_per_point`, in metres of driving it is worth). Trucks start and
end at the depot, carry `capacity` (litres), work a shift, drive at `speed_kmh` on great-circle
distances scaled by `detour_factor` (streets are not straight), spend `service_s` at each
bin and honour its time window. An optional driver break of `break_min` is taken out of the
shift and placed after the stop nearest mid-shift (PyVRP has no break activity; this is the
simple, safe reading: the work fits the shift minus the break). With `max_trips` > 1 a truck
may go back to the depot to tip and go out again (PyVRP reload depots); capacity holds per trip.

With the road network (`roads`, rules.routing.roads.road_matrices over the depot then the
bins, in this order) the distances and drive times come from the streets instead (one-way
streets, the river's bridges, speeds by road class; asymmetric matrices are fine for PyVRP),
each stop is named by its street, and each leg is drawn along the roads with turn-by-turn
directions. Without one the plan says so: straight lines x `detour_factor` at `speed_kmh`.

Deterministic under `seed` when the iteration limit stops the search before the time limit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvrp

from rules.errors import RoutingError
from rules.geo import distance_matrix_m
from rules.routing import solver
from rules.routing.roads import DEPOT_LABEL, LegPath, RoadMatrices

log = logging.getLogger("rules.routing.plan")

MUST_EMPTY_PRIZE_M = 1_000_000    # a must-empty bin, when they do not all fit: worth any detour
ROADS, STRAIGHT = "roads", "straight"


@dataclass(frozen=True)
class PlanBin:
    device_id: str
    lon: float
    lat: float
    load_l: int                           # what the truck takes on, litres
    mandatory: bool
    score: float = 0.0                    # priority 0..100, the prize of an optional bin
    window_s: tuple[int, int] | None = None   # from the shift start


@dataclass(frozen=True)
class Fleet:
    depot_lon: float
    depot_lat: float
    trucks: int
    capacity_l: int
    shift_start: datetime
    shift_h: float = 8.0
    break_min: float = 0.0
    speed_kmh: float = 25.0
    service_s: int = 90
    detour_factor: float = 1.3
    prize_m_per_point: float = 100.0
    max_trips: int = 1                    # >1: the truck may tip at the depot and go out again

    def __post_init__(self) -> None:
        if self.trucks <= 0 or self.capacity_l <= 0:
            raise RoutingError(f"need at least one truck with a positive capacity, got {self.trucks} trucks "
                               f"of {self.capacity_l} l")
        if self.shift_h <= 0 or not 0 <= self.break_min < self.shift_h * 60:
            raise RoutingError(f"a {self.shift_h} h shift with a {self.break_min} min break cannot work")
        if self.speed_kmh <= 0:
            raise RoutingError("the truck speed must be positive")
        if self.max_trips < 1:
            raise RoutingError(f"a truck makes at least one trip, got max_trips={self.max_trips}")
        _check_coordinates("the depot", self.depot_lon, self.depot_lat)

    @property
    def working_s(self) -> int:
        return int((self.shift_h * 60 - self.break_min) * 60)


@dataclass(frozen=True)
class Stop:
    device_id: str
    lon: float
    lat: float
    arrive: datetime
    leave: datetime
    load_after_l: int                     # in the truck after this bin, on this trip
    trip: int = 1
    street: str | None = None             # the street the bin was snapped to (None: no road network)
    directions: tuple[str, ...] = ()      # how to get here from the stop (or depot) before


@dataclass(frozen=True)
class TruckRoute:
    truck: int
    stops: list[Stop]
    distance_m: int
    start: datetime
    end: datetime
    load_l: int                           # everything collected, over all trips
    break_after: str | None               # the stop after which the driver takes the break
    trip_loads_l: tuple[int, ...] = ()    # per trip; each within the capacity
    legs: tuple[LegPath, ...] = ()        # one per stop (arriving at it), then the return to the depot

    def geojson(self, depot: tuple[float, float]) -> dict[str, Any]:
        """One LineString per leg (`order`: the stop it arrives at; the return after the last stop)
        and a Point per stop, in driving order; the truck's totals on the collection."""
        legs = self.legs or self._straight_legs(depot)
        features: list[dict[str, Any]] = []
        for k, leg in enumerate(legs):
            features.append({"type": "Feature",
                             "geometry": {"type": "LineString", "coordinates": [list(c) for c in leg.coords]},
                             "properties": {"truck": self.truck, "order": k + 1, "distance_m": leg.distance_m,
                                            "duration_s": leg.duration_s, "geometry": leg.geometry,
                                            "directions": list(leg.directions)}})
            if k < len(self.stops):
                s = self.stops[k]
                features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                                 "properties": {"order": k + 1, "device_id": s.device_id, "street": s.street,
                                                "arrive": s.arrive.isoformat(), "load_after_l": s.load_after_l,
                                                "trip": s.trip}})
        return {"type": "FeatureCollection", "features": features,
                "properties": {"truck": self.truck, "distance_m": self.distance_m, "load_l": self.load_l,
                               "start": self.start.isoformat(), "end": self.end.isoformat(),
                               "geometry": legs[0].geometry if legs else STRAIGHT}}

    def _straight_legs(self, depot: tuple[float, float]) -> list[LegPath]:
        """Straight lines between the stops (tipping at the depot between trips), for a route built without legs."""
        legs = []
        places = [(depot, 0), *(((s.lon, s.lat), s.trip) for s in self.stops), (depot, 0)]
        for (a, trip_a), (b, trip_b) in pairwise(places):
            via = (depot,) if trip_a and trip_b and trip_a != trip_b else ()
            legs.append(LegPath(0, 0, (a, *via, b), (), STRAIGHT))
        return legs


@dataclass
class CollectionPlan:
    routes: list[TruckRoute]
    skipped: list[str]                    # optional bins left for another day
    missed_mandatory: list[str]           # required bins the plan could not fit
    feasible: bool
    distance_m: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    geometry: str = STRAIGHT              # ROADS: distances, times and lines follow the road network

    @property
    def visited(self) -> list[str]:
        return [s.device_id for r in self.routes for s in r.stops]


def plan_collection(bins: list[PlanBin], fleet: Fleet, *, seed: int = 0, time_limit_s: float = 30.0,
                    max_iterations: int | None = 2_000, roads: RoadMatrices | None = None) -> CollectionPlan:
    """Today's plan; with `roads` (over the depot, then `bins` in order) it follows the road network."""
    _check_bins(bins, fleet)
    if not bins:
        return CollectionPlan([], [], [], True, 0, 0.0, ["no bins to plan"], ROADS if roads else STRAIGHT)
    if roads is not None:
        if len(roads.anchors) != len(bins) + 1:
            raise RoutingError(f"the road matrices cover {len(roads.anchors)} places, the plan the depot and "
                               f"{len(bins)} bins", hint="build them over the depot, then the same bins in order")
        distance, duration = roads.distance_m, roads.duration_s
    else:
        lon = np.array([fleet.depot_lon, *(b.lon for b in bins)])
        lat = np.array([fleet.depot_lat, *(b.lat for b in bins)])
        distance = np.rint(distance_matrix_m(lon, lat) * fleet.detour_factor).astype(np.int64)
        duration = np.rint(distance / (fleet.speed_kmh / 3.6)).astype(np.int64)
    _check_reachable(bins, fleet, duration)
    result = solver.solve(_problem(bins, fleet, distance, duration), seed=seed, time_limit_s=time_limit_s,
                          max_iterations=max_iterations)
    if not result.is_feasible():
        # the must-empty bins do not all fit: ask again with them optional but worth more than any
        # detour, so the plan is one the crews can drive and the bins left out are named
        log.warning("the mandatory bins do not fit %d trucks; planning as many as fit", fleet.trucks)
        result = solver.solve(_problem(bins, fleet, distance, duration, relax=True), seed=seed,
                              time_limit_s=time_limit_s, max_iterations=max_iterations)
        if not result.is_feasible():
            raise RoutingError("no plan fits the shift, capacity and time windows, even leaving bins out",
                               hint="check the bins' time windows against the shift")
    return _plan(result, bins, fleet, distance, duration, roads)


def _check_coordinates(what: str, lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise RoutingError(f"{what} has impossible coordinates lon={lon}, lat={lat}",
                           hint="longitude -180..180 and latitude -90..90, in degrees (WGS84)")


def _check_bins(bins: list[PlanBin], fleet: Fleet) -> None:
    seen: set[str] = set()
    for b in bins:
        _check_coordinates(f"bin {b.device_id}", b.lon, b.lat)
        if b.load_l > fleet.capacity_l:
            raise RoutingError(f"bin {b.device_id} holds {b.load_l} l, more than a truck's capacity of "
                               f"{fleet.capacity_l} l", hint="check the truck capacity (litres) and the bin volume")
        if b.load_l < 0:
            raise RoutingError(f"bin {b.device_id} has a negative load {b.load_l}")
        if b.device_id in seen:
            raise RoutingError(f"bin {b.device_id} is listed twice")
        seen.add(b.device_id)


def _check_reachable(bins: list[PlanBin], fleet: Fleet, duration: npt.NDArray[np.int64]) -> None:
    round_trip = duration[0, 1:] + duration[1:, 0] + fleet.service_s
    for b, seconds in zip(bins, round_trip, strict=True):
        if b.mandatory and seconds > fleet.working_s:
            raise RoutingError(f"bin {b.device_id} is {seconds / 3600:.1f} h there and back from the depot, "
                               f"longer than the {fleet.working_s / 3600:.1f} h working shift",
                               hint="check the bin's and the depot's coordinates")


def _problem(bins: list[PlanBin], fleet: Fleet, distance: npt.NDArray[np.int64],
             duration: npt.NDArray[np.int64], relax: bool = False) -> pyvrp.ProblemData:
    # PyVRP wants integer coordinates only for display; the matrices carry the metric
    locations = [pyvrp.Location(x=0, y=0) for _ in range(len(bins) + 1)]
    clients = []
    for i, b in enumerate(bins, start=1):
        early, late = b.window_s or (0, fleet.working_s)
        clients.append(pyvrp.Client(location=i, delivery=[b.load_l], service_duration=fleet.service_s,
                                    tw_early=early, tw_late=late, required=b.mandatory and not relax,
                                    prize=_prize(b, fleet, relax),
                                    name=b.device_id))
    trucks = pyvrp.VehicleType(num_available=fleet.trucks, capacity=[fleet.capacity_l], tw_early=0,
                               tw_late=fleet.working_s, shift_duration=fleet.working_s,
                               reload_depots=[0] if fleet.max_trips > 1 else [],
                               max_reloads=fleet.max_trips - 1)
    return solver.problem_data(locations, clients, trucks, distance, duration)


def _prize(b: PlanBin, fleet: Fleet, relax: bool) -> int:
    if b.mandatory:
        return MUST_EMPTY_PRIZE_M if relax else 0
    return int(b.score * fleet.prize_m_per_point)


def _leg(i: int, j: int, names: list[str], distance: npt.NDArray[np.int64], duration: npt.NDArray[np.int64],
         places: list[tuple[float, float]], roads: RoadMatrices | None) -> LegPath:
    if roads is not None:
        return roads.leg(i, j, names[i], names[j])
    return LegPath(int(distance[i, j]), int(duration[i, j]), (places[i], places[j]), (), STRAIGHT)


def _legs(visits: list[int], trips: list[int], names: list[str], distance: npt.NDArray[np.int64],
          duration: npt.NDArray[np.int64], places: list[tuple[float, float]], roads: RoadMatrices | None
          ) -> list[LegPath]:
    """A truck's legs: to each stop (through the depot to tip when a new trip starts), then home."""
    legs: list[LegPath] = []
    for k, (idx, trip) in enumerate(zip(visits, trips, strict=True)):
        before = visits[k - 1] if k else 0
        if k and trips[k - 1] != trip:
            back = _leg(before, 0, names, distance, duration, places, roads)
            out = _leg(0, idx, names, distance, duration, places, roads)
            legs.append(LegPath(back.distance_m + out.distance_m, back.duration_s + out.duration_s,
                                back.coords + out.coords[1:],
                                (*back.directions, "Tip at the depot, then go out again.", *out.directions),
                                ROADS if back.geometry == out.geometry == ROADS else STRAIGHT))
        else:
            legs.append(_leg(before, idx, names, distance, duration, places, roads))
    legs.append(_leg(visits[-1] if visits else 0, 0, names, distance, duration, places, roads))
    return legs


def _plan(result: pyvrp.Result, bins: list[PlanBin], fleet: Fleet, distance: npt.NDArray[np.int64],
          duration: npt.NDArray[np.int64], roads: RoadMatrices | None) -> CollectionPlan:
    routes: list[TruckRoute] = []
    at = fleet.shift_start
    names = [DEPOT_LABEL, *(f"bin {b.device_id}" for b in bins)]
    places = [(fleet.depot_lon, fleet.depot_lat), *((b.lon, b.lat) for b in bins)]
    streets = roads.streets if roads is not None else [None] * len(places)
    for number, route in enumerate(result.best.routes(), start=1):
        visits = [(v.idx, v.start_time, v.end_time, v.trip + 1) for v in route.schedule() if v.is_client()]
        legs = _legs([idx + 1 for idx, *_ in visits], [trip for *_, trip in visits], names, distance, duration, places,
                     roads)
        halfway = route.start_time() + (route.end_time() - route.start_time()) / 2
        break_index = next((k for k, (_, start, _, _) in enumerate(visits) if start >= halfway), None) \
            if fleet.break_min > 0 else None
        pause = timedelta(minutes=fleet.break_min)
        stops: list[Stop] = []
        trip_loads = [0] * (max((trip for *_, trip in visits), default=0))
        for k, (idx, start, end, trip) in enumerate(visits):
            shift = pause if break_index is not None and k >= break_index else timedelta(0)
            b = bins[idx]
            trip_loads[trip - 1] += b.load_l
            stops.append(Stop(b.device_id, b.lon, b.lat, at + timedelta(seconds=start) + shift,
                              at + timedelta(seconds=end) + shift, trip_loads[trip - 1], trip, streets[idx + 1],
                              legs[k].directions))
        end_shift = pause if break_index is not None else timedelta(0)
        routes.append(TruckRoute(number, stops, int(route.distance()), at + timedelta(seconds=route.start_time()),
                                 at + timedelta(seconds=route.end_time()) + end_shift, sum(trip_loads),
                                 stops[break_index - 1].device_id if break_index else None,
                                 tuple(load for load in trip_loads if load), tuple(legs)))
    visited = {s.device_id for r in routes for s in r.stops}
    missed = [b.device_id for b in bins if b.mandatory and b.device_id not in visited]
    skipped = [b.device_id for b in bins if not b.mandatory and b.device_id not in visited]
    notes = []
    if missed:
        notes.append(f"{len(missed)} bins that must be emptied do not fit {fleet.trucks} trucks of "
                     f"{fleet.capacity_l} l in a {fleet.shift_h:g} h shift: add a truck or a second trip")
    if roads is not None:
        snapped = sum(a.snapped for a in roads.anchors[1:])
        notes.append(f"distances and times follow the road network: {snapped} of {len(bins)} bins on a street")
        notes += roads.notes
    else:
        notes.append(f"no road network imported: distances are straight lines x{fleet.detour_factor:g} and the "
                     "map draws straight lines")
    return CollectionPlan(routes, skipped, missed, not missed, sum(r.distance_m for r in routes), result.runtime,
                          notes, ROADS if roads is not None else STRAIGHT)
