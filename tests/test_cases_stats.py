"""GET /cases/stats and its counting (ops_api.queries.cases): how many Awaab's Law clocks were
met on time, met late and missed per category and month, scoped like GET /cases (a landlord
officer: their organisation's cases; council officers: every landlord's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from cases import lifecycle
from cityops.storage import Database
from ops_api.accounts.roles import Role, User
from ops_api.accounts.sessions import open_session
from ops_api.queries.cases import clock_stats, month_start
from rules.cases.clocks import LONDON, Clock
from tests.api_helpers import api_client, make_user


def _clock(key: str, state: str, due: datetime | None, met_at: datetime | None = None) -> Clock:
    return Clock(key, key.replace("_", " "), "aware", due, met_at, state, "test")  # type: ignore[arg-type]


def test_each_clock_counts_in_the_month_it_was_decided() -> None:
    # Hand-made clocks, counted by the rule in clock_stats' docstring: met in the month it was
    # met, missed in the month it fell due, a running or waiting clock not at all.
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    since = month_start(now, 12)
    nov, oct_ = datetime(2026, 11, 16, 23, tzinfo=UTC), datetime(2026, 10, 20, tzinfo=UTC)
    clocks = [
        ("significant", _clock("investigation", "met", nov, met_at=datetime(2026, 11, 10, tzinfo=UTC))),
        ("significant", _clock("written_summary", "met_late", datetime(2026, 11, 13, tzinfo=UTC),
                               met_at=datetime(2026, 11, 17, tzinfo=UTC))),
        ("significant", _clock("safety_work", "overdue", datetime(2026, 11, 17, tzinfo=UTC))),
        ("significant", _clock("further_works_start", "on_time", datetime(2027, 2, 2, tzinfo=UTC))),
        ("significant", _clock("make_safe", "waiting", None)),
        # met early in October for a clock due in November: October's
        ("emergency", _clock("emergency_investigation", "met", nov, met_at=oct_)),
        # decided before the window: not counted
        ("emergency", _clock("make_safe", "overdue", datetime(2025, 11, 30, 23, tzinfo=UTC))),
    ]
    rows = clock_stats(clocks, since, now)
    assert since == datetime(2026, 1, 1, tzinfo=LONDON)   # 12 months: January to December 2026
    assert [(r["month"], r["category"]) for r in rows] == [("2026-10", "emergency"), ("2026-11", "significant")]
    november = rows[1]
    assert (november["decided"], november["met_on_time"], november["met_late"], november["missed"]) == (3, 1, 1, 1)
    assert november["on_time_share"] == round(1 / 3, 3)
    assert november["by_clock"]["written_summary"] == {"label": "written summary", "decided": 1, "met_on_time": 0,
                                                       "met_late": 1, "missed": 0}
    assert rows[0]["met_on_time"] == 1 and rows[0]["on_time_share"] == 1.0


async def _officer(db: Database, landlord_id: str | None) -> User:
    user = await make_user(db, Role.LANDLORD)
    await db.execute("UPDATE users SET landlord_id = $1 WHERE user_id = $2", landlord_id, user.user_id)
    return user


async def _as(client: httpx.AsyncClient, db: Database, user: User) -> None:
    client.headers["Authorization"] = f"Bearer {await open_session(db, user.user_id)}"


def _month(moment: datetime) -> str:
    return f"{moment.astimezone(LONDON):%Y-%m}"


async def test_stats_count_each_landlords_own_clocks(app: FastAPI, db: Database, unique: str) -> None:
    # Emergency cases: their clocks run in elapsed hours (rules/cases/clocks.py EMERGENCY: 24 hours
    # to investigate from awareness, 24 hours to make safe from the investigation), so the expected
    # outcomes are plain arithmetic whatever the date the test runs on.
    now = datetime.now(UTC).replace(microsecond=0)
    a, b = f"{unique}a", f"{unique}b"
    for landlord in (a, b):
        await lifecycle.add_landlord(db, landlord, f"Landlord {landlord}", "housing_association", True)
        await lifecycle.put_home(db, f"hh-{landlord}", landlord, "1 Test Street", True, now)
    officer_a, officer_b, officer_none = await _officer(db, a), await _officer(db, b), await _officer(db, None)
    aware_a = now - timedelta(days=10)
    investigated, made_safe = aware_a + timedelta(hours=2), aware_a + timedelta(hours=2 + 30)
    async with api_client(app) as client:
        await _as(client, db, officer_a)
        case = (await client.post("/cases", json={"household_id": f"hh-{a}", "category": "emergency",
                                                  "reason": "black mould over the cot", "aware_at": aware_a.isoformat()
                                                  })).json()
        steps = [{"kind": "investigation", "investigator": "J. Surveyor", "findings": "mould on the north wall",
                  "at": investigated.isoformat()},
                 {"kind": "made_safe", "text": "mould washed, dehumidifier in", "at": made_safe.isoformat()}]
        for step in steps:
            assert (await client.post(f"/cases/{case['case_id']}/events", json=step)).status_code == 201
        mine = (await client.get("/cases/stats?months=2")).json()
        await _as(client, db, officer_b)
        aware_b = now - timedelta(days=3)
        assert (await client.post("/cases", json={"household_id": f"hh-{b}", "category": "emergency",
                                                  "reason": "mould in the bedroom", "aware_at": aware_b.isoformat()})
                ).status_code == 201
        theirs = (await client.get("/cases/stats?months=2")).json()
        await _as(client, db, officer_none)
        nobody = (await client.get("/cases/stats")).json()
        await _as(client, db, await make_user(db, Role.OPERATOR))
        council = (await client.get("/cases/stats?months=2")).json()
        assert (await client.get("/cases/stats?months=0")).status_code == 422
        await _as(client, db, await make_user(db, Role.HOUSEHOLDER))
        assert (await client.get("/cases/stats")).status_code == 403   # ops_api/access.py: CASEWORK

    # A: investigated 2 h after awareness (within 24 h: met), made safe 30 h after the
    # investigation (more than 24 h: met late); each in the month it was met.
    counted_a = {(r["month"], k): v for r in mine["rows"] for k, v in r["by_clock"].items()}
    assert counted_a[(_month(investigated), "emergency_investigation")]["met_on_time"] == 1
    assert counted_a[(_month(made_safe), "make_safe")]["met_late"] == 1
    assert sum(r["decided"] for r in mine["rows"]) == 2
    # B: nothing recorded 3 days after awareness: the investigation was due 24 h after it
    # (missed, in that month); make safe waits for an investigation (not counted). A's are not B's.
    assert [(r["month"], r["category"], r["decided"], r["missed"]) for r in theirs["rows"]] == [
        (_month(aware_b + timedelta(hours=24)), "emergency", 1, 1)]
    assert nobody["rows"] == []                         # a landlord officer with no organisation: none
    assert sum(r["decided"] for r in council["rows"]) >= 3   # council officers: every landlord's
