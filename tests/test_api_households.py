"""Households against the real PostgreSQL: the householder's own page, history, diary (and its
422s), the evidence report, staff access, and never another household's data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from cityops.storage import Database
from ops_api.deps import Role
from tests.api_helpers import api_client, login_as
from tests.resources_helpers import add_frog_readings


async def home(db: Database, unique: str, level: str = "high", hours: float = 48) -> tuple[str, str]:
    """A household with a frog box, `hours` of readings up to now and one assessment."""
    household, box = f"hh-{unique}", f"{unique}-frog"
    await db.execute("INSERT INTO devices (device_id, kind, household_id) VALUES ($1, 'frog', $2)", box, household)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await add_frog_readings(db, box, now - timedelta(hours=hours), hours)
    await db.execute(
        "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d, "
        "condensation_hours_7d, reasons, changes, faults, metrics) VALUES ($1, $2, $3, $4, 1.2, 40, 3, $5, '[]', "
        "'[]', '{}')", box, now.replace(minute=0), household, level,
        json.dumps(["The coldest wall was damp enough for mould to grow for 40 hours."]))
    return household, box


async def test_a_householder_sees_their_current_reading_risk_and_advice(app: FastAPI, db: Database,
                                                                         unique: str) -> None:
    household, box = await home(db, unique)
    async with api_client(app) as client:
        assert (await client.get("/households/me")).status_code == 401
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        body = (await client.get("/households/me")).json()
        assert body["household_id"] == household and body["devices"] == [box]
        current = body["current"]
        assert current["device_id"] == box and current["dew_point_c"] < current["air_temp_c"]
        assert datetime.fromisoformat(current["ts"]) > datetime.now(UTC) - timedelta(minutes=10)
        risk = body["risk"]
        assert risk["level"] == "high" and risk["colour"] == "#ef6c00" and risk["score_0_10"] == 2.0
        assert risk["headline"].startswith("High risk") and len(risk["advice"]) >= 2
        assert "40 hours" in risk["reasons"][0]

        day = (await client.get("/households/me/history", params={"hours": 24})).json()
        assert day["bucket_s"] == 300 and 285 <= len(day["points"]) <= 290
        point = day["points"][-1]
        assert set(point) >= {"ts", "air_temp_c", "rh_pct", "dew_point_c"}
        assert point["dew_point_c"] < point["air_temp_c"]
        week = (await client.get("/households/me/history")).json()
        assert week["bucket_s"] == 1800 and len(week["points"]) <= 100           # 48 h of data in 30-min buckets
        for hours in (0, 400 * 24 + 1):
            too = await client.get("/households/me/history", params={"hours": hours})
            assert too.status_code == 422
        capped = await client.get("/households/me/history", params={"hours": 24, "bucket_s": 60})
        assert capped.status_code == 200 and capped.json()["bucket_s"] == 60


async def test_the_diary_adds_lists_deletes_and_refuses_bad_entries(app: FastAPI, db: Database, unique: str) -> None:
    household, _ = await home(db, unique)
    at = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    async with api_client(app) as client, api_client(app) as neighbour:
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        await login_as(neighbour, db, Role.HOUSEHOLDER)
        made = await client.post("/households/me/diary", json={"at": at.isoformat(), "activity": "shower",
                                                                "minutes": 10, "note": "long one"})
        assert made.status_code == 201, made.text
        entry = made.json()
        assert (entry["activity"], entry["minutes"], entry["note"]) == ("shower", 10, "long one")
        assert datetime.fromisoformat(entry["at"]) == at.replace(second=0)
        assert (await client.get("/households/me/diary")).json() == [entry]
        assert (await neighbour.get("/households/me/diary")).json() == []

        for bad, words in (({"at": at.isoformat(), "activity": "juggling"}, "unknown activity 'juggling'"),
                           ({"at": (at + timedelta(days=2)).isoformat(), "activity": "cooking"}, "in the future"),
                           ({"at": "2020-01-01T00:00:00Z", "activity": "cooking"}, "more than a year ago")):
            refused = await client.post("/households/me/diary", json=bad)
            assert refused.status_code == 422 and words in refused.json()["error"], refused.text
            assert refused.json()["hint"]
        for bad_body in ({"activity": "shower"}, {"at": "yesterday", "activity": "shower"},
                         {"at": at.isoformat(), "activity": "shower", "minutes": 0}):
            assert (await client.post("/households/me/diary", json=bad_body)).status_code == 422
        not_json = await client.post("/households/me/diary", content=b"{oops",
                                     headers={"content-type": "application/json"})
        assert not_json.status_code == 422

        assert (await neighbour.delete(f"/households/me/diary/{entry['id']}")).status_code == 404
        assert (await client.delete(f"/households/me/diary/{entry['id']}")).status_code == 204
        assert (await client.delete(f"/households/me/diary/{entry['id']}")).status_code == 404
        advice = (await client.get("/households/me/diary/advice")).json()
        assert advice["household_id"] == household and isinstance(advice["advice"], list)


async def test_the_evidence_report_is_a_printable_page(app: FastAPI, db: Database, unique: str) -> None:
    household, box = await home(db, unique)
    async with api_client(app) as client:
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        page = await client.get("/households/me/report", params={"days": 2, "reported_on": "2026-01-05"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Damp and mould evidence" in page.text and box in page.text and "<svg" in page.text
        assert "Mon 19 Jan 2026" in page.text                                   # 10 working days after
        await login_as(client, db, Role.HOUSEHOLDER)
        assert (await client.get("/households/me/report")).status_code == 404      # no frog box


async def test_another_household_is_404_crews_403_staff_see_it(app: FastAPI, db: Database, unique: str) -> None:
    household, box = await home(db, unique)
    async with api_client(app) as client:
        await login_as(client, db, Role.HOUSEHOLDER)
        for path in ("", "/history", "/diary", "/diary/advice", "/report"):
            response = await client.get(f"/households/{household}{path}")
            assert response.status_code == 404 and box not in response.text, path
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        assert (await client.get(f"/households/{household}")).json()["devices"] == [box]
        for crew in (Role.GRITTING_CREW, Role.WASTE_CREW):
            await login_as(client, db, crew)
            assert (await client.get(f"/households/{household}")).status_code == 403
            assert (await client.get("/households/me")).status_code == 403
        await login_as(client, db, Role.OPERATOR)
        assert (await client.get("/households/me")).status_code == 403
        staff_view = (await client.get(f"/households/{household}")).json()
        assert staff_view["risk"]["level"] == "high" and staff_view["current"] is not None
        assert len((await client.get(f"/households/{household}/history", params={"hours": 6})).json()["points"]) > 10
        assert (await client.get(f"/households/nobody-{unique}")).status_code == 404
        assert (await client.post("/households/me/diary", json={})).status_code == 403
        await login_as(client, db, Role.ADMIN)
        assert (await client.get("/households/me")).status_code == 404          # an admin has no household
