"""Capacitated arc routing (CARP): serve every required edge once, from a depot, within capacity.

The model (docs/science.md#arc-routing-model, docs/routing.md): each required edge becomes one
PyVRP client per direction it may be served in (two for a two-way road, one for a one-way
road), the two in a required, mutually exclusive client group, so the solver picks the
direction. Going from client a to client b costs the shortest path from a's head to b's tail
plus b's own edge (the service is folded into the arc that reaches it); the depot reaches a
client's tail, and a client's head returns to the depot, the same way. So a route's PyVRP
distance is exactly the CARP cost: every serviced edge plus every deadheading traversal, depot
to depot. Shortest paths are Dijkstra over the whole graph (rules.routing.graph, shared with the
bin rounds; one-way edges only forward), with integer weights: benchmark costs are integers,
road lengths are rounded to whole metres.

Demands become integers conservatively: scaled (x1000 unless all are whole) and rounded up,
the capacity rounded down, so a plan the solver calls feasible is feasible in the real units.
With `max_trips` > 1 a vehicle may go back to the depot to reload and go out again (PyVRP
reload depots); every trip starts and ends at the depot and holds the capacity.

Plans come back as walks over real edges (deadheading expanded), so a caller can draw them
and write "turn onto X" instructions. Deterministic under `seed` when `max_iterations` stops
the search before `time_limit_s` does.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyvrp

from rules.errors import InvalidArcRouting, RoutingError, UnreachableTask
from rules.routing import solver
from rules.routing.carp_format import CarpInstance
from rules.routing.graph import UNREACHABLE, Edge, RoadGraph

log = logging.getLogger("rules.routing.carp")

DEMAND_SCALE = 1000                     # units per demand unit when demands are not whole numbers


@dataclass(frozen=True)
class Task:
    """A required edge: must be serviced once, in either allowed direction."""
    edge_id: str
    demand: float                        # e.g. salt kg


@dataclass(frozen=True)
class Traversal:
    edge_id: str
    from_node: str
    to_node: str
    service: bool                        # False: deadheading


@dataclass(frozen=True)
class Trip:
    """Depot -> ... -> depot, load within capacity, made by `vehicle` (1-based)."""
    traversals: tuple[Traversal, ...]
    load: float
    distance_m: float
    vehicle: int = 1

    @property
    def served(self) -> tuple[str, ...]:
        return tuple(t.edge_id for t in self.traversals if t.service)


@dataclass(frozen=True)
class ArcPlan:
    trips: tuple[Trip, ...]
    distance_m: float
    feasible: bool
    runtime_s: float
    unserved: tuple[str, ...] = ()       # tasks an infeasible plan left out

    @property
    def vehicles_used(self) -> int:
        return len({trip.vehicle for trip in self.trips})


@dataclass(frozen=True)
class CarpSolution:
    """A benchmark run: total cost as published (service plus deadheading), trips, feasibility."""
    cost: int
    trips: int
    vehicles: int
    feasible: bool
    seconds: float


def plan_arc_routes(edges: Sequence[Edge], tasks: Sequence[Task], depot_node: str, *, capacity: float,
                    vehicles: int, max_trips: int = 1, seed: int = 1, time_limit_s: float | None = None,
                    max_iterations: int | None = None) -> ArcPlan:
    """Trips that serve every task once, each a walk over `edges` from `depot_node` and back.

    Give `max_iterations` (with or without a time limit) for a plan that repeats under a seed;
    with neither limit the search stops after 2,000 iterations.
    A plan that cannot meet the capacity with `vehicles` x `max_trips` trips comes back with
    feasible=False (and any task it could not place in `unserved`)."""
    if time_limit_s is None and max_iterations is None:
        max_iterations = 2_000
    network = RoadGraph(edges, weights=[_metres(e) for e in edges])
    _check_fleet(capacity, vehicles, max_trips)
    demands = _task_demands(tasks, network, capacity)
    network.node_index(depot_node, "the depot")
    if not tasks:
        return ArcPlan((), 0.0, True, 0.0)
    model = _ArcModel(network, [network.edge_index[t.edge_id] for t in tasks], depot_node)
    scale = 1 if all(float(q).is_integer() for q in (*demands, capacity)) else DEMAND_SCALE
    result = solver.solve(model.problem(demands, capacity, vehicles, max_trips, scale), seed=seed,
                          time_limit_s=time_limit_s, max_iterations=max_iterations)
    trips, served = model.trips(result.best, demands)
    unserved = tuple(t.edge_id for k, t in enumerate(tasks) if k not in served)
    distance = sum(trip.distance_m for trip in trips)
    feasible = result.is_feasible() and not unserved
    if not feasible:
        log.warning("no feasible plan for %d tasks with %d vehicles x %d trips of %g", len(tasks), vehicles,
                    max_trips, capacity)
    return ArcPlan(tuple(trips), distance, feasible, result.runtime, unserved)


def solve_carp_instance(instance: CarpInstance, seed: int = 1, time_limit_s: float | None = 10.0,
                        max_iterations: int | None = None) -> CarpSolution:
    """Solve a gdb/val/egl instance as published: costs as given, the fleet unlimited.

    The file's VEHICULOS is ceil(total demand / Q), a lower bound that the published optima do
    not treat as a limit (HGS-CARP allows more vehicles; val1C's optimum needs 9 of its 8). The
    search runs twice, half the time (or iterations) each: with that lower bound as the fleet,
    and with one vehicle per required edge; the cheaper feasible plan wins. Both are plans of an
    unlimited fleet; the first helps when capacity is tight, where a search allowed spare
    vehicles tends to keep one it does not need (gdb13: 544 with 7, the optimum 536 with 6)."""
    if not instance.required:
        return CarpSolution(0, 0, 0, True, 0.0)
    edges = [Edge(f"r{k}", str(e.u), str(e.v), e.cost) for k, e in enumerate(instance.required)]
    edges += [Edge(f"o{k}", str(e.u), str(e.v), e.cost) for k, e in enumerate(instance.other)]
    network = RoadGraph(edges, weights=[int(e.length_m) for e in edges])
    model = _ArcModel(network, list(range(len(instance.required))), str(instance.depot))
    demands = [float(e.demand) for e in instance.required]
    fleets = sorted({max(1, -(-instance.total_demand // instance.capacity)), len(instance.required)})
    share_s = None if time_limit_s is None else time_limit_s / len(fleets)
    share_iterations = None if max_iterations is None else max(1, max_iterations // len(fleets))
    runs: list[CarpSolution] = []
    for fleet in fleets:
        result = solver.solve(model.problem(demands, instance.capacity, fleet, 1, 1), seed=seed,
                              time_limit_s=share_s, max_iterations=share_iterations)
        trips, served = model.trips(result.best, demands)
        cost = int(sum(trip.distance_m for trip in trips))
        if cost != result.best.distance():
            raise RoutingError(f"{instance.name}: the expanded walks cost {cost}, the solver says "
                               f"{result.best.distance()}", hint="a bug in the arc routing model: report it")
        runs.append(CarpSolution(cost, len(trips), len({t.vehicle for t in trips}),
                                 result.is_feasible() and len(served) == len(instance.required), result.runtime))
    best = min(runs, key=lambda run: (not run.feasible, run.cost))
    return CarpSolution(best.cost, best.trips, best.vehicles, best.feasible, sum(run.seconds for run in runs))


def _metres(edge: Edge) -> int:
    if not (math.isfinite(edge.length_m) and edge.length_m >= 0):
        raise InvalidArcRouting(f"edge {edge.edge_id} has length {edge.length_m} m",
                                hint="lengths are metres, finite and not negative")
    return round(edge.length_m)


def _check_fleet(capacity: float, vehicles: int, max_trips: int) -> None:
    if not (math.isfinite(capacity) and capacity > 0):
        raise InvalidArcRouting(f"the vehicle capacity must be positive, got {capacity}",
                                hint="the salt a gritter carries, in the same unit as the task demands (kg)")
    if vehicles < 1:
        raise InvalidArcRouting(f"need at least one vehicle, got {vehicles}")
    if max_trips < 1:
        raise InvalidArcRouting(f"a vehicle makes at least one trip, got max_trips={max_trips}")


def _task_demands(tasks: Sequence[Task], network: RoadGraph, capacity: float) -> list[float]:
    seen: set[str] = set()
    for task in tasks:
        if task.edge_id not in network.edge_index:
            raise InvalidArcRouting(f"task edge {task.edge_id} is not in the road graph",
                                    hint="every segment to treat must be one of the route's edges")
        if task.edge_id in seen:
            raise InvalidArcRouting(f"edge {task.edge_id} is a task twice",
                                    hint="one task per road segment; add the demands together")
        seen.add(task.edge_id)
        if not (math.isfinite(task.demand) and task.demand >= 0):
            raise InvalidArcRouting(f"task {task.edge_id} has demand {task.demand}",
                                    hint="demands are finite and not negative (salt kg)")
        if task.demand > capacity:
            raise InvalidArcRouting(f"task {task.edge_id} needs {task.demand:g}, more than a vehicle's "
                                    f"capacity of {capacity:g}",
                                    hint="split the segment, or check the spread rate, width and capacity")
    return [float(task.demand) for task in tasks]


@dataclass(frozen=True)
class _Direction:
    task: int                            # index into the caller's tasks
    edge: int
    tail: int                            # node indices
    head: int


class _ArcModel:
    """Tasks as directed clients; shortest paths between them; solutions back to walks."""

    def __init__(self, network: RoadGraph, task_edges: Sequence[int], depot_node: str) -> None:
        self.network = network
        self.depot = network.node_index(depot_node, "the depot")
        self.directions: list[_Direction] = []
        for task, edge in enumerate(task_edges):
            e = network.edges[edge]
            tail, head = network.index[e.tail], network.index[e.head]
            self.directions.append(_Direction(task, edge, tail, head))
            if not e.oneway and tail != head:
                self.directions.append(_Direction(task, edge, head, tail))
        tails = {d.tail for d in self.directions}
        self.sources = sorted({self.depot, *(d.head for d in self.directions)})
        self.row = {node: r for r, node in enumerate(self.sources)}
        self.dist = np.empty((len(self.sources), len(network.nodes)), dtype=np.int64)
        self.via: list[list[int]] = []
        for r, source in enumerate(self.sources):
            self.dist[r], via = network.dijkstra(source, tails | {self.depot})
            self.via.append(via)
        self._drop_unreachable(len(task_edges))

    def _drop_unreachable(self, tasks: int) -> None:
        out, back = self.dist[self.row[self.depot]], self.dist[:, self.depot]
        kept = [d for d in self.directions if out[d.tail] < UNREACHABLE and back[self.row[d.head]] < UNREACHABLE]
        reached = {d.task for d in kept}
        for task in range(tasks):
            if task not in reached:
                edge = self.network.edges[next(d.edge for d in self.directions if d.task == task)]
                raise UnreachableTask(f"edge {edge.edge_id} ({edge.tail} -> {edge.head}"
                                      f"{', one-way' if edge.oneway else ''}) cannot be reached from the depot "
                                      f"and left back to it", edge_id=edge.edge_id)
        self.directions = kept

    def matrix(self) -> npt.NDArray[np.int64]:
        heads = np.array([self.row[d.head] for d in self.directions], dtype=np.int64)
        tails = np.array([d.tail for d in self.directions], dtype=np.int64)
        service = np.array([self.network.weights[d.edge] for d in self.directions], dtype=np.int64)
        n = len(self.directions) + 1
        matrix = np.zeros((n, n), dtype=np.int64)
        matrix[0, 1:] = self.dist[self.row[self.depot], tails] + service
        matrix[1:, 0] = self.dist[heads, self.depot]
        # head of one to tail of the next: finite, since every kept client is reached from and
        # returns to the depot (the path through the depot bounds it)
        matrix[1:, 1:] = self.dist[np.ix_(heads, tails)] + service[None, :]
        np.fill_diagonal(matrix, 0)
        return matrix

    def problem(self, demands: Sequence[float], capacity: float, vehicles: int, max_trips: int,
                scale: int) -> pyvrp.ProblemData:
        # demands round up and the capacity down, so integer feasibility implies the real one; a
        # demand within one unit of the capacity is clamped to it (it fills the vehicle either way)
        limit = math.floor(capacity * scale + 1e-9)
        size = [min(math.ceil(q * scale - 1e-9), limit) for q in demands]
        ways = Counter(d.task for d in self.directions)
        groups: list[pyvrp.ClientGroup] = []
        group_of: dict[int, int] = {}
        for client, direction in enumerate(self.directions):
            if ways[direction.task] > 1:
                if direction.task not in group_of:
                    group_of[direction.task] = len(groups)
                    groups.append(pyvrp.ClientGroup(required=True, name=self._name(direction)))
                groups[group_of[direction.task]].add_client(client)
        clients = [pyvrp.Client(location=k + 1, delivery=[size[d.task]], required=d.task not in group_of,
                                group=group_of.get(d.task), name=self._name(d))
                   for k, d in enumerate(self.directions)]
        locations = [pyvrp.Location(x=0, y=0) for _ in range(len(clients) + 1)]
        fleet = pyvrp.VehicleType(num_available=vehicles, capacity=[limit],
                                  reload_depots=[0] if max_trips > 1 else [], max_reloads=max_trips - 1)
        matrix = self.matrix()
        # PyVRP's stubs say ndarray[int]; an int64 matrix is what it wants at run time
        return pyvrp.ProblemData(locations, clients, [pyvrp.Depot(location=0)], [fleet], [matrix],  # type: ignore[list-item]
                                 [np.zeros_like(matrix)], groups)  # type: ignore[list-item]

    def _name(self, direction: _Direction) -> str:
        return self.network.edges[direction.edge].edge_id

    def trips(self, solution: pyvrp.Solution, demands: Sequence[float]) -> tuple[list[Trip], set[int]]:
        trips: list[Trip] = []
        served: set[int] = set()
        for vehicle, route in enumerate(solution.routes(), start=1):
            by_trip: dict[int, list[_Direction]] = {}
            for visit in route.schedule():
                if visit.is_client():
                    by_trip.setdefault(visit.trip, []).append(self.directions[visit.idx])
            for _, visits in sorted(by_trip.items()):
                served.update(d.task for d in visits)
                trips.append(self._walk(visits, demands, vehicle))
        return trips, served

    def _walk(self, visits: Sequence[_Direction], demands: Sequence[float], vehicle: int) -> Trip:
        steps: list[Traversal] = []
        at = self.depot
        for d in visits:
            steps += self._path(at, d.tail)
            edge = self.network.edges[d.edge]
            steps.append(Traversal(edge.edge_id, self.network.nodes[d.tail], self.network.nodes[d.head], True))
            at = d.head
        steps += self._path(at, self.depot)
        distance = sum(self.network.edges[self.network.edge_index[s.edge_id]].length_m for s in steps)
        return Trip(tuple(steps), sum(demands[d.task] for d in visits), float(distance), vehicle)

    def _path(self, source: int, target: int) -> Iterable[Traversal]:
        return [Traversal(self.network.edges[edge].edge_id, self.network.nodes[tail], self.network.nodes[head], False)
                for edge, tail, head in self.network.path_to(self.via[self.row[source]], target)]
