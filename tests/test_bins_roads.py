"""Bin rounds on the road network (rules.routing.roads, the plan, the pipeline and the store).

Small networks drawn in local metres around (-0.76, 52.04), every segment with an exact
`length_m`, so each expected distance is a sum of lengths done by hand next to it. One speed
(36 km/h = 10 m/s) for every road class unless a test says otherwise, so a drive time is the
distance / 10.
"""

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from cityops.settings import BinsSettings, StorageSettings
from cityops.storage import Database, migrate
from democity.town import CLOSES, ONE_WAY_COLUMNS, build_town
from pipelines.bins.pipeline import BinsRunSettings, run_bins
from pipelines.gritting.store import save_network
from rules.errors import RoutingError
from rules.geo import LocalProjection, haversine_m
from rules.gritting.network import RoadNetwork, parse_network
from rules.routing.graph import UNREACHABLE, Edge, RoadGraph
from rules.routing.plan import Fleet, PlanBin, plan_collection
from rules.routing.roads import road_matrices, snap
from simulation.bins import BinSpec
from simulation.synthetic.bins import simulate_bin

HERE = LocalProjection(-0.76, 52.04)
TEN_M_S = {1: 36.0, 2: 36.0, 3: 36.0}          # km/h: 10 m/s on every class
SHIFT = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def at(x: float, y: float) -> tuple[float, float]:
    lon, lat = HERE.lonlat(x, y)
    return round(float(lon), 6), round(float(lat), 6)        # GeoJSON to the 0.1 m, as the legs are drawn


def road(segment_id: str, name: str, points: Sequence[tuple[float, float]], length_m: float, *,
         oneway: bool = False, priority: int = 3) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [list(at(*p)) for p in points]},
            "properties": {"segment_id": segment_id, "name": name, "priority": priority, "length_m": length_m,
                           "oneway": oneway}}


def network(*roads: dict[str, Any]) -> RoadNetwork:
    return parse_network({"type": "FeatureCollection", "features": list(roads)}, "test")


def places(*points: tuple[float, float]) -> tuple[list[float], list[float]]:
    lonlat = [at(*p) for p in points]
    return [p[0] for p in lonlat], [p[1] for p in lonlat]


# A river runs east-west between y=0 and y=100; one bridge at x=1000.
RIVER = (road("s", "South Road", [(0, 0), (1000, 0)], 1000.0),
         road("n", "North Road", [(0, 100), (1000, 100)], 1000.0),
         road("b", "Bridge Street", [(1000, 0), (1000, 100)], 100.0))


def test_two_bins_across_the_river_are_far_apart_by_road() -> None:
    # depot at the west end of South Road; bin 1 20 m north of South Road at x=100, bin 2 20 m
    # south of North Road at x=100: 60 m apart as the crow flies
    lon, lat = places((0, 0), (100, 20), (100, 80))
    roads = road_matrices(network(*RIVER), lon, lat, speeds_kmh=TEN_M_S)
    assert [a.street for a in roads.anchors] == ["South Road", "South Road", "North Road"]
    assert roads.anchors[1].along_m == pytest.approx(100, abs=0.5)
    assert roads.anchors[1].distance_m == pytest.approx(20, abs=0.5)
    # by hand: bin 1 -> east end of South Road 900, the bridge 100, North Road back west 900 = 1900
    assert roads.distance_m[1, 2] == pytest.approx(1900, abs=1) and roads.distance_m[2, 1] == roads.distance_m[1, 2]
    assert roads.duration_s[1, 2] == pytest.approx(190, abs=1)          # 1900 m at 10 m/s
    # depot -> bin 1: 100 along South Road; bin 2 -> depot: 900 + 100 + 1000 = 2000
    assert roads.distance_m[0, 1] == pytest.approx(100, abs=1)
    assert roads.distance_m[2, 0] == pytest.approx(2000, abs=1)
    leg = roads.leg(1, 2, "bin a", "bin b")
    assert leg.geometry == "roads" and leg.distance_m == roads.distance_m[1, 2]
    assert at(1000, 0) in leg.coords and at(1000, 100) in leg.coords      # over the bridge
    # South Road east, left (north) onto the bridge, left (west) onto North Road: by the map
    assert leg.directions[0] == "Leave bin a along South Road (900 m)."
    assert leg.directions[1].startswith("Turn left onto Bridge Street at the junction of")
    assert leg.directions[2].startswith("Turn left onto North Road") and leg.directions[2].endswith("(900 m).")
    assert leg.directions[-1] == "Stop at bin b on North Road."


def test_the_plan_follows_the_road_and_draws_each_leg_along_it() -> None:
    lon, lat = places((0, 0), (100, 20), (100, 80))
    bins = [PlanBin("a", lon[1], lat[1], 100, True), PlanBin("b", lon[2], lat[2], 100, True)]
    fleet = Fleet(lon[0], lat[0], 1, 1_000, SHIFT)
    roads = road_matrices(network(*RIVER), lon, lat, speeds_kmh=TEN_M_S)
    plan = plan_collection(bins, fleet, max_iterations=50, roads=roads)
    (route,) = plan.routes
    # either order drives 100 + 1900 + 2000 = 4000 m (the matrix is symmetric here), by hand
    assert plan.geometry == "roads" and route.distance_m == pytest.approx(4000, abs=3)
    straight = plan_collection(bins, fleet, max_iterations=50)
    assert straight.distance_m < 400                                   # (100 + 60 + 100 m or so) x 1.3
    assert [s.street for s in route.stops] in (["South Road", "North Road"], ["North Road", "South Road"])
    assert all(s.directions for s in route.stops)
    collection = route.geojson((lon[0], lat[0]))
    legs = [f for f in collection["features"] if f["geometry"]["type"] == "LineString"]
    assert [f["properties"]["order"] for f in legs] == [1, 2, 3]        # to stop 1, to stop 2, home
    assert {f["properties"]["geometry"] for f in legs} == {"roads"}
    assert sum(f["properties"]["distance_m"] for f in legs) == route.distance_m
    assert legs[1]["properties"]["duration_s"] == pytest.approx(190, abs=1)
    points = [f for f in collection["features"] if f["geometry"]["type"] == "Point"]
    assert [p["properties"]["street"] for p in points] == [s.street for s in route.stops]
    assert any("follow the road network: 2 of 2 bins on a street" in n for n in plan.notes)


# A one-way street east from P(0,0) to Q(500,0); Loop Road back round Q-R(500,200)-S(0,200)-P.
LOOP = (road("ow", "One Way Street", [(0, 0), (500, 0)], 500.0, oneway=True),
        road("l1", "Loop Road", [(500, 0), (500, 200)], 200.0),
        road("l2", "Loop Road", [(500, 200), (0, 200)], 500.0),
        road("l3", "Loop Road", [(0, 200), (0, 0)], 200.0))


def test_a_one_way_street_is_short_one_way_and_long_the_other() -> None:
    lon, lat = places((0, 100), (100, 5), (400, 5))
    roads = road_matrices(network(*LOOP), lon, lat, speeds_kmh=TEN_M_S)
    # along the street: 400 - 100 = 300 m; back: 100 to Q, 200 + 500 + 200 round the loop, 100 to the bin
    assert roads.distance_m[1, 2] == pytest.approx(300, abs=1)
    assert roads.distance_m[2, 1] == pytest.approx(1100, abs=1)
    back = roads.leg(2, 1, "bin b", "bin a")
    assert [d.split(" onto ")[0] for d in back.directions[1:-1]] == ["Turn left"] * 4   # anticlockwise round
    assert back.directions[-2].startswith("Turn left onto One Way Street")
    plan = plan_collection([PlanBin("a", lon[1], lat[1], 10, True), PlanBin("b", lon[2], lat[2], 10, True)],
                           Fleet(lon[0], lat[0], 1, 100, SHIFT), max_iterations=50, roads=roads)
    # depot on Loop Road (l3, 100 m from P): 100 to P, a 100, b 300, b -> Q 100 + 200 + 500 + 100 to the depot
    assert plan.visited == ["a", "b"] and plan.routes[0].distance_m == pytest.approx(1400, abs=3)


def test_a_dead_end_is_left_the_way_it_was_entered() -> None:
    # Main Road A(0,0)-B(1000,0); Acorn Close leaves B north 60 m, then back west 850 m to its
    # turning head at (150, 60); a bin beside the turning head is 160 m from the depot at A
    dead_end = network(road("m", "Main Road", [(0, 0), (1000, 0)], 1000.0),
                       road("c", "Acorn Close", [(1000, 0), (1000, 60), (150, 60)], 910.0))
    lon, lat = places((0, 0), (150, 66))
    roads = road_matrices(dead_end, lon, lat, speeds_kmh=TEN_M_S)
    assert roads.anchors[1].street == "Acorn Close"
    straight = float(haversine_m(lon[0], lat[0], lon[1], lat[1]))
    assert straight == pytest.approx(163, abs=1)                       # sqrt(150² + 66²)
    # in: 1000 along Main Road + 60 + 850 along the close; out the same way (no other exit)
    assert roads.distance_m[0, 1] == pytest.approx(1910, abs=1) and roads.distance_m[1, 0] == roads.distance_m[0, 1]
    leg = roads.leg(0, 1, "the depot", "bin x")
    assert at(1000, 60) in leg.coords                                  # the close's bend, drawn
    assert leg.directions[-1] == "Stop at bin x on Acorn Close."
    assert roads.leg(1, 0, "bin x", "the depot").directions[-1] == "Return to the depot (Main Road)."


def test_speeds_by_road_class_choose_the_faster_way() -> None:
    # two ways from A(0,0) to B(1000,0): the residential straight 1000 m, or a main road round
    # by (0,300) and (1000,300): 300 + 1000 + 300 = 1600 m
    roads_ = network(road("r", "Short Street", [(0, 0), (1000, 0)], 1000.0, priority=3),
                     road("m1", "Ring Road", [(0, 0), (0, 300)], 300.0, priority=1),
                     road("m2", "Ring Road", [(0, 300), (1000, 300)], 1000.0, priority=1),
                     road("m3", "Ring Road", [(1000, 300), (1000, 0)], 300.0, priority=1))
    lon, lat = places((10, -1), (990, -1))                              # both beside Short Street
    slow = road_matrices(roads_, lon, lat, speeds_kmh={1: 36.0, 2: 36.0, 3: 36.0})
    assert slow.distance_m[0, 1] == pytest.approx(980, abs=1) and slow.duration_s[0, 1] == pytest.approx(98, abs=1)
    # residential at 9 km/h (2.5 m/s): 980 m in 392 s; or 10 m of it to A (4 s), the ring at 72 km/h
    # (20 m/s) 1600 m in 80 s, 10 m to the bin (4 s): 1620 m in 88 s, so the ring wins
    fast_ring = road_matrices(roads_, lon, lat, speeds_kmh={1: 72.0, 2: 36.0, 3: 9.0})
    assert fast_ring.distance_m[0, 1] == pytest.approx(1620, abs=1)
    assert fast_ring.duration_s[0, 1] == pytest.approx(88, abs=1)


def test_a_bin_far_from_every_street_falls_back_to_a_straight_line() -> None:
    lon, lat = places((0, 0), (100, 20), (500, -400))                  # bin 2 is 400 m south of South Road
    roads = road_matrices(network(*RIVER), lon, lat, speeds_kmh=TEN_M_S, snap_max_m=150, fallback_kmh=36.0)
    assert not roads.anchors[2].snapped and roads.anchors[2].street is None
    straight = float(haversine_m(lon[1], lat[1], lon[2], lat[2]))
    assert roads.distance_m[1, 2] == round(straight * 1.3)             # the straight-line estimate
    assert roads.duration_s[1, 2] == round(straight * 1.3 / 10)
    leg = roads.leg(1, 2, "bin a", "bin b")
    assert leg.geometry == "straight" and leg.coords == (at(100, 20), at(500, -400))
    assert any("1 place(s) more than 150 m from every street (point 2)" in n for n in roads.notes)
    plan = plan_collection([PlanBin("a", lon[1], lat[1], 10, True), PlanBin("far", lon[2], lat[2], 10, True)],
                           Fleet(lon[0], lat[0], 1, 100, SHIFT), max_iterations=50, roads=roads)
    assert any("more than 150 m from every street" in n for n in plan.notes)
    assert [s.street for s in plan.routes[0].stops if s.device_id == "far"] == [None]


def test_without_a_network_the_plan_says_it_drew_straight_lines() -> None:
    lon, lat = places((0, 0), (100, 20), (100, 80))
    plan = plan_collection([PlanBin("a", lon[1], lat[1], 10, True), PlanBin("b", lon[2], lat[2], 10, True)],
                           Fleet(lon[0], lat[0], 1, 100, SHIFT), max_iterations=50)
    assert plan.geometry == "straight" and plan.notes[-1] == (
        "no road network imported: distances are straight lines x1.3 and the map draws straight lines")
    assert all(s.street is None and s.directions == () for s in plan.routes[0].stops)
    with pytest.raises(RoutingError, match="the road matrices cover 3 places"):
        roads = road_matrices(network(*RIVER), lon, lat, speeds_kmh=TEN_M_S)
        plan_collection([PlanBin("a", lon[1], lat[1], 10, True)], Fleet(lon[0], lat[0], 1, 100, SHIFT), roads=roads)


def test_the_demo_town_is_drivable_everywhere_with_its_one_way_pair_and_closes() -> None:
    town = build_town(1)
    net = parse_network(town.network_geojson(), "demo")
    oneway = [s for s in net.segments if s.oneway]
    # Park Row and Queen Street along the centre's blocks (democity.town: ONE_WAY_COLUMNS)
    assert sorted({s.name for s in oneway}) == ["Park Row", "Queen Street"]
    assert len(oneway) == 2 * len(ONE_WAY_COLUMNS)
    edges = [Edge(s.segment_id, s.start_node, s.end_node, s.length_m, s.oneway) for s in net.segments]
    forward = RoadGraph(edges, [1] * len(edges))
    backward = RoadGraph([Edge(e.edge_id, e.head, e.tail, e.length_m, e.oneway) for e in edges], [1] * len(edges))
    everywhere = set(range(len(forward.nodes)))
    # strongly connected: every junction reached from one, and that one from every junction
    assert UNREACHABLE not in forward.dijkstra(0, everywhere)[0]
    assert UNREACHABLE not in backward.dijkstra(backward.index[forward.nodes[0]], everywhere)[0]
    degree: dict[str, int] = {}
    for s in net.segments:
        for node in (s.start_node, s.end_node):
            degree[node] = degree.get(node, 0) + 1
    assert sum(d == 1 for d in degree.values()) == len(CLOSES)          # each close ends in a turning head
    # every bin and home is within the snapping distance of a street; two bins stand in the closes
    points = [(b.lon, b.lat) for b in town.bins] + [(h.lon, h.lat) for h in town.homes]
    anchors = snap(net, [p[0] for p in points], [p[1] for p in points], BinsSettings().snap_max_m)
    assert all(a.snapped for a in anchors)
    assert {name for name, *_ in CLOSES} <= {a.street for a in anchors[:len(town.bins)]}


# --- the pipeline against the real PostgreSQL ------------------------------------------------

START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 14
NOW = START + timedelta(days=DAYS)          # a Monday, 00:00
FAST = BinsRunSettings(time_limit_s=10, max_iterations=100, roads=BinsSettings(main_road_kmh=36, distributor_kmh=36,
                                                                               residential_kmh=36))


@pytest.fixture(scope="module")
async def own_db(postgres_admin_url: str) -> AsyncIterator[Database]:
    """A database of this module's own: the run plans on whatever road network is imported."""
    from tests.conftest import scratch_database

    async with scratch_database(postgres_admin_url) as url, Database.connect(url) as database:
        await migrate(database, StorageSettings())
        yield database


async def add_full_bin(db: Database, device_id: str, depot: str, x: float, y: float, seed: int) -> None:
    lon, lat = at(x, y)
    await db.execute("INSERT INTO devices (device_id, kind, lon, lat, bin_depth_mm, sensor_height_mm, sensor_type) "
                     "VALUES ($1, 'bin', $2, $3, 1000, 1300, 'jsn-sr04t')", device_id, lon, lat)
    await db.execute("INSERT INTO bin_settings (device_id, collection_weekdays, depot_id) VALUES ($1, $2, $3)",
                     device_id, [3], depot)
    history = simulate_bin(BinSpec(base_fill_per_day=0.45, collection_weekday=3, fire_chance_per_day=0,
                                   tilt_chance_per_day=0), START, days=DAYS, seed=seed)
    await db.execute("INSERT INTO bin_readings (device_id, ts, distance_mm, temp_c, tilt_deg) "
                     "SELECT $1, * FROM unnest($2::timestamptz[], $3::real[], $4::real[], $5::real[])", device_id,
                     [datetime.fromtimestamp(h * 3600, UTC) for h in history.times_h],
                     [None if np.isnan(d) else float(d) for d in history.distance_mm], history.temp_c.tolist(),
                     history.tilt_deg.tolist())


async def stored_stops(db: Database, depot: str) -> list[Any]:
    plan_id = await db.fetchval("SELECT max(plan_id) FROM bin_plans WHERE depot_id = $1", depot)
    return await db.fetch("SELECT device_id, street, directions FROM bin_plan_stops WHERE plan_id = $1 "
                          "ORDER BY truck, seq", plan_id)


async def test_a_run_stores_each_stops_street_and_directions(own_db: Database, unique: str) -> None:
    import json

    from ops_api.queries import bins as bins_q

    depot = f"{unique}-depot"
    lon, lat = at(0, 0)
    await own_db.execute("INSERT INTO bin_depots (depot_id, lon, lat, trucks, capacity_l, max_trips) "
                         "VALUES ($1, $2, $3, 1, 10000, 1)", depot, lon, lat)
    south, north = f"{unique}-south", f"{unique}-north"
    await add_full_bin(own_db, south, depot, 100, 20, seed=1)
    await add_full_bin(own_db, north, depot, 100, 80, seed=2)

    # no network imported yet: straight lines, no streets, and the plan says so
    await run_bins(own_db, now=NOW, settings=FAST)
    stops = await stored_stops(own_db, depot)
    assert {s["device_id"] for s in stops} == {south, north}
    assert all(s["street"] is None and json.loads(s["directions"]) == [] for s in stops)
    plan_id = await own_db.fetchval("SELECT max(plan_id) FROM bin_plans WHERE depot_id = $1", depot)
    body = await bins_q.plan(own_db, plan_id)
    assert not body["follows_roads"] and "no road network imported" in body["notes"][-1]

    await save_network(own_db, network(*RIVER))
    await run_bins(own_db, now=NOW + timedelta(minutes=1), settings=FAST)
    stops = await stored_stops(own_db, depot)
    streets = {s["device_id"]: s["street"] for s in stops}
    assert streets == {south: "South Road", north: "North Road"}
    directions = {s["device_id"]: json.loads(s["directions"]) for s in stops}
    second = stops[1]["device_id"]
    # whichever bin is second, the way to it crosses the only bridge (RIVER, by the map)
    assert any("Bridge Street" in step for step in directions[second])
    assert directions[second][-1] == f"Stop at bin {second} on {streets[second]}."
    plan_id = await own_db.fetchval("SELECT max(plan_id) FROM bin_plans WHERE depot_id = $1", depot)
    row, shape, truck_stops = await bins_q.truck_of(own_db, plan_id, 1)
    assert [s["street"] for s in truck_stops] == [streets[s["device_id"]] for s in stops]
    assert all(isinstance(s["directions"], list) and s["directions"] for s in truck_stops)
    assert shape is not None and shape["properties"]["geometry"] == "roads"
    # 100 + 1900 + 2000 m in either order (the hand sums of the river test)
    assert row["distance_m"] == pytest.approx(4000, abs=3)
    assert (await bins_q.plan(own_db, plan_id))["follows_roads"]


def test_the_benchmark_plans_the_same_demo_bins_both_ways() -> None:
    from benchmarks.bins_roads import compare, report

    c = compare(BinsSettings(), time_limit_s=20, max_iterations=20)
    # every demo bin (democity.town BINS) is on a street and collected in both plans
    assert c.bins == c.snapped == 300
    assert sum(t.bins for t in c.straight) == sum(t.bins for t in c.roads) == 300
    # the straight plan's own order, driven on the roads, is the same number of stops per truck
    assert [t.bins for t in c.straight_on_roads] == [t.bins for t in c.straight]
    text = report(c)
    assert "road-network matrix (depot + 300 bins)" in text and "road plan vs straight estimate" in text
