"""The collection plan: capacity, shift, mandatory bins, determinism, GeoJSON, bad input."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.errors import RoutingError
from rules.geo import distance_matrix_m
from rules.routing.plan import CollectionPlan, Fleet, PlanBin, plan_collection

SHIFT = datetime(2026, 1, 6, 6, tzinfo=UTC)
DEPOT = (-0.76, 52.04)          # Milton Keynes


def town(count: int, seed: int, mandatory_share: float = 0.3, max_load: int = 240) -> list[PlanBin]:
    rng = np.random.default_rng(seed)
    return [PlanBin(f"bin-{i:03d}", DEPOT[0] + rng.normal(0, 0.03), DEPOT[1] + rng.normal(0, 0.02),
                    int(rng.integers(40, max_load + 1)), bool(rng.random() < mandatory_share),
                    float(rng.uniform(0, 100)))
            for i in range(count)]


def fleet(**changes: object) -> Fleet:
    values: dict[str, object] = {"depot_lon": DEPOT[0], "depot_lat": DEPOT[1], "trucks": 3, "capacity_l": 2_500,
                                 "shift_start": SHIFT, "shift_h": 4.0}
    values.update(changes)
    return Fleet(**values)  # type: ignore[arg-type]


def plan(bins: list[PlanBin], trucks: Fleet, seed: int = 0) -> CollectionPlan:
    return plan_collection(bins, trucks, seed=seed, time_limit_s=20, max_iterations=300)


def test_capacity_and_shift_are_respected_and_every_mandatory_bin_is_visited() -> None:
    bins = town(60, seed=1)
    trucks = fleet(break_min=20)
    result = plan(bins, trucks)
    by_id = {b.device_id: b for b in bins}
    assert result.feasible and not result.missed_mandatory
    assert {b.device_id for b in bins if b.mandatory} <= set(result.visited)
    assert len(result.visited) == len(set(result.visited))
    assert set(result.visited) | set(result.skipped) == set(by_id)
    assert result.skipped, "the capacity is tight on purpose: some optional bins wait"
    for route in result.routes:
        assert route.load_l == sum(by_id[s.device_id].load_l for s in route.stops) <= trucks.capacity_l
        assert route.trip_loads_l == (route.load_l,)
        assert route.start >= SHIFT and route.end <= SHIFT + timedelta(hours=trucks.shift_h)
        arrivals = [s.arrive for s in route.stops]
        assert arrivals == sorted(arrivals)
        assert route.stops[-1].load_after_l == route.load_l


def test_the_same_seed_gives_the_same_plan() -> None:
    bins = town(50, seed=2)
    first, again = plan(bins, fleet(), seed=7), plan(bins, fleet(), seed=7)
    assert [[s.device_id for s in r.stops] for r in first.routes] == \
        [[s.device_id for s in r.stops] for r in again.routes]
    assert first.distance_m == again.distance_m


def test_time_windows_are_kept() -> None:
    bins = [PlanBin(b.device_id, b.lon, b.lat, b.load_l, True, window_s=(3_600, 5_400) if i == 0 else None)
            for i, b in enumerate(town(8, seed=3))]
    result = plan(bins, fleet(trucks=1, capacity_l=5_000))
    (stop,) = [s for r in result.routes for s in r.stops if s.device_id == bins[0].device_id]
    assert SHIFT + timedelta(hours=1) <= stop.arrive <= SHIFT + timedelta(hours=1.5)


def test_a_truck_may_tip_and_go_out_again() -> None:
    bins = town(14, seed=8, mandatory_share=1.0)              # about 2,000 l for a 1,000 l truck
    one_trip = plan(bins, fleet(trucks=1, capacity_l=1_000))
    assert not one_trip.feasible
    result = plan(bins, fleet(trucks=1, capacity_l=1_000, max_trips=4))
    assert result.feasible and sorted(result.visited) == sorted(b.device_id for b in bins)
    (route,) = result.routes
    assert len(route.trip_loads_l) >= 2 and all(load <= 1_000 for load in route.trip_loads_l)
    assert sum(route.trip_loads_l) == route.load_l == sum(b.load_l for b in bins)
    assert max(s.load_after_l for s in route.stops) <= 1_000
    legs = [f for f in route.geojson(DEPOT)["features"] if f["geometry"]["type"] == "LineString"]
    line = [c for leg in legs for c in leg["geometry"]["coordinates"]]
    # out, back to tip (the leg into a new trip's first stop passes the depot), ..., home
    assert line.count(list(DEPOT)) == len(route.trip_loads_l) + 1


def test_the_plan_as_geojson() -> None:
    result = plan(town(12, seed=4, mandatory_share=1.0), fleet())
    route = result.routes[0]
    collection = route.geojson(DEPOT)
    legs = [f for f in collection["features"] if f["geometry"]["type"] == "LineString"]
    points = [f for f in collection["features"] if f["geometry"]["type"] == "Point"]
    # the contract: one leg per stop, arriving at it (`order` = its number), then the return to the depot
    assert [leg["properties"]["order"] for leg in legs] == list(range(1, len(route.stops) + 2))
    assert legs[0]["geometry"]["coordinates"][0] == list(DEPOT) == legs[-1]["geometry"]["coordinates"][-1]
    assert {leg["properties"]["geometry"] for leg in legs} == {"straight"}       # no road network given
    assert sum(leg["properties"]["distance_m"] for leg in legs) == route.distance_m == \
        collection["properties"]["distance_m"]
    assert [p["properties"]["device_id"] for p in points] == [s.device_id for s in route.stops]
    assert points[0]["properties"]["order"] == 1 and points[0]["properties"]["street"] is None
    assert "no road network imported: distances are straight lines x1.3" in result.notes[-1]
    assert result.geometry == "straight"


def test_more_mandatory_bins_than_the_fleet_holds_says_so() -> None:
    bins = town(30, seed=5, mandatory_share=1.0)
    result = plan(bins, fleet(trucks=1, capacity_l=1_000))
    assert not result.feasible and result.missed_mandatory
    assert "add a truck" in result.notes[0]
    assert result.routes[0].load_l <= 1_000                 # what is planned can still be driven
    assert set(result.visited).isdisjoint(result.missed_mandatory)
    assert len(result.visited) + len(result.missed_mandatory) == len(bins)


def test_a_bin_bigger_than_a_truck_is_refused_by_name() -> None:
    bins = town(5, seed=6)
    with pytest.raises(RoutingError, match=f"bin {bins[0].device_id} holds {bins[0].load_l} l, more than a truck"):
        plan(bins, fleet(capacity_l=30))


@pytest.mark.parametrize(("lon", "lat", "message"), [
    (float("nan"), 52.0, "impossible coordinates"), (-0.7, 152.0, "impossible coordinates"),
    (2.35, 48.85, "there and back from the depot"),        # Paris: 5 h of driving each way from MK
])
def test_impossible_places_are_refused(lon: float, lat: float, message: str) -> None:
    bins = [*town(3, seed=7), PlanBin("bin-far", lon, lat, 100, True)]
    with pytest.raises(RoutingError, match=message):
        plan(bins, fleet())


def test_a_fleet_that_cannot_work_is_refused() -> None:
    with pytest.raises(RoutingError, match="at least one truck"):
        fleet(trucks=0)
    with pytest.raises(RoutingError, match="cannot work"):
        fleet(shift_h=1.0, break_min=60)
    with pytest.raises(RoutingError, match="at least one trip"):
        fleet(max_trips=0)


def test_haversine_one_degree_of_latitude() -> None:
    assert distance_matrix_m([0.0, 0.0], [0.0, 1.0])[0, 1] == pytest.approx(111_195, rel=1e-4)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=1, max_size=15), st.integers(500, 1_500), st.integers(0, 3),
       st.integers(1, 3))
def test_a_route_never_exceeds_its_capacity(loads: list[int], capacity: int, seed: int, trips: int) -> None:
    rng = np.random.default_rng(seed)
    bins = [PlanBin(f"b{i}", DEPOT[0] + rng.normal(0, 0.02), DEPOT[1] + rng.normal(0, 0.02), load,
                    bool(rng.random() < 0.5), 50.0) for i, load in enumerate(loads)]
    result = plan_collection(bins, fleet(trucks=2, capacity_l=capacity, max_trips=trips), seed=seed,
                             max_iterations=100)
    assert all(load <= capacity for r in result.routes for load in r.trip_loads_l)
    assert all(s.load_after_l <= capacity for r in result.routes for s in r.stops)
    assert all(len(r.trip_loads_l) <= trips for r in result.routes)
    assert len(result.visited) == len(set(result.visited))
    assert result.feasible == (not result.missed_mandatory)
