"""A route's driving order: its segments to treat as a capacitated arc routing problem.

Every segment of the network is an edge (one-way ones only forwards) so the gritter can
drive along any road without spreading (deadheading); the route's segments to treat are
the required edges, each with the salt of one treatment (for "2 x 15" rows the plan is
the first of the two treatments, and the instructions say so); the vehicle's salt
capacity bounds each trip, and a gritter may go back to the depot to reload up to
`max_trips` times. The solver is rules.routing.carp (PyVRP). A segment needing more salt
than a full load, or cut off from the depot, is left out of the plan with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.errors import RoutingError
from rules.gritting.instructions import junction_names, legs, oriented, trip_steps
from rules.gritting.network import RoadNetwork, Route
from rules.routing.carp import ArcPlan, Edge, Task, plan_arc_routes


@dataclass(frozen=True)
class Treatment:
    """What one segment to treat needs: g/m² per treatment, how many, the salt of one treatment."""

    rate_g_m2: float
    treatments: int
    salt_kg: float


@dataclass(frozen=True)
class Speeds:
    spreading_kmh: float = 30.0
    deadhead_kmh: float = 40.0
    reload_min: float = 15.0


@dataclass
class RoutePlan:
    route_id: str
    feasible: bool
    distance_m: float
    trips: int
    duration_h: float
    geojson: dict[str, Any]
    instructions: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    solve_s: float = 0.0
    served: list[str] = field(default_factory=list)
    arc: ArcPlan | None = None
    seed: int | None = None


def plan_route(network: RoadNetwork, route: Route, treat: Mapping[str, Treatment], *, seed: int = 1,
               time_limit_s: float | None = 10.0, max_iterations: int | None = None,
               speeds: Speeds | None = None) -> RoutePlan:
    speeds = speeds or Speeds()
    depot = network.depot(route.depot_id)
    depot_node = network.depot_node(route.depot_id)
    notes: list[str] = []
    cut = set(network.unreachable(route.route_id))
    tasks: list[Task] = []
    for segment_id, need in treat.items():
        if segment_id in cut:
            notes.append(f"segment {segment_id} is not connected to {depot.name}: not planned, treat it separately")
        elif need.salt_kg > route.salt_capacity_kg:
            notes.append(f"segment {segment_id} needs {need.salt_kg:,.1f} kg, more than a full load of "
                         f"{route.salt_capacity_kg:,.1f} kg: not planned; split it in the network file")
        elif need.salt_kg > 0:
            tasks.append(Task(segment_id, need.salt_kg))
    if any(t.treatments == 2 for t in treat.values()):
        notes.append("some segments need two treatments: this plan is the first; run it again for the second")
    edges = [Edge(s.segment_id, s.start_node, s.end_node, s.length_m, s.oneway) for s in network.segments]
    try:
        arc = plan_arc_routes(edges, tasks, depot_node, capacity=route.salt_capacity_kg, vehicles=route.vehicles,
                              max_trips=route.max_trips, seed=seed, time_limit_s=time_limit_s,
                              max_iterations=max_iterations)
    except RoutingError as exc:
        notes.append(f"no plan: {exc}")
        return RoutePlan(route.route_id, False, 0.0, 0, 0.0, {"type": "FeatureCollection", "features": []}, [],
                         notes, seed=seed)
    if arc.unserved:
        notes.append(f"{len(arc.unserved)} segment(s) did not fit in {route.vehicles} gritter(s) x "
                     f"{route.max_trips} trip(s): {', '.join(arc.unserved[:10])}")
    rates = {k: v.rate_g_m2 for k, v in treat.items()}
    salt = {k: v.salt_kg for k, v in treat.items()}
    return RoutePlan(route.route_id, arc.feasible and not notes_block(notes), arc.distance_m, len(arc.trips),
                     _duration_h(arc, network, speeds), _geojson(arc, network, route, rates, salt),
                     _instructions(arc, network, route, rates, salt), notes, arc.runtime_s,
                     [t.edge_id for trip in arc.trips for t in trip.traversals if t.service], arc, seed)


def notes_block(notes: list[str]) -> bool:
    """Whether a note means some segment to treat is missing from the plan."""
    return any("not planned" in n or "did not fit" in n for n in notes)


def _vehicle(trip: Any) -> int:
    return int(getattr(trip, "vehicle", 1))


def _duration_h(arc: ArcPlan, network: RoadNetwork, speeds: Speeds) -> float:
    """The longest gritter's time: spreading, deadheading and reloads."""
    length = {s.segment_id: s.length_m for s in network.segments}
    hours: dict[int, float] = {}
    trips: dict[int, int] = {}
    for trip in arc.trips:
        v = _vehicle(trip)
        spread = sum(length[t.edge_id] for t in trip.traversals if t.service) / 1000 / speeds.spreading_kmh
        drive = sum(length[t.edge_id] for t in trip.traversals if not t.service) / 1000 / speeds.deadhead_kmh
        hours[v] = hours.get(v, 0.0) + spread + drive
        trips[v] = trips.get(v, 0) + 1
    return max((h + (trips[v] - 1) * speeds.reload_min / 60 for v, h in hours.items()), default=0.0)


def _geojson(arc: ArcPlan, network: RoadNetwork, route: Route, rates: Mapping[str, float],
             salt: Mapping[str, float]) -> dict[str, Any]:
    by_id = {s.segment_id: s for s in network.segments}
    depot = network.depot(route.depot_id)
    features: list[dict[str, Any]] = [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [depot.lon, depot.lat]},
        "properties": {"role": "depot", "depot_id": depot.depot_id, "name": depot.name}}]
    seq = 0
    for trip_no, trip in enumerate(arc.trips, start=1):
        for t in trip.traversals:
            seq += 1
            seg = by_id[t.edge_id]
            features.append({
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [list(c) for c in oriented(seg, t.from_node)]},
                "properties": {"seq": seq, "trip": trip_no, "vehicle": _vehicle(trip), "segment_id": seg.segment_id,
                               "road": seg.name, "mode": "service" if t.service else "deadhead",
                               "service": bool(t.service),
                               "spread_rate_g_m2": rates.get(t.edge_id, 0.0) if t.service else 0.0,
                               "salt_kg": round(salt.get(t.edge_id, 0.0), 1) if t.service else 0.0,
                               "length_m": round(seg.length_m, 1), "from_node": t.from_node,
                               "to_node": t.to_node}})
    return {"type": "FeatureCollection", "properties": {"route_id": route.route_id, "trips": len(arc.trips),
                                                        "distance_m": round(arc.distance_m, 1)},
            "features": features}


def _instructions(arc: ArcPlan, network: RoadNetwork, route: Route, rates: Mapping[str, float],
                  salt: Mapping[str, float]) -> list[dict[str, Any]]:
    depot = network.depot(route.depot_id)
    junctions = junction_names(network)
    projection = network.projection()
    last_of: dict[int, int] = {}
    for k, trip in enumerate(arc.trips):
        last_of[_vehicle(trip)] = k
    out: list[dict[str, Any]] = []
    for k, trip in enumerate(arc.trips):
        steps = trip_steps(legs(trip.traversals, network, rates, salt, projection), depot, junctions,
                           last_trip=last_of[_vehicle(trip)] == k, load_kg=trip.load, trip_no=k + 1,
                           vehicle=_vehicle(trip))
        out += [{"trip": k + 1, "vehicle": _vehicle(trip), "step": j, "text": text}
                for j, text in enumerate(steps, start=1)]
    return out
