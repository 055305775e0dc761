"""Capacitated arc routing: gdb files, published optima, walks over real edges, reloads, bad input."""

import argparse
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import route as cli
from benchmarks.carp import carp_gaps, gdb_gaps, summary
from rules.errors import InvalidArcRouting, InvalidInstance, UnreachableTask
from rules.routing.carp import ArcPlan, Edge, Task, plan_arc_routes, solve_carp_instance
from rules.routing.carp_format import CarpInstance, best_known, read_dat

DATA = Path(__file__).parent / "data" / "carp"
OPTIMA = {"gdb1": 316, "gdb2": 339, "gdb3": 275, "gdb4": 287, "gdb5": 377, "gdb6": 298, "gdb7": 325, "gdb19": 55}


def check_plan(plan: ArcPlan, edges: Sequence[Edge], tasks: Sequence[Task], depot: str, capacity: float) -> None:
    """Every task served once; loads within capacity; each trip a walk over real edges, depot to depot."""
    by_id = {e.edge_id: e for e in edges}
    demand = {t.edge_id: t.demand for t in tasks}
    served = [edge_id for trip in plan.trips for edge_id in trip.served]
    assert sorted(served) == sorted(demand)
    for trip in plan.trips:
        assert trip.served, "a trip that serves nothing"
        assert trip.load == pytest.approx(sum(demand[e] for e in trip.served))
        assert trip.load <= capacity
        at = depot
        for step in trip.traversals:
            edge = by_id[step.edge_id]
            assert step.from_node == at, f"the walk jumps from {at} to {step.from_node}"
            forward = (step.from_node, step.to_node) == (edge.tail, edge.head)
            backward = (step.from_node, step.to_node) == (edge.head, edge.tail)
            assert forward or (backward and not edge.oneway), f"{step} breaks {edge}"
            at = step.to_node
        assert at == depot
        assert trip.distance_m == pytest.approx(sum(by_id[s.edge_id].length_m for s in trip.traversals))
    assert plan.distance_m == pytest.approx(sum(trip.distance_m for trip in plan.trips))


def as_network(instance: CarpInstance) -> tuple[list[Edge], list[Task]]:
    edges = [Edge(f"e{k}", str(e.u), str(e.v), float(e.cost)) for k, e in enumerate(instance.required)]
    return edges, [Task(f"e{k}", float(e.demand)) for k, e in enumerate(instance.required)]


def test_reads_a_gdb_file_and_its_published_value() -> None:
    path = DATA / "gdb" / "gdb1.dat"
    instance = read_dat(path)
    assert (instance.name, instance.vertices, instance.vehicles, instance.capacity, instance.depot) == \
        ("gdb1", 12, 5, 5, 1)
    assert len(instance.required) == 22 and instance.other == ()
    assert (instance.required[0].u, instance.required[0].v, instance.required[0].cost,
            instance.required[0].demand) == (1, 2, 13, 1)
    assert sum(e.cost for e in instance.required) == 252 and instance.total_demand == 22
    assert best_known(instance, path) == 316                    # carp_bks.csv one folder up
    assert best_known(instance, path, DATA / "carp_bks.csv") == 316
    with pytest.raises(InvalidInstance, match="no published values file"):
        best_known(instance, path, DATA / "missing.csv")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("ARISTAS_REQ : 22", "ARISTAS_REQ : 23"), "ARISTAS_REQ is 23 but 22 required edges"),
    (lambda t: t.replace("( 1, 2)  coste 13", "( 1, 2)  coste x13"), "line 11: a malformed edge"),
    (lambda t: t.replace(" CAPACIDAD : 5\n", ""), "no CAPACIDAD line"),
    (lambda t: t.replace("( 1, 2)", "( 1, 13)"), r"edge \(1, 13\) names a vertex outside 1..12"),
    (lambda t: t.replace("CAPACIDAD : 5", "CAPACIDAD : 0"), "capacity must be positive"),
    (lambda t: t.replace("coste 13 demanda 1", "coste 13 demanda 6"), "demand 6, more than the capacity 5"),
    (lambda t: t.replace("DEPOSITO :   1", "DEPOSITO :   40"), "depot 40 is outside"),
    (lambda t: t.replace("VERTICES : 12", "VERTICES : twelve"), "not a whole number"),
])
def test_bad_files_get_clear_messages(tmp_path: Path, edit: Callable[[str], str], message: str) -> None:
    bad = tmp_path / "bad.dat"
    original = (DATA / "gdb" / "gdb1.dat").read_text()
    changed = edit(original)
    assert changed != original
    bad.write_text(changed)
    with pytest.raises(InvalidInstance, match=message):
        read_dat(bad)
    with pytest.raises(InvalidInstance, match="cannot read"):
        read_dat(tmp_path / "missing.dat")


def test_reads_non_required_edges(tmp_path: Path) -> None:
    text = (DATA / "gdb" / "gdb1.dat").read_text().replace(
        " DEPOSITO", " LISTA_ARISTAS_NOREQ :\n ( 3, 11)  coste 2\n DEPOSITO")
    (tmp_path / "x.dat").write_text(text)
    instance = read_dat(tmp_path / "x.dat")
    assert len(instance.required) == 22 and [(e.u, e.v, e.cost, e.demand) for e in instance.other] == [(3, 11, 2, 0)]
    assert solve_carp_instance(instance, seed=1, time_limit_s=None, max_iterations=300).feasible


@pytest.mark.parametrize("name", list(OPTIMA))
def test_small_gdb_instances_reach_the_published_optimum(name: str) -> None:
    instance = read_dat(DATA / "gdb" / f"{name}.dat")
    solution = solve_carp_instance(instance, seed=1, time_limit_s=None, max_iterations=1_000)
    assert solution.feasible
    assert solution.cost == OPTIMA[name]                 # never below a proven optimum, so the costs count alike
    assert solution.trips >= -(-instance.total_demand // instance.capacity)


def test_a_gdb_plan_is_walks_over_real_edges_from_the_depot() -> None:
    instance = read_dat(DATA / "gdb" / "gdb1.dat")
    edges, tasks = as_network(instance)
    plan = plan_arc_routes(edges, tasks, "1", capacity=5, vehicles=5, seed=1, max_iterations=1_000)
    assert plan.feasible and plan.unserved == () and plan.distance_m == 316
    check_plan(plan, edges, tasks, "1", 5)
    assert plan.vehicles_used == len(plan.trips) == 5
    deadhead = [s for trip in plan.trips for s in trip.traversals if not s.service]
    assert deadhead and sum(by.length_m for s in deadhead for by in edges if by.edge_id == s.edge_id) == 316 - 252


def ring() -> list[Edge]:
    """A one-way loop D -> a -> b -> c -> D, and a two-way spur c - e."""
    return [Edge("Da", "D", "a", 100, oneway=True), Edge("ab", "a", "b", 100, oneway=True),
            Edge("bc", "b", "c", 100, oneway=True), Edge("cD", "c", "D", 100, oneway=True),
            Edge("ce", "c", "e", 50)]


def test_one_way_streets_are_driven_forward_only() -> None:
    edges = ring()
    tasks = [Task("ab", 10), Task("ce", 10)]
    plan = plan_arc_routes(edges, tasks, "D", capacity=100, vehicles=1, max_iterations=200)
    check_plan(plan, edges, tasks, "D", 100)
    assert [(s.edge_id, s.from_node, s.to_node, s.service) for s in plan.trips[0].traversals] == [
        ("Da", "D", "a", False), ("ab", "a", "b", True), ("bc", "b", "c", False),
        ("ce", "c", "e", True), ("ce", "e", "c", False), ("cD", "c", "D", False)]
    assert plan.distance_m == 500


def test_one_vehicle_reloads_at_the_depot_to_serve_everything() -> None:
    # a 3 x 3 grid of 100 m streets with the depot in the middle; 12 streets of 350 kg, 1,000 kg a load
    edges = []
    for i in range(3):
        for j in range(3):
            if i < 2:
                edges.append(Edge(f"v{i}{j}", f"{i},{j}", f"{i + 1},{j}", 100.0))
            if j < 2:
                edges.append(Edge(f"h{i}{j}", f"{i},{j}", f"{i},{j + 1}", 100.0))
    tasks = [Task(e.edge_id, 350.0) for e in edges]
    plan = plan_arc_routes(edges, tasks, "1,1", capacity=1_000, vehicles=1, max_trips=8, seed=2, max_iterations=500)
    assert plan.feasible
    check_plan(plan, edges, tasks, "1,1", 1_000)
    assert {trip.vehicle for trip in plan.trips} == {1}
    assert len(plan.trips) >= 6                          # 4,200 kg in loads of at most 2 streets (700 kg)
    without = plan_arc_routes(edges, tasks, "1,1", capacity=1_000, vehicles=1, max_iterations=200)
    assert not without.feasible


def test_fractional_demands_that_fill_the_vehicle_still_fit() -> None:
    # demands scale by 1,000 and round up, the capacity rounds down: 10187.5 must not become 10188 > 10187
    edges = ring()
    tasks = [Task("ab", 10.1875), Task("ce", 10.1875), Task("cD", 0.0)]
    plan = plan_arc_routes(edges, tasks, "D", capacity=10.1875, vehicles=1, max_trips=2, max_iterations=200)
    assert plan.feasible and len(plan.trips) == 2
    check_plan(plan, edges, tasks, "D", 10.1875)
    crowded = plan_arc_routes(edges, [Task("ab", 5.1), Task("ce", 5.1)], "D", capacity=10.1999, vehicles=1,
                              max_iterations=200)
    assert not crowded.feasible                          # 10.2 kg in a 10.1999 kg hopper: not by rounding


def test_zero_tasks_give_an_empty_feasible_plan() -> None:
    plan = plan_arc_routes(ring(), [], "D", capacity=10, vehicles=1)
    assert plan == ArcPlan((), 0.0, True, 0.0)


@pytest.mark.parametrize(("edges", "tasks", "depot", "capacity", "vehicles", "error", "message"), [
    (ring(), [Task("zz", 1)], "D", 10, 1, InvalidArcRouting, "task edge zz is not in the road graph"),
    (ring(), [Task("ab", 11)], "D", 10, 1, InvalidArcRouting, "task ab needs 11, more than a vehicle's capacity of 10"),
    (ring(), [Task("ab", 1)], "X", 10, 1, InvalidArcRouting, "the depot node X is on no edge"),
    ([], [], "D", 10, 1, InvalidArcRouting, "the road graph has no edges"),
    (ring(), [Task("ab", 1)], "D", 0, 1, InvalidArcRouting, "capacity must be positive"),
    (ring(), [Task("ab", 1)], "D", 10, 0, InvalidArcRouting, "at least one vehicle"),
    (ring(), [Task("ab", 1), Task("ab", 2)], "D", 10, 1, InvalidArcRouting, "edge ab is a task twice"),
    (ring(), [Task("ab", -1)], "D", 10, 1, InvalidArcRouting, "task ab has demand -1"),
    ([*ring(), Edge("xy", "x", "y", 10)], [Task("xy", 1)], "D", 10, 1, UnreachableTask,
     r"edge xy \(x -> y\) cannot be reached from the depot"),
    # a one-way street into a dead end: reachable, but no way back
    ([*ring(), Edge("af", "a", "f", 10, oneway=True)], [Task("af", 1)], "D", 10, 1, UnreachableTask,
     r"edge af \(a -> f, one-way\)"),
])
def test_bad_input_gets_a_clear_error(edges: list[Edge], tasks: list[Task], depot: str, capacity: float,
                                      vehicles: int, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        plan_arc_routes(edges, tasks, depot, capacity=capacity, vehicles=vehicles, max_iterations=50)
    assert isinstance(caught.value, InvalidArcRouting) and caught.value.hint


@st.composite
def networks(draw: st.DrawFn) -> tuple[list[Edge], list[Task], str, float, int, int]:
    """A connected graph (a two-way spanning tree plus random, possibly one-way, parallel or loop
    edges), some of its edges to serve, and a fleet that can serve them."""
    n = draw(st.integers(2, 7))
    lengths = st.floats(1.0, 500.0, allow_nan=False)
    edges = [Edge(f"t{i}", str(draw(st.integers(0, i - 1))), str(i), draw(lengths)) for i in range(1, n)]
    for k in range(draw(st.integers(0, 6))):
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        edges.append(Edge(f"x{k}", str(a), str(b), draw(lengths), oneway=draw(st.booleans())))
    chosen = draw(st.lists(st.sampled_from(edges), min_size=1, max_size=8, unique=True))
    capacity = draw(st.floats(10.0, 1_000.0))
    tasks = [Task(e.edge_id, draw(st.floats(0.0, capacity))) for e in chosen]
    depot = str(draw(st.integers(0, n - 1)))
    vehicles, trips = (len(tasks), 1) if draw(st.booleans()) else (1, len(tasks))
    return edges, tasks, depot, capacity, vehicles, trips


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_plans_on_random_networks_keep_the_invariants(case: tuple[list[Edge], list[Task], str, float, int, int]
                                                       ) -> None:
    edges, tasks, depot, capacity, vehicles, trips = case
    plan = plan_arc_routes(edges, tasks, depot, capacity=capacity, vehicles=vehicles, max_trips=trips, seed=3,
                           max_iterations=100)
    assert plan.feasible
    check_plan(plan, edges, tasks, depot, capacity)
    assert plan.vehicles_used <= vehicles
    assert all(sum(t.vehicle == v for t in plan.trips) <= trips for v in range(1, vehicles + 1))


def test_the_same_seed_gives_the_same_plan() -> None:
    edges, tasks = as_network(read_dat(DATA / "gdb" / "gdb5.dat"))
    first, second = (plan_arc_routes(edges, tasks, "1", capacity=5, vehicles=13, max_trips=2, seed=7,
                                     time_limit_s=30, max_iterations=150) for _ in range(2))
    assert first.trips == second.trips and first.distance_m == second.distance_m


def test_gaps_over_a_folder(tmp_path: Path) -> None:
    lines: list[str] = []
    rows = gdb_gaps(DATA, seconds=0.2, progress=lines.append)
    assert [r.instance for r in rows] == ["gdb1", "gdb2", "gdb3", "gdb4", "gdb5", "gdb6", "gdb7", "gdb19"]
    assert all(r.feasible and r.bks == OPTIMA[r.instance] and r.gap_pct is not None and r.gap_pct >= 0
               for r in rows)
    assert len(lines) == 8 and lines[0].startswith("  gdb1: ")
    assert re.fullmatch(r"CARP gdb, 8 instances at 0.2 s each: mean gap \+\d+\.\d\d%, \d of 8 at the published "
                        r"optimum, worst gdb\d+ \+\d+\.\d\d%", summary(rows, "gdb", 0.2))
    with pytest.raises(InvalidInstance, match="no CARP instances") as caught:
        carp_gaps(tmp_path, "val", 1.0)
    assert "--folder" in caught.value.hint


async def test_route_carp_prints_the_cost_and_the_gap(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["route", "carp", str(DATA / "gdb" / "gdb1.dat"), "--time-limit", "5",
                              "--iterations", "1000", "--seed", "1"])
    assert await args.handler(args, None) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"gdb1: cost 316 in 5 trips \(5 vehicles; the file says 5\), feasible, \S+ s, seed 1\n"
                        r"published 316: gap \+0\.00%\n", out), out


async def test_route_carp_bench_prints_each_instance_and_the_mean(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["route", "carp-bench", "--folder", str(DATA), "--seconds", "0.1"])
    assert await args.handler(args, None) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "CARP gdb: 8 instances at 0.1 s each (about 0 min)" and len(out) == 10
    assert out[-1].startswith("CARP gdb, 8 instances at 0.1 s each: mean gap")
    missing = parser.parse_args(["route", "carp-bench", "--folder", str(tmp_path)])
    with pytest.raises(InvalidInstance, match="no CARP instances"):
        await missing.handler(missing, None)
