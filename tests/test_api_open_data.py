"""Open data: public, aggregated, as CSV and GeoJSON; never a household's id or readings."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from cityops.settings import Settings
from ops_api.app import create_app
from ops_api.queries.open_data import to_csv
from tests.api_helpers import api_client
from tests.resources_helpers import World, runner_world


@pytest.fixture(scope="module")
async def world(postgres_admin_url: str) -> AsyncIterator[World]:
    async with runner_world(postgres_admin_url) as built:
        # seven homes in Ashley ward (published), two in Bishopston (withheld)
        homes = [(f"hh-a{i}", "Ashley", "high" if i < 2 else "none") for i in range(7)] + \
                [(f"hh-b{i}", "Bishopston", "severe") for i in range(2)]
        for household, area, level in homes:
            await built.db.execute("INSERT INTO damp_home_settings (household_id, area) VALUES ($1, $2)",
                                   household, area)
            await built.db.execute(
                "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d, "
                "condensation_hours_7d, reasons, changes, faults, metrics) VALUES ($1, now(), $2, $3, 0.5, 10, 0, "
                "'[]', '[]', '[]', '{}')", f"frog-{household}", household, level)
        yield built


@pytest.fixture(scope="module")
def app(world: World) -> FastAPI:
    return create_app(Settings(database_url=world.url), db=world.db)


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_road_temperatures_per_segment_without_signing_in(app: FastAPI, world: World) -> None:
    async with api_client(app) as client:
        assert (await client.get("/open")).json()["datasets"][0]["name"] == "road-temperatures"
        geo = await client.get("/open/road-temperatures.geojson")
        assert geo.status_code == 200 and geo.headers["content-type"] == "application/geo+json"
        body = geo.json()
        assert body["type"] == "FeatureCollection" and len(body["features"]) == 9
        s1 = next(f for f in body["features"] if f["properties"]["segment_id"] == "s1")
        assert s1["geometry"]["type"] == "LineString" and s1["properties"]["action"] == "treat"
        assert s1["properties"]["rst_now_c"] < 1.0 and "cache-control" in geo.headers
        table = rows(await client.get("/open/road-temperatures.csv"))
        assert len(table) == 9 and {r["segment_id"] for r in table} >= {"s1", "s7"} and "geometry" not in table[0]


async def test_bin_fill_per_bin_and_per_depot(app: FastAPI, world: World) -> None:
    async with api_client(app) as client:
        per_bin = (await client.get("/open/bin-fill.geojson")).json()
        fills = {f["properties"]["device_id"]: f["properties"]["fill"] for f in per_bin["features"]}
        assert fills[world.full_bin] > 0.9 and fills[world.quiet_bin] < 0.5
        assert all(f["geometry"]["type"] == "Point" for f in per_bin["features"])
        [depot] = rows(await client.get("/open/bin-fill.csv", params={"by": "depot"}))
        assert (depot["depot_id"], depot["bins"], depot["bins_over_80pct"]) == ("bdep", "2", "1")
        assert (await client.get("/open/bin-fill.csv", params={"by": "household"})).status_code == 422


async def test_damp_statistics_by_area_withhold_small_areas_and_name_no_home(app: FastAPI, world: World) -> None:
    async with api_client(app) as client:
        body = (await client.get("/open/damp-areas.json")).json()
        areas = {a["area"]: a for a in body["areas"]}
        assert areas["Ashley"]["homes"] == 7 and areas["Ashley"]["homes_high"] == "fewer than 3"
        assert areas["Ashley"]["homes_none"] == 5 and areas["Ashley"]["share_high_or_severe"] == 0.29
        assert areas["Bishopston"]["homes"] == "fewer than 5" and areas["Bishopston"]["homes_severe"] == ""
        table = await client.get("/open/damp-areas.csv")
        assert {r["area"] for r in rows(table)} >= {"Ashley", "Bishopston"}
        for response in (table, await client.get("/open/damp-areas.json"), await client.get("/open/bin-fill.csv")):
            assert "hh-" not in response.text and "frog-" not in response.text


def test_csv_leaves_missing_values_empty() -> None:
    assert to_csv([{"a": 1, "b": None, "c": json.dumps("x")}], ["a", "b"]) == "a,b\n1,\n"
