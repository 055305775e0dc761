"""Devices: what each role may list and see, and device health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from cityops.storage import Database
from ops_api.deps import Role
from tests.api_helpers import api_client, login_as
from tests.resources_helpers import add_frog_readings


async def devices(db: Database, unique: str) -> tuple[str, str, str, str]:
    household = f"hh-{unique}"
    frog, road, bin_ = f"{unique}-frog", f"{unique}-road", f"{unique}-bin"
    await db.execute("INSERT INTO devices (device_id, kind, household_id, last_seen) VALUES ($1, 'frog', $2, now())",
                     frog, household)
    await db.execute("INSERT INTO devices (device_id, kind, lon, lat) VALUES ($1, 'road', -2.6, 51.45), "
                     "($2, 'bin', -2.61, 51.46)", road, bin_)
    await add_frog_readings(db, frog, datetime.now(UTC) - timedelta(hours=2), 2)
    return household, frog, road, bin_


async def test_each_role_lists_the_devices_it_may_see(app: FastAPI, db: Database, unique: str) -> None:
    household, frog, road, bin_ = await devices(db, unique)
    mine = {frog, road, bin_}
    async with api_client(app) as client:
        assert (await client.get("/devices")).status_code == 401
        expected = {Role.OPERATOR: mine, Role.ADMIN: mine, Role.GRITTING_CREW: {road}, Role.WASTE_CREW: {bin_}}
        for role, visible in expected.items():
            await login_as(client, db, role)
            listed = {d["device_id"] for d in (await client.get("/devices")).json()} & mine
            assert listed == visible, role
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        listed_home = (await client.get("/devices")).json()
        assert [d["device_id"] for d in listed_home] == [frog] and listed_home[0]["household_id"] == household
        await login_as(client, db, Role.OPERATOR)
        roads = (await client.get("/devices", params={"kind": "road"})).json()
        assert all(d["kind"] == "road" for d in roads) and road in {d["device_id"] for d in roads}
        assert (await client.get("/devices", params={"kind": "toaster"})).status_code == 422


async def test_show_and_health_answer_404_for_what_is_not_yours(app: FastAPI, db: Database, unique: str) -> None:
    household, frog, road, bin_ = await devices(db, unique)
    async with api_client(app) as client:
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        shown = (await client.get(f"/devices/{frog}")).json()
        assert shown["kind"] == "frog" and shown["status"] == "active"
        health = (await client.get(f"/devices/{frog}/health")).json()
        assert health["device_id"] == frog and health["state"] in ("ok", "warning", "critical", "unknown")
        assert isinstance(health["reasons"], list) and "stuck_for_s" in health
        for other in (road, bin_, f"{unique}-missing"):
            assert (await client.get(f"/devices/{other}")).status_code == 404
            assert (await client.get(f"/devices/{other}/health")).status_code == 404
        await login_as(client, db, Role.HOUSEHOLDER)
        refused = await client.get(f"/devices/{frog}")
        assert refused.status_code == 404 and household not in refused.text
        await login_as(client, db, Role.WASTE_CREW)
        assert (await client.get(f"/devices/{bin_}")).status_code == 200
        assert (await client.get(f"/devices/{frog}")).status_code == 404
        await login_as(client, db, Role.OPERATOR)
        assert (await client.get(f"/devices/{road}/health")).json()["state"] == "unknown"   # never heard from
