"""Bins endpoints against a real bins run (a database of their own)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from ops_api.deps import Role
from tests.api_helpers import api_client, login_as
from tests.resources_helpers import BIN_NOW, World


async def test_priorities_highest_first(world_app: FastAPI, world: World) -> None:
    async with api_client(world_app) as client:
        await login_as(client, world.db, Role.WASTE_CREW)
        rows = (await client.get("/bins/priorities")).json()
        assert [r["device_id"] for r in rows] == [world.full_bin, world.quiet_bin]
        full = rows[0]
        assert full["mandatory"] and full["fill"] > 0.9 and full["status"] == "ok" and full["depot_id"] == "bdep"
        assert full["last_collected_at"] is None and full["collected_since"] is False
        assert full["lon"] is not None and "town centre" in full["reasons"]
        only = (await client.get("/bins/priorities", params={"mandatory_only": True})).json()
        assert [r["device_id"] for r in only] == [world.full_bin]
        assert (await client.get("/bins/priorities", params={"depot_id": "elsewhere"})).json() == []


async def test_the_days_plan_per_truck_with_geojson(world_app: FastAPI, world: World) -> None:
    shift_day = (BIN_NOW.date()).isoformat()
    async with api_client(world_app) as client:
        await login_as(client, world.db, Role.OPERATOR)
        day = (await client.get("/bins/plans", params={"date": shift_day})).json()
        assert day["date"] == shift_day and [p["plan_id"] for p in day["plans"]] == [world.bin_plan_id]
        plan = day["plans"][0]
        assert plan["depot_id"] == "bdep" and plan["feasible"] and plan["missed"] == []
        [truck] = plan["trucks"]
        assert truck["truck"] == 1 and [s["device_id"] for s in truck["stops"]] == [world.full_bin]
        assert truck["geojson"]["type"] == "FeatureCollection"
        assert (await client.get("/bins/plans", params={"date": "2001-01-01"})).json()["plans"] == []
        assert (await client.get("/bins/plans", params={"date": "not-a-date"})).status_code == 422
        one = (await client.get(f"/bins/plans/{world.bin_plan_id}/trucks/1")).json()
        features = one["geojson"]["features"]
        # one leg to the stop (seq 1), the stop (seq 1), the leg home (seq 2): rules.routing.plan's GeoJSON
        assert [f["properties"]["seq"] for f in features] == [1, 1, 2]
        assert [f["geometry"]["type"] for f in features] == ["LineString", "Point", "LineString"]
        assert features[1]["properties"]["device_id"] == world.full_bin
        # the world's road network (tests' gritting roads) is nowhere near this bin: no street, a
        # straight leg whose one direction says so, and the plan does not follow the roads
        [stop] = one["stops"]
        assert stop["street"] is None and len(stop["directions"]) == 1
        assert "not near a mapped street" in stop["directions"][0]
        assert plan["follows_roads"] is False
        assert (await client.get(f"/bins/plans/{world.bin_plan_id}/trucks/7")).status_code == 404
        assert (await client.get("/bins/plans/999999")).status_code == 404


@pytest.mark.parametrize("role", [Role.GRITTING_CREW, Role.HOUSEHOLDER])
async def test_bins_are_for_operators_and_waste_crews(world_app: FastAPI, world: World, role: Role) -> None:
    async with api_client(world_app) as client:
        assert (await client.get("/bins/priorities")).status_code == 401
        await login_as(client, world.db, role)
        for path in ("/bins/priorities", "/bins/plans", f"/bins/plans/{world.bin_plan_id}",
                     f"/bins/plans/{world.bin_plan_id}/trucks/1"):
            assert (await client.get(path)).status_code == 403, path
