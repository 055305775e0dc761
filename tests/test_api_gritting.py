"""Gritting endpoints against a real gritting run (a database of their own)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from ops_api.deps import Role
from tests.api_helpers import api_client, login_as
from tests.resources_helpers import GRIT_NOW, World


async def test_the_latest_run_its_decisions_and_routes_to_send(world_app: FastAPI, world: World) -> None:
    async with api_client(world_app) as client:
        await login_as(client, world.db, Role.GRITTING_CREW)
        run = (await client.get("/gritting/runs/latest")).json()
        assert run["run_id"] == world.run_id and run["as_of"] == GRIT_NOW.isoformat()
        assert run["segments"]["treat"] >= 1 and set(run["segments"]) == {"treat", "monitor", "none"}
        segments = (await client.get("/gritting/segments", params={"route_id": "R1"})).json()["segments"]
        assert segments and {s["route_id"] for s in segments} == {"R1"}
        assert {s["action"] for s in segments} <= {"treat", "monitor"}
        s1 = next(s for s in segments if s["segment_id"] == "s1")
        assert s1["action"] == "treat" and "wet road" in s1["reason"] and s1["name"] == "Main Road"
        every = (await client.get("/gritting/segments", params=[("action", "none"), ("action", "treat")])).json()
        assert {s["action"] for s in every["segments"]} <= {"none", "treat"}
        assert (await client.get("/gritting/segments", params={"action": "burn"})).status_code == 422

        routes = (await client.get("/gritting/routes", params={"send_only": True})).json()
        r1 = next(r for r in routes["routes"] if r["route_id"] == "R1")
        assert r1["send"] and r1["plan_id"] is not None and "latest start" in r1["reason"]
        assert r1["treated_at"] is None and r1["open_job"] is None and r1["name"] == "Main Road and Mill Street"


async def test_a_route_plan_in_driving_order_with_steps_and_its_sheet(world_app: FastAPI, world: World) -> None:
    async with api_client(world_app) as client:
        await login_as(client, world.db, Role.OPERATOR)
        plan = (await client.get("/gritting/routes/R1/plan")).json()
        assert plan["route_id"] == "R1" and plan["run_id"] == world.run_id and plan["feasible"]
        seqs = [f["properties"]["seq"] for f in plan["geojson"]["features"]]
        assert seqs == sorted(seqs) and seqs[1:] == list(range(1, len(seqs)))
        assert [s["seq"] for s in plan["steps"]] == list(range(1, len(plan["steps"]) + 1))
        assert any("spread" in s["text"] for s in plan["steps"])
        sheet = await client.get("/gritting/routes/R1/sheet")
        assert sheet.status_code == 200 and "<svg" in sheet.text and "Main Road" in sheet.text
        assert "<script" not in sheet.text and "<link" not in sheet.text
        missing = await client.get("/gritting/routes/nope/plan")
        assert missing.status_code == 404 and "no plan" in missing.json()["error"]


@pytest.mark.parametrize("role", [Role.WASTE_CREW, Role.HOUSEHOLDER])
async def test_gritting_is_for_operators_and_gritting_crews(world_app: FastAPI, world: World, role: Role) -> None:
    async with api_client(world_app) as client:
        assert (await client.get("/gritting/routes")).status_code == 401
        await login_as(client, world.db, role)
        for path in ("/gritting/runs/latest", "/gritting/routes", "/gritting/routes/R1/plan",
                     "/gritting/routes/R1/sheet", "/gritting/segments"):
            assert (await client.get(path)).status_code == 403, path
