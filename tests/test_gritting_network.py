"""The road network file: a hand-made network parses; every kind of bad input names its feature."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import shapely

from rules.errors import InvalidRoadNetwork
from rules.gritting.network import parse_network

NETWORK = Path(__file__).parent / "data" / "roads" / "network.geojson"
BRISTOL = shapely.from_wkt("POLYGON ((-2.73 51.39, -2.48 51.39, -2.48 51.55, -2.73 51.55, -2.73 51.39))")


def data() -> dict[str, Any]:
    return json.loads(NETWORK.read_text())


def test_the_hand_made_network() -> None:
    net = parse_network(data(), "network.geojson", area=BRISTOL)
    by_id = {s.segment_id: s for s in net.segments}
    assert len(by_id) == 9 and [d.depot_id for d in net.depots] == ["DEP"]
    assert [(r.route_id, r.salt_capacity_kg, r.max_trips) for r in net.routes] == [("R1", 40.0, 6), ("R2", 6000.0, 2)]
    main = by_id["s1"]
    assert main.length_m == pytest.approx(277.2, abs=0.5)            # measured along the line
    assert main.start_node == "-2.60000,51.45000" and main.end_node == by_id["s2"].start_node
    bridge = by_id["s5"]
    assert bridge.bridge and bridge.offset_for("extreme") == -2.5 and bridge.offset_for("damped") == -1.0
    assert by_id["s1"].offset_for("extreme") == 0.3                   # no per-class offsets: the plain one
    assert by_id["s2"].oneway and by_id["s9"].route_id is None
    assert net.depot_node("DEP") == main.start_node
    assert net.unreachable("R1") == []
    lon, lat = main.midpoint
    assert lon == pytest.approx(-2.598, abs=1e-6) and lat == pytest.approx(51.45)


def broken(change: Any) -> str:
    d = data()
    change(d)
    with pytest.raises(InvalidRoadNetwork) as err:
        parse_network(d, "net.geojson", area=BRISTOL)
    assert "nothing imported" in str(err.value) or "FeatureCollection" in str(err.value)
    return str(err.value)


def feature(d: dict[str, Any], segment_id: str) -> dict[str, Any]:
    return next(f for f in d["features"] if f["properties"].get("segment_id") == segment_id)


def test_each_problem_names_its_feature() -> None:
    assert "feature 0 (id 's1'): priority 4 is outside 1..3" in broken(
        lambda d: feature(d, "s1")["properties"].update(priority=4))
    assert "priority 'high' is outside 1..3" in broken(lambda d: feature(d, "s1")["properties"].update(priority="high"))
    assert "no segment id" in broken(lambda d: feature(d, "s1")["properties"].pop("segment_id"))
    text = broken(lambda d: feature(d, "s2")["properties"].update(segment_id="s1"))
    assert "duplicate segment id 's1'" in text and "also feature 0" in text
    assert "geometry is a Polygon, not a LineString" in broken(lambda d: feature(d, "s1").update(
        geometry={"type": "Polygon", "coordinates": [[[-2.6, 51.45], [-2.59, 51.45], [-2.59, 51.46], [-2.6, 51.45]]]}))
    assert "MultiLineString" in broken(lambda d: feature(d, "s1").update(
        geometry={"type": "MultiLineString", "coordinates": [[[-2.6, 51.45], [-2.59, 51.45]]]}))
    assert "at least two positions" in broken(lambda d: feature(d, "s1")["geometry"].update(
        coordinates=[[-2.6, 51.45]]))
    assert "zero length" in broken(lambda d: feature(d, "s1")["geometry"].update(
        coordinates=[[-2.6, 51.45], [-2.6, 51.45]]))
    assert "no geometry" in broken(lambda d: feature(d, "s1").update(geometry=None))
    assert "not lon/lat" in broken(lambda d: feature(d, "s1")["geometry"].update(
        coordinates=[[358000, 172000], [358300, 172000]]))
    assert "not numbers" in broken(lambda d: feature(d, "s1")["geometry"].update(
        coordinates=[["a", 51.45], [-2.59, 51.45]]))
    assert "width_m -3 must be a positive number" in broken(
        lambda d: feature(d, "s1")["properties"].update(width_m=-3))
    assert "weather class 'frosty'" in broken(
        lambda d: feature(d, "s5")["properties"].update(thermal_offsets={"frosty": -1}))
    assert "route 'R9' is not defined" in broken(lambda d: feature(d, "s1")["properties"].update(route="R9"))
    assert "depot 'NOPE' is not defined" in broken(lambda d: d["routes"][0].update(depot_id="NOPE"))
    assert "no salt_capacity_kg" in broken(lambda d: d["routes"][0].pop("salt_capacity_kg"))
    assert "not lon/lat" in broken(lambda d: d.update(crs={"type": "name", "properties": {
        "name": "urn:ogc:def:crs:EPSG::27700"}}))
    assert "expected a GeoJSON FeatureCollection" in broken(lambda d: d.update(type="Feature"))


def test_all_problems_are_listed_together() -> None:
    def two(d: dict[str, Any]) -> None:
        feature(d, "s1")["properties"]["priority"] = 0
        feature(d, "s3")["geometry"] = {"type": "Point", "coordinates": [-2.6, 51.45]}
    text = broken(two)
    assert "2 problem(s)" in text and "'s1'" in text and "'s3'" in text


def test_swapped_latitude_and_longitude_are_recognised() -> None:
    d = data()
    for f in d["features"]:
        geometry = f["geometry"]
        if geometry["type"] == "LineString":
            geometry["coordinates"] = [[lat, lon] for lon, lat in geometry["coordinates"]]
        else:
            lon, lat = geometry["coordinates"]
            geometry["coordinates"] = [lat, lon]
    with pytest.raises(InvalidRoadNetwork, match="look swapped"):
        parse_network(d, "net", area=BRISTOL)


def test_a_depot_far_from_the_network() -> None:
    def far(d: dict[str, Any]) -> None:
        next(f for f in d["features"] if "depot_id" in f["properties"])["geometry"]["coordinates"] = [-2.55, 51.45]
    assert "from the nearest road junction" in broken(far)


def test_openstreetmap_tags_and_a_routes_file() -> None:
    d = data()
    routes = {"depots": [{"depot_id": "OSMD", "name": "OSM depot", "lon": -2.6001, "lat": 51.4501}],
              "routes": [{"route_id": "OSM", "depot_id": "OSMD", "salt_capacity_kg": 8000, "vehicles": 2}]}
    osm = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "way/1", "properties": {"name": "Bristol Road", "ref": "A38", "highway": "primary",
                                                          "oneway": "-1", "bridge": "viaduct", "width": "9.5",
                                                          "route": "OSM"},
         "geometry": copy.deepcopy(feature(d, "s1")["geometry"])},
        {"type": "Feature", "id": "way/2", "properties": {"highway": "residential"},
         "geometry": copy.deepcopy(feature(d, "s3")["geometry"])}]}
    net = parse_network(osm, "osm", extra=routes)
    a38, lane = net.segments
    assert (a38.segment_id, a38.name, a38.priority, a38.width_m) == ("way/1", "A38 Bristol Road", 1, 9.5)
    assert a38.oneway and a38.bridge and a38.coords[0] == (-2.596, 51.45)    # reversed: oneway=-1
    assert lane.priority == 3 and lane.width_m == 7.3 and lane.name == "unnamed road way/2"
    assert any("7.3 m assumed" in n for n in net.notes) and any("highway tag" in n for n in net.notes)
    assert net.routes[0].vehicles == 2 and net.depots[0].depot_id == "OSMD"
