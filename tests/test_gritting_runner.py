"""The gritting runner and `cityops roads ...` against the real PostgreSQL."""

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from cityops.errors import StorageError
from cityops.settings import GrittingSettings, StorageSettings, load_settings
from cityops.storage import Database, insert_readings, migrate
from cityops.storage.devices import RegisteredDevice
from contract.telemetry import RoadBatch, RoadReading, decode_batch, encode_batch, reading_problem, telemetry_topic
from ingest.accept import Incoming, decode, judge
from pipelines.gritting.cli import run_forecast_import, run_import, run_show
from pipelines.gritting.pipeline import run_gritting, save_forecast, save_network
from pipelines.gritting.store import load_network
from rules.errors import InvalidForecast, InvalidRoadNetwork
from rules.gritting.forecast import ForecastRow
from rules.gritting.network import RoadNetwork, Segment, parse_network

DATA = Path(__file__).parent / "data" / "roads"
NOW = datetime(2026, 1, 6, 20, 0, tzinfo=UTC)
FAST = GrittingSettings(plan_seconds=5)


def shifted(unique: str) -> tuple[dict[str, Any], float]:
    """The hand-made network with ids prefixed and moved tens of km east, away from other tests."""
    shift = 0.3 * (1 + int(unique[1:], 16) % 150)
    data = json.loads((DATA / "network.geojson").read_text())
    for f in data["features"]:
        p, g = f["properties"], f["geometry"]
        for key in ("segment_id", "depot_id"):
            if key in p:
                p[key] = f"{unique}-{p[key]}"
        if p.get("route"):
            p["route"] = f"{unique}-{p['route']}"
        g["coordinates"] = [[c[0] + shift, c[1]] for c in g["coordinates"]] if g["type"] == "LineString" \
            else [g["coordinates"][0] + shift, g["coordinates"][1]]
    for r in data["routes"]:
        r["route_id"], r["depot_id"] = f"{unique}-{r['route_id']}", f"{unique}-{r['depot_id']}"
    return data, shift


def midpoint(net: RoadNetwork, segment_id: str) -> tuple[float, float]:
    return next(s for s in net.segments if s.segment_id == segment_id).midpoint


async def add_sensor(db: Database, device: str, lon: float, lat: float, segment: str | None, *, start: float,
                     slope: float, state: str, rh: float | None, hours_ago: float = 0.0, mobile: bool = False) -> None:
    await db.execute("INSERT INTO devices (device_id, kind, lon, lat, road_segment_id, mobile, registered_at) "
                     "VALUES ($1, 'road', $2, $3, $4, $5, '2026-01-01')", device, lon, lat, segment, mobile)
    stamps = [NOW - timedelta(hours=hours_ago, minutes=10 * k) for k in range(18, -1, -1)]
    rows = [(device, ts, start + slope * (ts - NOW).total_seconds() / 3600 + (0.01 if k % 2 else 0.0),
             start + 1.0, state, None, None, rh) for k, ts in enumerate(stamps)]
    assert await insert_readings(db, "road", rows) == len(rows)


async def test_a_run_decides_explains_and_plans(db: Database, unique: str) -> None:
    data, shift = shifted(unique)
    net = parse_network(data, "test")
    first = await save_network(db, net)
    assert (first.segments, first.new_segments, first.routes) == (9, 9, 2)
    again = await save_network(db, net)                                  # idempotent upsert
    assert again.new_segments == 0
    assert await db.fetchval("SELECT count(*) FROM road_segments WHERE segment_id LIKE $1", f"{unique}-%") == 9
    stored = await load_network(db)
    s1 = next(s for s in stored.segments if s.segment_id == f"{unique}-s1")
    original = next(s for s in net.segments if s.segment_id == s1.segment_id)
    assert (s1.name, s1.priority, s1.coords, s1.route_id, s1.oneway, s1.start_node) == \
        (original.name, original.priority, original.coords, original.route_id, original.oneway, original.start_node)
    assert s1.length_m == pytest.approx(original.length_m) and s1.thermal_offset_c == pytest.approx(0.3)

    ids = {k: f"{unique}-{k}" for k in ("s1", "s3", "s4", "s5", "s6", "s7", "R1", "R2")}
    await add_sensor(db, f"{unique}-wet", *midpoint(net, ids["s1"]), ids["s1"], start=0.5, slope=-0.8, state="wet",
                     rh=90.0)
    await add_sensor(db, f"{unique}-dry", *midpoint(net, ids["s7"]), ids["s7"], start=6.0, slope=0.0, state="dry",
                     rh=60.0)
    await add_sensor(db, f"{unique}-dead", *midpoint(net, ids["s3"]), None, start=-5.0, slope=0.0, state="wet",
                     rh=None, hours_ago=6)
    assert await db.fetchval("SELECT rh_pct FROM road_readings WHERE device_id = $1 LIMIT 1", f"{unique}-wet") == 90
    # the gritter drove up Mill Street (s4) twenty minutes ago, cold and damp, then lost its way
    gritter = f"{unique}-grit"
    await db.execute("INSERT INTO devices (device_id, kind, mobile, registered_at) VALUES ($1, 'road', true, "
                     "'2026-01-01')", gritter)
    lon4 = -2.596 + shift
    points = [(gritter, NOW - timedelta(minutes=20, seconds=-10 * k), -1.5, None, "damp", 51.4502 + 0.0004 * k,
               lon4 + 0.00001, None) for k in range(6)]
    points.append((gritter, NOW - timedelta(minutes=5), -4.0, None, "dry", 51.4515, lon4 - 0.002, None))
    await insert_readings(db, "road", points)
    await save_forecast(db, [ForecastRow("segment", ids["s6"], NOW + timedelta(hours=h), rst, precip=p)
                             for h, rst, p in ((0, 3.0, "none"), (4, 1.0, "light_snow"), (8, 0.5, "none"))], "test-fc")

    report = await run_gritting(db, now=NOW, settings=FAST, max_iterations=300)
    assert report.run_id is not None and "gritting: run" in report.summary()
    run = await db.fetchrow("SELECT * FROM gritting_runs WHERE run_id = $1", report.run_id)
    assert run["as_of"] == NOW and run["window_end"] == NOW + timedelta(hours=12)
    inputs, warnings = json.loads(run["inputs"]), json.loads(run["warnings"])
    used = {s["device_id"] for s in inputs["sensors_used"]}
    assert {f"{unique}-wet", f"{unique}-dry"} <= used and f"{unique}-dead" not in used
    dead = {d["device_id"]: d["why"] for d in inputs["sensors_dead"]}
    assert dead[f"{unique}-dead"].startswith("last reading 6.0 h ago")
    assert "test-fc" in inputs["forecast"]["sources"] and inputs["settings"]["trigger_c"] == 1.0
    assert any("fresh gritter point(s) more than 25 m from any road" in w for w in warnings)

    rows = {r["segment_id"].removeprefix(f"{unique}-"): r for r in await db.fetch(
        "SELECT * FROM gritting_segment_decisions WHERE run_id = $1 AND segment_id LIKE $2", report.run_id,
        f"{unique}-%")}
    assert len(rows) == 9 and all(r["reason"] for r in rows.values())
    assert rows["s1"]["action"] == "treat" and "wet road" in rows["s1"]["reason"] and rows["s1"]["salt_kg"] > 0
    assert rows["s1"]["source"] == "sensors" and rows["s1"]["rst_min_c"] <= 1.0
    assert rows["s4"]["source"] == "gritter" and rows["s4"]["rst_now_c"] == pytest.approx(-1.5)
    assert rows["s6"]["source"] == "forecast" and "light snow forecast at 00:00" in rows["s6"]["reason"]
    assert rows["s6"]["spread_rate_g_m2"] == 20.0
    assert rows["s7"]["action"] == "none" and rows["s7"]["salt_kg"] == 0

    routes = {r["route_id"]: r for r in await db.fetch(
        "SELECT * FROM gritting_route_decisions WHERE run_id = $1 AND route_id LIKE $2", report.run_id,
        f"{unique}-%")}
    r1 = routes[ids["R1"]]
    assert r1["send"] and "priority-1" in r1["reason"] and "latest start" in r1["reason"]
    assert r1["latest_start"] is not None and r1["latest_start"] < r1["freeze_at"]
    assert r1["salt_kg"] == pytest.approx(sum(r["salt_kg"] for k, r in rows.items()
                                              if r["route_id"] == ids["R1"] and r["action"] == "treat"), rel=1e-5)
    for route_id, decision in routes.items():
        plan = await db.fetchrow("SELECT * FROM gritting_plans WHERE run_id = $1 AND route_id = $2", report.run_id,
                                 route_id)
        if not decision["send"]:
            assert plan is None
            continue
        features = json.loads(plan["geojson"])["features"]
        served = [f["properties"]["segment_id"] for f in features if f["properties"].get("service")]
        to_treat = [f"{unique}-{k}" for k, r in rows.items() if r["route_id"] == route_id and r["action"] == "treat"]
        assert sorted(served) == sorted(to_treat) and plan["feasible"]       # each exactly once
        capacity = await db.fetchval("SELECT salt_capacity_kg FROM gritting_routes WHERE route_id = $1", route_id)
        loads: dict[int, float] = {}
        for f in features[1:]:
            loads[f["properties"]["trip"]] = loads.get(f["properties"]["trip"], 0.0) + f["properties"]["salt_kg"]
        assert max(loads.values()) <= capacity + 0.5 and plan["trips"] == len(loads)
        assert json.loads(plan["instructions"])[0]["text"].startswith("Trip 1")

    # the same run again: the same plan (same seed)
    second = await run_gritting(db, now=NOW, settings=FAST, max_iterations=300)
    plans = [await db.fetchval("SELECT geojson FROM gritting_plans WHERE run_id = $1 AND route_id = $2", run_id,
                               ids["R1"]) for run_id in (report.run_id, second.run_id)]
    assert json.loads(plans[0]) == json.loads(plans[1])


async def test_forecast_for_unknown_targets_is_refused_whole(db: Database, unique: str) -> None:
    rows = [ForecastRow("segment", f"{unique}-nowhere", NOW, 1.0), ForecastRow("sensor", f"{unique}-ghost", NOW, 1.0)]
    with pytest.raises(InvalidForecast, match="2 unknown target"):
        await save_forecast(db, rows, "x")
    assert await db.fetchval("SELECT count(*) FROM road_forecasts WHERE target_id LIKE $1", f"{unique}-%") == 0


async def test_an_area_forecast_names_a_route_or_all_and_reaches_the_run(db: Database, unique: str) -> None:
    """Issue 17: a bought forecast for an area (a route, or 'all') applies to its segments, whatever the
    sensors there can measure; an area that is no route is refused whole."""
    data, _ = shifted(unique)
    await save_network(db, parse_network(data, "test"))
    with pytest.raises(InvalidForecast, match=r"area .*-nowhere \(not a route id"):
        await save_forecast(db, [ForecastRow("area", f"{unique}-nowhere", NOW, None, precip="heavy_snow")], "x")
    rows = [ForecastRow("area", f"{unique}-R2", NOW + timedelta(hours=3), None, precip="heavy_snow")]
    assert await save_forecast(db, rows, "met-office-area") == 1
    await run_gritting(db, NOW, FAST, plan=False)
    treated = {r["segment_id"]: r for r in await db.fetch(
        "SELECT segment_id, action, spread_rate_g_m2, reason FROM gritting_segment_decisions WHERE run_id = "
        "(SELECT max(run_id) FROM gritting_runs) AND route_id = $1", f"{unique}-R2")}
    assert treated and all(r["action"] == "treat" and r["spread_rate_g_m2"] == 40.0 for r in treated.values())
    assert all("medium/heavy snow or freezing rain forecast" in r["reason"] for r in treated.values())


async def test_a_failed_import_leaves_nothing_behind(db: Database, unique: str) -> None:
    data, _ = shifted(unique)
    net = parse_network(data, "test")
    bad = Segment(f"{unique}-bad", "Bad Road", 2, 100.0, 0.0, net.segments[0].coords)    # width 0: refused by the table
    with pytest.raises(StorageError):
        await save_network(db, RoadNetwork((*net.segments, bad), net.depots, net.routes))
    assert await db.fetchval("SELECT count(*) FROM road_depots WHERE depot_id LIKE $1", f"{unique}-%") == 0
    assert await db.fetchval("SELECT count(*) FROM road_segments WHERE segment_id LIKE $1", f"{unique}-%") == 0


async def test_roads_commands(db: Database, database_url: str, unique: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(database_url=database_url)
    data, _ = shifted(unique)
    good = tmp_path / "net.geojson"
    good.write_text(json.dumps(data))
    await run_import(argparse.Namespace(file=good, routes=None, prune=False, dry_run=True), settings)
    assert "all valid (dry run" in capsys.readouterr().out
    assert await db.fetchval("SELECT count(*) FROM road_segments WHERE segment_id LIKE $1", f"{unique}-%") == 0
    await run_import(argparse.Namespace(file=good, routes=None, prune=False, dry_run=False), settings)
    assert "imported 9 segments (9 new" in capsys.readouterr().out
    data["features"][0]["properties"]["priority"] = 7
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(data))
    with pytest.raises(InvalidRoadNetwork, match=r"feature 0 \(id '.*-s1'\): priority 7 is outside 1..3"):
        await run_import(argparse.Namespace(file=bad, routes=None, prune=False, dry_run=False), settings)
    forecast = tmp_path / "fc.csv"
    forecast.write_text("segment_id,valid_at,rst_c,precip\n" +
                        "".join(f"{unique}-s{k},2026-01-06T2{k}:00Z,{k / 2},none\n" for k in range(1, 4)))
    await run_forecast_import(argparse.Namespace(file=forecast, source=None, format=None, dry_run=False), settings)
    assert "stored 3 forecast rows for 3 targets" in capsys.readouterr().out
    assert await db.fetchval("SELECT source FROM road_forecasts WHERE target_id = $1", f"{unique}-s1") == "fc.csv"
    await run_gritting(db, now=NOW, settings=FAST, max_iterations=200)
    await run_show(argparse.Namespace(route=f"{unique}-R1", segments=True, plan=True), settings)
    out = capsys.readouterr().out
    assert f"{unique}-R1 Main Road and Mill Street:" in out and "why:" in out
    assert np.all([line.startswith(("gritting run", "warning:", "", " ", f"{unique}-R1")) for line in out.splitlines()])


def test_rh_pct_travels_the_telemetry_contract() -> None:
    reading = RoadReading(ts=NOW, surface_temp_c=-1.0, air_temp_c=0.5, rh_pct=88.0)
    payload = encode_batch(RoadBatch(v=1, device_id="road-1", seq=0, fw="1", readings=[reading]))
    assert decode_batch(payload).readings[0].rh_pct == 88.0
    assert reading_problem(RoadReading(ts=NOW, rh_pct=120.0)) == "rh_pct 120 outside 0..100"
    registry = {"road-1": RegisteredDevice("road-1", "road", NOW - timedelta(days=1), retired=False)}
    verdict = judge([decode(Incoming(telemetry_topic("road-1"), payload, NOW))], registry, timedelta(minutes=5))
    assert verdict.rows["road"] == [("road-1", NOW, -1.0, 0.5, None, None, None, 88.0)]


async def test_a_blind_night_is_unknown_stored_shown_and_a_changed_network_is_read_again(
        fresh_database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17 fail-safe on the real database (one of its own: no other test's sensors): every sensor silent
    for five hours on a January night gives routes decided 'unknown' (never 'not needed'); `roads show` says
    so. The runner keeps the network between runs, so a re-import (a segment renamed) must be read again."""
    unique = "t0b11d"
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, StorageSettings())
        data, _ = shifted(unique)
        net = parse_network(data, "test")
        await save_network(db, net)
        s1 = f"{unique}-s1"
        await add_sensor(db, f"{unique}-silent", *midpoint(net, s1), s1, start=1.0, slope=-0.5, state="wet",
                         rh=90.0, hours_ago=5.0)
        await run_gritting(db, NOW, FAST)
        decisions = {r["route_id"]: r for r in await db.fetch(
            "SELECT route_id, decision, send, reason FROM gritting_route_decisions WHERE run_id = "
            "(SELECT max(run_id) FROM gritting_runs)")}
        assert {r: d["decision"] for r, d in decisions.items()} == {f"{unique}-R1": "unknown",
                                                                     f"{unique}-R2": "unknown"}
        assert not any(d["send"] for d in decisions.values())
        assert "Main Road" in decisions[f"{unique}-R1"]["reason"]
        settings = load_settings().model_copy(update={"database_url": SecretStr(fresh_database_url)})
        await run_show(argparse.Namespace(route=f"{unique}-R1", segments=False, plan=False), settings)
        assert "UNKNOWN (decide by patrol)" in capsys.readouterr().out

        data["features"][0]["properties"]["name"] = "Renamed Road"
        await save_network(db, parse_network(data, "test"))
        await run_gritting(db, NOW, FAST)
        reason = await db.fetchval("SELECT reason FROM gritting_route_decisions WHERE run_id = "
                                   "(SELECT max(run_id) FROM gritting_runs) AND route_id = $1", f"{unique}-R1")
        assert "Renamed Road" in reason
