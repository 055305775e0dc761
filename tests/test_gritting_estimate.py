"""Road surface temperature per segment: snapping gritter points, IDW with offsets, dead sensors, cooling."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cityops.settings import GrittingSettings
from rules.gritting.assess import MobilePoints, assess
from rules.gritting.estimate import idw
from rules.gritting.network import RoadNetwork, parse_network
from rules.gritting.sensors import SensorHistory, why_dead
from rules.gritting.snap import SegmentLines, snap_points

NETWORK = Path(__file__).parent / "data" / "roads" / "network.geojson"
NOW = datetime(2026, 1, 6, 20, 0, tzinfo=UTC)
NOW_H = NOW.timestamp() / 3600
P = (-2.59595, 51.45003)       # by the Main Road / Mill Street junction, between three segments


def network() -> RoadNetwork:
    return parse_network(json.loads(NETWORK.read_text()), "network")


def snap(net: RoadNetwork, tracks: Sequence[Sequence[tuple[float, float]]]) -> list[str | None]:
    """The segment each track's middle point snaps to."""
    lines = SegmentLines.build([s.coords for s in net.segments], [s.oneway for s in net.segments], net.projection())
    device = [f"g{k}" for k, track in enumerate(tracks) for _ in track]
    t = np.array([10.0 * j for track in tracks for j in range(len(track))])
    lon = np.array([p[0] for track in tracks for p in track])
    lat = np.array([p[1] for track in tracks for p in track])
    result = snap_points(lines, device, t, lon, lat, 25.0)
    ids = [net.segments[i].segment_id if i >= 0 else None for i in result.segment.tolist()]
    out, start = [], 0
    for track in tracks:
        out.append(ids[start + len(track) // 2])
        start += len(track)
    return out


def test_heading_decides_between_segments_at_a_junction() -> None:
    net = network()
    north = [(P[0], 51.44990), P, (P[0], 51.45015)]
    east = [(-2.59610, P[1]), P, (-2.59580, P[1])]
    west = east[::-1]
    alone = [P]
    # nearest is the westbound carriageway (s8, 3.0 m); Mill Street (s4) runs north, Main Road east (s2)
    assert snap(net, [north, east, west, alone]) == ["s4", "s2", "s8", "s8"]


def test_parallel_one_way_carriageways_and_a_far_point() -> None:
    net = network()
    middle = (-2.594, 51.45006)                      # 6.7 m from both carriageways of Main Road
    east = [(-2.5942, 51.45006), middle, (-2.5938, 51.45006)]
    far = [(-2.598, 51.4515)]                        # in the middle of a block, 80 m from any road
    assert snap(net, [east, east[::-1], far]) == ["s2", "s8", None]


def sensor(device: str, lon: float, lat: float, latest: float, *, segment: str | None = None,
           hours: float = 3.0, slope: float = 0.0, age_h: float = 0.0, rh: float | None = None,
           state: str = "damp") -> SensorHistory:
    t = NOW_H - age_h - np.arange(hours * 6, -1, -1) / 6.0
    wiggle = np.where(np.arange(t.size) % 2 == 0, 0.01, -0.01)
    wiggle[-1] = 0.0
    rst = latest + slope * (t - t[-1]) + wiggle
    air = rst + 1.0
    rhs = np.full(t.size, np.nan if rh is None else rh)
    return SensorHistory(device, lon, lat, t, rst, air, rhs, (state,) * t.size, segment)


def mid(net: RoadNetwork, segment_id: str) -> tuple[float, float]:
    return next(s for s in net.segments if s.segment_id == segment_id).midpoint


def rst_now(result: object, segment_id: str) -> float:
    k = result.segment_ids.index(segment_id)  # type: ignore[attr-defined]
    return float(result.decisions.rst_now[k])  # type: ignore[attr-defined]


def test_inverse_distance_weighting_with_offsets() -> None:
    net = network()
    x = sensor("x", *mid(net, "s1"), 2.3, segment="s1")          # s1's offset +0.3: route average 2.0
    y = sensor("y", *mid(net, "s7"), -0.6, segment="s7")         # s7's offset +0.4: route average -1.0
    result = assess(net, [x, y], MobilePoints(), [], NOW, GrittingSettings(weather_class="intermediate"))
    proj = net.projection()
    sx, sy = proj.xy(*zip(*(mid(net, "s1"), mid(net, "s7")), strict=True))

    def expected(segment_id: str, offset: float) -> float:
        mx, my = proj.xy(*mid(net, segment_id))
        w = 1 / np.maximum((sx - mx) ** 2 + (sy - my) ** 2, 10.0 ** 2)    # 1/d², d at least 10 m
        return float((w[0] * 2.0 + w[1] * -1.0) / w.sum()) + offset

    assert rst_now(result, "s1") == pytest.approx(expected("s1", 0.3), abs=1e-3)
    assert rst_now(result, "s1") == pytest.approx(2.3, abs=0.01)      # on top of its own sensor
    assert rst_now(result, "s7") == pytest.approx(expected("s7", 0.4), abs=1e-3)
    assert rst_now(result, "s4") == pytest.approx(expected("s4", -0.2), abs=1e-3)
    # the bridge takes its per-class offset
    extreme = assess(net, [x, y], MobilePoints(), [], NOW, GrittingSettings(weather_class="extreme"))
    assert rst_now(extreme, "s5") - rst_now(result, "s5") == pytest.approx(-0.5, abs=1e-6)
    assert set(result.source) == {"sensors"} and not result.warnings


def test_idw_skips_missing_values_and_reports_the_nearest() -> None:
    values = np.array([[1.0], [np.nan], [3.0]])
    out = idw(np.array([0.0, 500.0]), np.array([0.0, 0.0]), np.array([0.0, 100.0, 200.0]),
              np.array([0.0, 0.0, 0.0]), [values], 300.0, nearest_masks=[np.ones(3, dtype=bool)])
    assert out.values[0][0, 0] == pytest.approx(1.0, abs=0.01)   # on top of sensor 0 (d at least 10 m)
    assert out.values[0][1, 0] == pytest.approx(3.0)         # only sensor 2 within 300 m of x=500
    assert out.nearest[0].tolist() == [0, 2] and out.used.tolist() == [3, 1]


def test_no_sensor_in_range_takes_the_route_average_with_a_warning() -> None:
    net = network()
    x = sensor("x", *mid(net, "s1"), 2.3, segment="s1")
    y = sensor("y", *mid(net, "s7"), -0.6, segment="s7")
    result = assess(net, [x, y], MobilePoints(), [], NOW,
                    GrittingSettings(sensor_range_m=100, weather_class="intermediate"))
    source = dict(zip(result.segment_ids, result.source, strict=True))
    assert source["s1"] == source["s7"] == "sensors"
    assert source["s4"] == source["s3"] == "route_average" and source["s6"] == "route_average"
    assert source["s9"] == "network_average"
    assert rst_now(result, "s4") == pytest.approx(2.0 - 0.2, abs=1e-6)      # R1 average + own offset
    assert rst_now(result, "s6") == pytest.approx(-1.0 + 0.5, abs=1e-6)     # R2 average + own offset
    assert rst_now(result, "s9") == pytest.approx(0.5, abs=1e-6)            # mean of both, offset 0
    warning = next(w for w in result.warnings if "no sensor within 100 m" in w)
    assert "took their route's average, 1 the network's" in warning and "s9" in warning


def test_dead_sensors_are_left_out_and_listed() -> None:
    net = network()
    good = sensor("good", *mid(net, "s1"), 1.5, segment="s1", slope=-0.5)    # cooled 1.5 degC in 3 h
    silent = sensor("silent", *mid(net, "s4"), -9.0, age_h=5.0)
    stuck = SensorHistory("stuck", *mid(net, "s6"), NOW_H - np.arange(18, -1, -1) / 6, np.full(19, -4.0))
    jumpy = sensor("jumpy", *mid(net, "s7"), 25.0)
    jumpy.rst_c[-2] = 5.0
    hot = sensor("hot", *mid(net, "s5"), 75.0)
    assert why_dead(good, NOW_H, 3.0) is None
    result = assess(net, [good, silent, stuck, jumpy, hot], MobilePoints(), [], NOW, GrittingSettings())
    dead = {d["device_id"]: d["why"] for d in result.inputs["sensors_dead"]}
    assert dead["silent"] == "last reading 5.0 h ago (more than 3 h)"
    assert dead["stuck"].startswith("stuck at -4 °C") and "while a neighbour moved 1.5 °C" in dead["stuck"]
    assert "jump from 5 to 25" in dead["jumpy"]
    assert "implausible surface temperature 75" in dead["hot"]
    assert [s["device_id"] for s in result.inputs["sensors_used"]] == ["good"]
    assert any("5 road sensor(s) left out" in w or "4 road sensor(s) left out" in w for w in result.warnings)
    assert rst_now(result, "s6") == pytest.approx(1.5 - 0.3 + 0.5, abs=1e-6)   # from the good one only


def test_a_steady_honest_sensor_is_kept_a_flat_one_beside_a_moving_neighbour_is_not() -> None:
    """Issue 17: on an overcast night a wet road holding +0.4 degC was dropped as 'stuck' and came out
    'monitor, no temperature'; it must be used (and treated: a wet road at or below the +1 degC trigger)."""
    net = network()
    steady = SensorHistory("steady", *mid(net, "s1"), NOW_H - np.arange(24, -1, -1) / 6, np.full(25, 0.4),
                           states=("wet",) * 25, segment_id="s1")
    also_steady = SensorHistory("also", *mid(net, "s7"), NOW_H - np.arange(24, -1, -1) / 6, np.full(25, 0.6),
                                states=("wet",) * 25, segment_id="s7")
    result = assess(net, [steady, also_steady], MobilePoints(), [], NOW, GrittingSettings())
    assert not result.inputs["sensors_dead"]
    k = result.segment_ids.index("s1")
    assert result.decisions.action[k] == 2, result.decisions.reason[k]
    # alone and flat for six hours: a frozen driver, left out with the reason
    alone = SensorHistory("alone", *mid(net, "s1"), NOW_H - np.arange(42, -1, -1) / 6, np.full(43, 0.4))
    dead = assess(net, [alone], MobilePoints(), [], NOW, GrittingSettings()).inputs["sensors_dead"]
    assert dead and "no neighbour in range to compare" in dead[0]["why"]


def test_a_fresh_gritter_reading_overrides_the_estimate() -> None:
    net = network()
    x = sensor("x", *mid(net, "s1"), 2.3, segment="s1", slope=-0.5)
    t = NOW_H - np.array([0.1, 0.095, 0.09, 0.05])
    lon = np.array([-2.5990, -2.5985, -2.5980, -2.598])
    lat = np.array([51.45001, 51.45001, 51.45001, 51.4515])    # three along s1, one far from any road
    mobile = MobilePoints(["grit"] * 4, t, lon, lat, np.array([-1.0, -1.2, -1.1, -5.0]), ["wet"] * 4)
    plain = assess(net, [x], MobilePoints(), [], NOW, GrittingSettings())
    result = assess(net, [x], mobile, [], NOW, GrittingSettings())
    k = result.segment_ids.index("s1")
    assert result.source[k] == "gritter" and rst_now(result, "s1") == pytest.approx(-1.1)
    shift = -1.1 - rst_now(plain, "s1")
    assert result.decisions.rst_min[k] == pytest.approx(plain.decisions.rst_min[k] + shift)
    assert result.decisions.surface[k] == "wet"
    assert result.inputs["gritter_points"] == {"fresh": 4, "snapped": 3, "not_snapped": 1}
    assert any("1 of 4 fresh gritter point(s) more than 25 m" in w for w in result.warnings)


def test_forecast_dew_point_and_time_grid() -> None:
    net = network()
    x = sensor("x", *mid(net, "s1"), 0.5, segment="s1", rh=95.0, slope=-0.4, state="dry")
    result = assess(net, [x], MobilePoints(), [], NOW, GrittingSettings(window_h=6, step_min=60))
    assert result.times[0] == NOW and result.times[-1] == NOW + timedelta(hours=6) and len(result.times) == 7
    k = result.segment_ids.index("s1")
    # air 1.5 degC at 95 %: dew point about +0.8; the dry road cools to it, dew makes it damp below +1: treat
    reason = result.decisions.reason[k]
    assert result.decisions.action[k] == 2 and "damp (dew or frost forms" in reason, reason
    assert result.decisions.surface[k] == "damp"
