"""Route plans: every segment to treat served once, the salt capacity per trip, same seed same plan."""

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from rules.gritting.instructions import turn_words
from rules.gritting.network import RoadNetwork, Segment, parse_network
from rules.gritting.plan import Treatment, plan_route

NETWORK = Path(__file__).parent / "data" / "roads" / "network.geojson"


def network() -> RoadNetwork:
    return parse_network(json.loads(NETWORK.read_text()), "network")


def treatments(net: RoadNetwork, route_id: str, rate: float = 8.0) -> dict[str, Treatment]:
    return {s.segment_id: Treatment(rate, 1, rate * s.length_m * s.width_m / 1000)
            for s in net.route_segments(route_id)}


def plan(net: RoadNetwork, treat: dict[str, Treatment], route: int = 0, seed: int = 1):  # type: ignore[no-untyped-def]
    return plan_route(net, net.routes[route], treat, seed=seed, time_limit_s=None, max_iterations=300)


def test_every_segment_served_once_within_capacity_with_reloads() -> None:
    net = network()
    treat = treatments(net, "R1")                       # 5 segments, 16-20 kg each, 40 kg a load
    result = plan(net, treat)
    assert result.feasible and not result.notes
    assert Counter(result.served) == Counter(list(treat))   # each exactly once
    assert result.arc is not None and result.trips == len(result.arc.trips) >= 3
    capacity = net.routes[0].salt_capacity_kg
    for trip in result.arc.trips:
        load = sum(treat[t.edge_id].salt_kg for t in trip.traversals if t.service)
        assert load == pytest.approx(trip.load) and load <= capacity + 1e-9
        assert trip.traversals[0].from_node == trip.traversals[-1].to_node == net.depot_node("DEP")
        for a, b in zip(trip.traversals, trip.traversals[1:], strict=False):
            assert a.to_node == b.from_node                      # a connected walk
    oneway = {s.segment_id for s in net.segments if s.oneway}
    by_id = {s.segment_id: s for s in net.segments}
    for trip in result.arc.trips:
        for t in trip.traversals:
            if t.edge_id in oneway:
                assert t.from_node == by_id[t.edge_id].start_node      # one-way roads driven their way
    assert result.duration_h > 0


def test_same_seed_same_plan() -> None:
    net = network()
    treat = treatments(net, "R1")
    a, b = plan(net, treat, seed=7), plan(net, treat, seed=7)
    assert a.geojson == b.geojson and a.instructions == b.instructions


def test_geojson_and_instructions() -> None:
    net = network()
    treat = treatments(net, "R2", rate=15.0) | {"s6": Treatment(15.0, 2, 15.0 * 277.2 * 7.3 / 1000)}
    result = plan(net, treat, route=1)
    features = result.geojson["features"]
    assert features[0]["properties"]["role"] == "depot"
    lines = features[1:]
    assert [f["properties"]["seq"] for f in lines] == list(range(1, len(lines) + 1))
    service = [f["properties"] for f in lines if f["properties"]["service"]]
    assert sorted(p["segment_id"] for p in service) == ["s5", "s6", "s7"]
    assert all(p["spread_rate_g_m2"] == 15.0 and p["mode"] == "service" for p in service)
    assert all(f["properties"]["spread_rate_g_m2"] == 0 for f in lines if not f["properties"]["service"])
    for f in lines:                                   # drawn in the direction of travel
        assert f["geometry"]["coordinates"][0] == [float(v) for v in f["properties"]["from_node"].split(",")]
    text = [step["text"] for step in result.instructions]
    assert text[0].startswith("Trip 1 (gritter 1): load at least")
    assert any("spread 15 g/m² along High Street" in t for t in text)
    assert any("spread 15 g/m² along Station Road" in t for t in text)
    assert text[-1] == "Return to Ashton depot: this gritter's work is done."
    assert any(t.startswith(("Turn", "Bear", "Continue", "Make a U-turn")) and " at the junction of " in t
               for t in text)
    assert any("two treatments" in n for n in result.notes)


def test_reload_lines_and_heavy_or_cut_off_segments() -> None:
    net = network()
    result = plan(net, treatments(net, "R1"))
    assert sum("to reload" in s["text"] for s in result.instructions) == result.trips - 1
    heavy = treatments(net, "R1") | {"s3": Treatment(40.0, 1, 99.0)}
    reported = plan(net, heavy)
    assert "s3" not in reported.served and not reported.feasible
    assert any("s3 needs 99.0 kg, more than a full load of 40.0 kg" in n for n in reported.notes)
    island = Segment("island", "Island Road", 1, 200.0, 7.3, ((-2.61, 51.46), (-2.611, 51.46)), route_id="R1")
    cut = replace(net, segments=(*net.segments, island))
    lonely = plan(cut, treatments(cut, "R1"))
    assert "island" not in lonely.served and any("island is not connected" in n for n in lonely.notes)


def test_turn_words() -> None:
    assert [turn_words(a) for a in (0, 20, -45, 90, -90, 150, 179, -179)] == [
        "Continue", "Continue", "Bear left", "Turn right", "Turn left", "Turn sharp right", "Make a U-turn",
        "Make a U-turn"]
