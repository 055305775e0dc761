"""Open data: public, aggregated, as CSV and GeoJSON; never a household's id or readings."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from ops_api.queries.open_data import to_csv
from pipelines.open_data.pipeline import publish_snapshots, week_start
from tests.api_helpers import api_client
from tests.resources_helpers import World, runner_world


@pytest.fixture(scope="module")
async def world(postgres_admin_url: str) -> AsyncIterator[World]:
    async with runner_world(postgres_admin_url) as built:
        # Ashley ward: 33 homes, assessed last week and the week before (published: the
        # latest complete week); Bishopston: two homes (withheld)
        levels = ["none"] * 12 + ["low"] * 10 + ["high"] * 7 + ["severe"] * 4
        homes = [(f"hh-a{i}", "Ashley", level) for i, level in enumerate(levels)] + \
                [(f"hh-b{i}", "Bishopston", "severe") for i in range(2)] + \
                [(f"hh-c{i}", '=HYPERLINK("http://evil.example","x")', "none") for i in range(3)]
        last_week = week_start(datetime.now(UTC)) - timedelta(days=7)
        for household, area, level in homes:
            await built.db.execute("INSERT INTO damp_home_settings (household_id, area) VALUES ($1, $2)",
                                   household, area)
            for at in (last_week - timedelta(days=3), last_week + timedelta(days=3)):
                await built.db.execute(
                    "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, "
                    "damp_hours_7d, condensation_hours_7d, reasons, changes, faults, metrics) VALUES ($1, $2, $3, $4, "
                    "0.5, 10, 0, '[]', '[]', '[]', '{}')", f"frog-{household}", at, household, level)
        await built.db.execute("UPDATE road_segments SET name = '=HYPERLINK(\"http://evil.example\",\"x\")' "
                               "WHERE segment_id = 's1'")
        await publish_snapshots(built.db)
        yield built


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_road_temperatures_per_segment_without_signing_in(world_app: FastAPI, world: World) -> None:
    async with api_client(world_app) as client:
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


async def test_bin_fill_per_bin_and_per_depot(world_app: FastAPI, world: World) -> None:
    async with api_client(world_app) as client:
        per_bin = (await client.get("/open/bin-fill.geojson")).json()
        fills = {f["properties"]["device_id"]: f["properties"]["fill"] for f in per_bin["features"]}
        assert fills[world.full_bin] > 0.9 and fills[world.quiet_bin] < 0.5
        assert all(f["geometry"]["type"] == "Point" for f in per_bin["features"])
        [depot] = rows(await client.get("/open/bin-fill.csv", params={"by": "depot"}))
        assert (depot["depot_id"], depot["bins"], depot["bins_over_80pct"]) == ("bdep", "2", "1")
        assert (await client.get("/open/bin-fill.csv", params={"by": "household"})).status_code == 422


async def test_damp_statistics_by_area_from_the_weekly_snapshot(world_app: FastAPI, world: World) -> None:
    async with api_client(world_app) as client:
        body = (await client.get("/open/damp-areas.json")).json()
        assert body["period"]["start"] == (week_start(datetime.now(UTC)) - timedelta(days=7)).isoformat()
        assert body["periods"] == [body["period"]["start"][:10]] and body["policy"]["min_cell"] == 10
        areas = {a["area"]: a for a in body["areas"]}
        ashley = areas["Ashley"]
        assert (ashley["status"], ashley["homes"]) == ("published", 35)
        assert (ashley["homes_none"], ashley["homes_low"]) == (10, 10)
        assert ashley["homes_high"] is None and ashley["homes_severe"] is None and ashley["homes_medium"] is None
        assert ashley["share_high_or_severe"] is None and "median_mould_index" not in ashley
        assert areas["Bishopston"]["status"] == "withheld" and areas["Bishopston"]["homes"] is None
        same = await client.get("/open/damp-areas.json", params={"period": body["periods"][0]})
        assert same.json() == body
        table = await client.get("/open/damp-areas.csv")
        assert {r["area"] for r in rows(table)} >= {"Ashley", "Bishopston"}
        assert next(r for r in rows(table) if r["area"] == "Ashley")["homes_high"] == ""
        for response in (table, await client.get("/open/damp-areas.json"), await client.get("/open/bin-fill.csv")):
            assert "hh-" not in response.text and "frog-" not in response.text


async def test_csv_cells_never_run_as_formulas(world_app: FastAPI, world: World) -> None:
    async with api_client(world_app) as client:
        roads = rows(await client.get("/open/road-temperatures.csv"))
        damp = rows(await client.get("/open/damp-areas.csv"))
    assert next(r for r in roads if r["segment_id"] == "s1")["name"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert any(r["area"].startswith("'=HYPERLINK") for r in damp)
    for cell in [v for r in roads + damp for v in r.values()]:
        assert not cell.startswith(("=", "+", "@", "\t", "\r")) and not (cell.startswith("-") and not _number(cell))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_csv_quotes_formula_text_and_keeps_numbers() -> None:
    assert to_csv([{"a": "=1+1", "b": -2.5, "c": "@SUM(A1)"}], ["a", "b", "c"]) == "a,b,c\n'=1+1,-2.5,'@SUM(A1)\n"


def test_csv_leaves_missing_values_empty() -> None:
    assert to_csv([{"a": 1, "b": None, "c": json.dumps("x")}], ["a", "b"]) == "a,b\n1,\n"
