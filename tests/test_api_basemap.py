"""GET /basemap: the road network's streets and depots in a box, as compact GeoJSON (real
PostgreSQL, the API in process); the printable sheet drawing them under a route."""

from __future__ import annotations

import json
import random

import pytest
from fastapi import FastAPI

from cityops.storage import Database
from ops_api.deps import Role
from ops_api.queries import basemap as q
from ops_api.queries.sheet import job_sheet
from tests.api_helpers import api_client, login_as


async def town(db: Database, unique: str) -> tuple[float, float]:
    """Three streets and a depot in a 0.01° square of their own (somewhere in the North Sea, so
    no other test's network is inside), one street just outside it; the square's corner."""
    lon, lat = round(random.uniform(1.0, 2.0), 2), round(random.uniform(55.0, 56.0), 2)
    streets = [("a", "High Street", 1, [[lon + 0.001234567, lat + 0.002], [lon + 0.004, lat + 0.002]]),
               ("b", "Mill Lane", 2, [[lon + 0.005, lat + 0.001], [lon + 0.005, lat + 0.008]]),
               ("c", "", 3, [[lon + 0.006, lat + 0.006], [lon + 0.008, lat + 0.006]]),
               ("out", "Far Road", 1, [[lon + 0.020, lat + 0.005], [lon + 0.030, lat + 0.005]])]
    for key, name, priority, line in streets:
        await db.execute(
            "INSERT INTO road_segments (segment_id, name, priority, length_m, width_m, geometry, mid_lon, mid_lat, "
            "start_node, end_node) VALUES ($1, $2, $3, 200, 7, $4, $5, $6, $7, $8)",
            f"{unique}-{key}", name, priority, json.dumps({"type": "LineString", "coordinates": line}),
            (line[0][0] + line[1][0]) / 2, (line[0][1] + line[1][1]) / 2, str(line[0]), str(line[1]))
    await db.execute("INSERT INTO road_depots (depot_id, name, lon, lat) VALUES ($1, 'Harbour depot', $2, $3)",
                     f"{unique}-depot", lon + 0.002, lat + 0.009)
    return lon, lat


async def test_the_streets_in_the_box_come_rounded_named_and_with_the_depot(
        app: FastAPI, db: Database, unique: str) -> None:
    lon, lat = await town(db, unique)
    async with api_client(app) as client:
        await login_as(client, db, Role.WASTE_CREW)
        answer = await client.get("/basemap", params={"bbox": f"{lon},{lat},{lon + 0.01},{lat + 0.01}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    lines = {f["properties"]["name"]: f for f in body["features"] if f["geometry"]["type"] == "LineString"}
    assert set(lines) == {"High Street", "Mill Lane", None}   # Far Road's middle is outside the box
    # 5 decimals (ops_api.queries.basemap.DECIMALS): lon + 0.001234567 rounds to lon + 0.00123
    assert lines["High Street"]["geometry"]["coordinates"][0] == [round(lon + 0.00123, 5), round(lat + 0.002, 5)]
    assert {name: f["properties"]["major"] for name, f in lines.items()} == {
        "High Street": True, "Mill Lane": True, None: False}   # priorities 1 and 2 are major, 3 is not
    places = [f for f in body["features"] if f["properties"].get("kind") == "place"]
    assert [(p["properties"]["name"], p["geometry"]["coordinates"]) for p in places] == [
        ("Harbour depot", [round(lon + 0.002, 5), round(lat + 0.009, 5)])]
    assert body["truncated"] is False


async def test_at_most_the_limit_the_most_important_first(
        app: FastAPI, db: Database, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lon, lat = await town(db, unique)
    monkeypatch.setattr(q, "MAX_SEGMENTS", 2)
    body = await q.streets(db, (lon, lat, lon + 0.01, lat + 0.01))
    lines = [f["properties"]["name"] for f in body["features"] if f["geometry"]["type"] == "LineString"]
    assert lines == ["High Street", "Mill Lane"] and body["truncated"] is True   # priority 1, then 2


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "2,55,1,56", "1,55,1.6,55.1", "1,55,nan,56", "-181,0,0,1"])
async def test_a_bad_box_is_422_naming_bbox(app: FastAPI, db: Database, bbox: str) -> None:
    async with api_client(app) as client:
        await login_as(client, db, Role.OPERATOR)
        answer = await client.get("/basemap", params={"bbox": bbox})
    assert answer.status_code == 422 and answer.json()["error"].startswith("bbox:"), answer.text


async def test_householders_may_not_and_nobody_signed_in_may_not(app: FastAPI, db: Database) -> None:
    async with api_client(app) as client:
        assert (await client.get("/basemap", params={"bbox": "1,55,1.1,55.1"})).status_code == 401
        await login_as(client, db, Role.HOUSEHOLDER)
        assert (await client.get("/basemap", params={"bbox": "1,55,1.1,55.1"})).status_code == 403


def test_the_box_around_a_route_is_padded_and_rounded_out_as_the_page_asks() -> None:
    route = {"features": [{"geometry": {"type": "LineString", "coordinates": [[-2.600, 51.450], [-2.590, 51.455]]}}]}
    # by hand: span 0.010 x 0.005; pads 0.010/5 + 0.005 = 0.007 and 0.005/5 + 0.005 = 0.006;
    # -2.607 down to -2.610, 51.444 down to 51.440, -2.583 up to -2.580, 51.461 up to 51.465
    assert [round(v, 3) for v in q.box_around(route) or ()] == [-2.61, 51.44, -2.58, 51.465]
    assert q.box_around({"features": []}) is None


def test_the_sheet_draws_the_streets_under_the_route_with_the_key_for_its_kind() -> None:
    route = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[-2.60, 51.45], [-2.59, 51.455]]},
         "properties": {"truck": 1}}]}
    streets = {"features": [
        {"geometry": {"type": "LineString", "coordinates": [[-2.59, 51.451], [-2.61, 51.451]]},
         "properties": {"name": "Park Street", "major": True}},
        {"geometry": {"type": "LineString", "coordinates": [[-2.60, 51.44], [-2.60, 51.46]]},
         "properties": {"name": "Back Lane", "major": False}}]}
    bins = job_sheet({"job_id": 1, "kind": "bins", "title": "Round", "geojson": route, "steps": []}, streets=streets)
    assert bins.count('stroke="#d0d4d9"') == 2 and bins.count("<textPath") == 1   # only the major street named
    assert ">Park Street</textPath>" in bins and "Back Lane" not in bins
    assert "collection round" in bins and "spread" not in bins   # a bins job's key, not gritting's
    grit = job_sheet({"job_id": 2, "kind": "gritting", "title": "Grit", "geojson": route, "steps": []})
    assert "drive without spreading" in grit and "collection round" not in grit and "<textPath" not in grit
