"""Readings in time buckets: the caps (pure), the raw and hourly sources agreeing on real data,
and who may read which device."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from cityops.storage import Database, insert_readings
from ops_api.deps import Role
from ops_api.errors import InvalidRequest
from ops_api.queries.readings import MAX_POINTS, Window, auto_bucket, plan_window, series
from tests.api_helpers import api_client, login_as
from tests.resources_helpers import add_frog_readings

NOW = datetime(2026, 1, 10, 12, 34, 56, tzinfo=UTC)


def test_the_default_is_the_last_day_in_five_minute_buckets_on_the_grid() -> None:
    window = plan_window(None, None, None, now=NOW)
    assert window.bucket_s == 300 and window.end == datetime(2026, 1, 10, 12, 35, tzinfo=UTC)
    assert window.start == datetime(2026, 1, 9, 12, 30, tzinfo=UTC) and window.points == 289


def test_the_caps_say_what_to_do() -> None:
    with pytest.raises(InvalidRequest, match="at most 400 days") as too_long:
        plan_window(NOW - timedelta(days=401), NOW, None, now=NOW)
    assert "page through" in too_long.value.hint
    with pytest.raises(InvalidRequest, match=f"43201 buckets of 60 s; at most {MAX_POINTS} points") as too_many:
        plan_window(NOW - timedelta(days=30), NOW, 60, now=NOW)
    assert "at least 519 s" in too_many.value.hint
    with pytest.raises(InvalidRequest, match="is not before end"):
        plan_window(NOW, NOW - timedelta(hours=1), None, now=NOW)
    with pytest.raises(InvalidRequest, match="below 60 s"):
        plan_window(None, None, 10, now=NOW)
    naive = plan_window(datetime(2026, 1, 1), datetime(2026, 1, 2), 3600, now=NOW)
    assert naive.start == datetime(2026, 1, 1, tzinfo=UTC) and naive.points == 24


@given(st.integers(min_value=1, max_value=400 * 86_400))
def test_an_automatic_bucket_never_breaks_the_point_cap(span_s: int) -> None:
    window = plan_window(NOW - timedelta(seconds=span_s), NOW, None, now=NOW)
    assert window.points <= MAX_POINTS and window.start <= NOW - timedelta(seconds=span_s)
    assert window.bucket_s == auto_bucket(timedelta(seconds=span_s))


async def test_raw_and_hourly_sources_give_the_same_buckets(db: Database, unique: str) -> None:
    box, road = f"{unique}-frog", f"{unique}-road"
    await db.execute("INSERT INTO devices (device_id, kind) VALUES ($1, 'frog'), ($2, 'road')", box, road)
    start = datetime(2025, 3, 1, 0, 7, tzinfo=UTC)
    await add_frog_readings(db, box, start, 30)
    await insert_readings(db, "road", [(road, start + timedelta(minutes=10 * k), -1.0 + 0.1 * (k % 7), 2.0 + k % 3,
                                        "wet", None, None) for k in range(150)])
    for bucket in (3600, 3 * 3600):
        window = Window(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, 12, tzinfo=UTC), bucket)
        for kind, device in (("frog", box), ("road", road)):
            raw = await series(db, kind, device, window)
            hourly = await series(db, kind, device, window, hourly=True)
            assert len(raw) == len(hourly) > 0
            for a, b in zip(raw, hourly, strict=True):
                assert a.keys() == b.keys() and a["ts"] == b["ts"] and a["readings"] == b["readings"]
                for key in a.keys() - {"ts", "readings"}:
                    assert a[key] == pytest.approx(b[key], abs=2e-3), (kind, key)
    frog = await series(db, "frog", box, Window(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 1, 1, tzinfo=UTC),
                                                600))
    assert [p["readings"] for p in frog] == [1, 2, 2, 2, 2, 2]                   # :07 | :12 :17 | ...
    assert all(p["dew_point_c"] < p["air_temp_c"] for p in frog)


async def test_who_may_read_which_device(app: FastAPI, db: Database, unique: str) -> None:
    box, road = f"{unique}-frog", f"{unique}-road"
    household = f"hh-{unique}"
    await db.execute("INSERT INTO devices (device_id, kind, household_id) VALUES ($1, 'frog', $2)", box, household)
    await db.execute("INSERT INTO devices (device_id, kind) VALUES ($1, 'road')", road)
    now = datetime.now(UTC)
    await add_frog_readings(db, box, now - timedelta(hours=3), 3)
    async with api_client(app) as client:
        assert (await client.get(f"/readings/{box}")).status_code == 401
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        mine = (await client.get(f"/readings/{box}")).json()
        assert mine["kind"] == "frog" and mine["bucket_s"] == 300 and mine["source"] == "raw"
        assert 34 <= len(mine["points"]) <= 37 and "dew_point_c" in mine["points"][0]
        too_long = await client.get(f"/readings/{box}", params={"start": "2020-01-01T00:00:00Z"})
        assert too_long.status_code == 422 and "at most 400 days" in too_long.json()["error"]
        too_many = await client.get(f"/readings/{box}", params={"start": (now - timedelta(days=10)).isoformat(),
                                                                 "bucket_s": 60})
        assert too_many.status_code == 422 and "at most 5000 points" in too_many.json()["error"]
        assert (await client.get(f"/readings/{box}", params={"start": "soon"})).status_code == 422
        assert (await client.get(f"/readings/{road}")).status_code == 404       # only their own devices
        await login_as(client, db, Role.HOUSEHOLDER)
        other = await client.get(f"/readings/{box}")
        assert other.status_code == 404 and box not in other.text and "points" not in other.text
        await login_as(client, db, Role.GRITTING_CREW)
        assert (await client.get(f"/readings/{box}")).status_code == 404
        assert (await client.get(f"/readings/{road}")).json()["kind"] == "road"
        await login_as(client, db, Role.OPERATOR)
        assert len((await client.get(f"/readings/{box}", params={"bucket_s": 3600})).json()["points"]) >= 3
        assert (await client.get(f"/readings/{unique}-none")).status_code == 404
