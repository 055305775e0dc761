"""The scenario library: named winter nights through `cityops roads decide`, the runner's own code.

Each file in tests/data/gritting_scenarios/ (written by make_scenarios.py there) carries the decision it
must give under "expect" and, under "source", where that expectation comes from (a published formula,
the spread-rate matrices, or the fail-safe rule of issue 17).
"""

import json
from pathlib import Path
from typing import Any

import pytest

from cityops_cli.main import main

SCENARIOS = sorted((Path(__file__).parent / "data" / "gritting_scenarios").glob("*.json"))


def decide(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["roads", "decide", "--scenario", str(path), "--json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if code == 0 else {}


def test_the_library_has_the_nights_the_issue_names() -> None:
    names = {p.stem for p in SCENARIOS}
    assert len(names) >= 12
    assert {"rain_then_clearing_rh60", "rain_then_clearing_rh90", "rain_then_clearing_rh98",
            "hoar_frost_clear_calm_dry", "light_snow_forecast_no_state", "heavy_snow_forecast_no_state",
            "freezing_rain", "ice_present_minus1", "ice_present_minus6", "bridge_colder_than_its_sensor",
            "all_sensors_stale", "steady_honest_sensor", "gritter_readings_only", "forecast_only",
            "warm_humid_evening", "dry_cold_road_above_frost_point"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_each_night_gives_its_expected_decision(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = json.loads(path.read_text())
    assert scenario["source"] and scenario["description"]      # every expectation says where it comes from
    code, answer = decide(path, capsys)
    assert code == 0
    routes = {r["route_id"]: r for r in answer["routes"]}
    segments = {s["segment_id"]: s for s in answer["segments"]}
    for route_id, decision in scenario["expect"]["routes"].items():
        assert routes[route_id]["decision"] == decision, routes[route_id]["reasons"]
    for segment_id, expected in scenario["expect"]["segments"].items():
        got = segments[segment_id]
        assert got["action"] == expected["action"], got["reasons"]
        if "rate_g_m2" in expected:
            assert got["rate_g_m2"] == expected["rate_g_m2"], got["reasons"]
        if "reason" in expected:
            assert expected["reason"] in got["reasons"][0]
    assert set(answer["segments"][0]) >= {"segment_id", "action", "rst_min_c", "rate_g_m2", "reasons"}


def test_never_not_needed_in_winter_without_a_temperature(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    """The stale night outside the winter season (a setting) is 'not_needed' with the blind segments
    listed; in it, 'unknown'."""
    data = json.loads((SCENARIOS[0].parent / "all_sensors_stale.json").read_text())
    data["settings"] = {"winter_months": [11, 12]}                 # January is not in this council's season
    path = tmp_path / "summer.json"
    path.write_text(json.dumps(data))
    _, answer = decide(path, capsys)
    route = answer["routes"][0]
    assert route["decision"] == "not_needed" and "without any temperature" in route["reasons"][0]


def test_transport_scotland_rates_as_a_setting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = json.loads((SCENARIOS[0].parent / "ice_present_minus6.json").read_text())
    data["settings"] = {"rate_matrix": "ts2010"}
    path = tmp_path / "ts.json"
    path.write_text(json.dumps(data))
    _, answer = decide(path, capsys)
    n2 = next(s for s in answer["segments"] if s["segment_id"] == "n2")
    assert n2["rate_g_m2"] == 40.0 and "ts2010" in n2["reasons"][0]      # ice at or below -5: 2 x 20 in both


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.pop("now"), "now"),
    (lambda d: d.update(now="2027-01-14T18:00"), "now"),
    (lambda d: d.update(network={"type": "Feature"}), "network"),
    (lambda d: d["sensors"][0]["readings"][3].update(ts="yesterday"), "sensors[0].readings[3]"),
    (lambda d: d["sensors"][0]["readings"][3].update(rh_pct=140), "sensors[0].readings[3].rh_pct"),
    (lambda d: d["sensors"][0].update(lon="west"), "sensors[0].lon"),
    (lambda d: d["sensors"][0].pop("sensor_id"), "sensors[0].sensor_id"),
    (lambda d: d.update(settings={"trigger_c": 50}), "settings.trigger_c"),
    (lambda d: d.update(forecasts=[{"segment_id": "n1", "valid_at": "soon", "rst_c": 1}]), "forecasts"),
    (lambda d: d.update(colour="blue"), "colour"),
])
def test_a_bad_file_names_the_field_and_exits_2(change: Any, field: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads((SCENARIOS[0].parent / "rain_then_clearing_rh90.json").read_text())
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    code = main(["roads", "decide", "--scenario", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {field}"), err


def test_unreadable_and_not_json_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roads", "decide", "--scenario", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "x.json").write_text("{not json")
    assert main(["roads", "decide", "--scenario", str(tmp_path / "x.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
