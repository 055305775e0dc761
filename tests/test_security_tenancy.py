"""Tenancies (issue 18, part 6) against the real API over HTTP (uvicorn on a socket) and the real
PostgreSQL: a home is a tenancy, not an address.

The attacks: an old tenant whose session is still valid keeps watching after the new tenant
arrives; a new tenant reads the previous occupants' 400 days of readings and their diary;
either asks for dates before their start, another household's id, or a diary entry id of
the previous tenancy; a forgotten invitation link of the old tenancy is used after the move.
Every check counts rows.

No sleeps: a move that "happened two days ago" is made by moving every timestamp the API
wrote for the household (memberships, invitation, accounts, diary) back by two days, as if
the same requests had been made then (`travel_back`).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cityops.storage import Database
from ops_api.accounts.roles import Role, User
from ops_api.accounts.sessions import open_session
from tests.api_helpers import make_user, serving

STEP = timedelta(minutes=30)
HISTORY = timedelta(days=399)                 # readings stored: the API's longest request (400 days) sees all
MOVED = timedelta(days=2)
PASSWORD = "a new tenant's password"


@pytest.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


@dataclass
class Home:
    household: str
    box: str
    readings: list[datetime]      # every reading's time, oldest first


async def stored_home(db: Database, unique: str) -> Home:
    """A frog box with a reading every 30 minutes for 399 days, the runner's assessment now and a
    damp alert opened a week ago."""
    household, box = f"hh-{unique}", f"{unique}-frog"
    await db.execute("INSERT INTO devices (device_id, kind, household_id) VALUES ($1, 'frog', $2)", box, household)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    steps = int(HISTORY / STEP)
    await db.execute("INSERT INTO frog_readings (device_id, ts, air_temp_c, rh_pct) "
                     "SELECT $1, $2::timestamptz - n * $3::interval, 18 + n % 3, 60 + n % 17 "
                     "FROM generate_series(0, $4) n", box, now, STEP, steps)
    await db.execute(
        "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d, "
        "condensation_hours_7d, reasons, changes, faults, metrics) VALUES ($1, $2, $3, 'high', 1.2, 40, 3, $4, "
        "'[]', '[]', '{}')", box, now.replace(minute=0), household,
        json.dumps(["The coldest wall was damp for 40 hours this week."]))
    await db.execute("INSERT INTO alerts (rule, cause, severity, title, device_id, household_id, opened_at, "
                     "last_firing_at) VALUES ('damp_risk', $1, 'warning', 'Damp risk high', $2, $3, $4, $4)",
                     f"damp:{household}", box, household, now - timedelta(days=7))
    return Home(household, box, sorted(now - n * STEP for n in range(steps + 1)))


async def travel_back(db: Database, household: str, by: timedelta) -> None:
    """As if every request so far about this household had been made `by` earlier."""
    for table, columns in (("household_members", ("starts_at", "ends_at")), ("damp_diary", ("ts", "created_at")),
                           ("invitations", ("created_at", "used_at")), ("users", ("created_at",))):
        moved = ", ".join(f"{c} = {c} - $2::interval" for c in columns)
        await db.execute(f"UPDATE {table} SET {moved} WHERE household_id = $1", household, by)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def session_of(db: Database, user: User) -> dict[str, str]:
    return bearer(await open_session(db, user.user_id))


def reading_count(body: dict[str, Any]) -> int:
    return sum(p["readings"] for p in body["points"])


async def visible(http: httpx.AsyncClient, home: Home, headers: dict[str, str]) -> dict[str, int | None]:
    """What a householder can see of the home, counted (None: the route answered 404)."""
    now = datetime.now(UTC)
    routes = {
        "readings": (f"/readings/{home.box}", {"start": (now - HISTORY - timedelta(hours=1)).isoformat(),
                                               "bucket_s": 86_400}),
        "history": ("/households/me/history", {"hours": 400 * 24}),
        "diary": ("/households/me/diary", {"days": 400}),
        "household_diary": (f"/households/{home.household}/diary", {"days": 400}),
        "current": ("/households/me", {}),
        "devices": ("/devices", {}),
        "alerts": ("/alerts", {"state": "all"}),
    }
    counts: dict[str, int | None] = {}
    for name, (path, params) in routes.items():
        response = await http.get(path, params=params, headers=headers)
        assert response.status_code in (200, 404), (path, response.text)
        if response.status_code == 404:
            counts[name] = None
            continue
        body = response.json()
        counts[name] = (reading_count(body) if "points" in body else len(body) if isinstance(body, list)
                        else int(body["current"] is not None))
    return counts


async def write_diary(http: httpx.AsyncClient, headers: dict[str, str], at: datetime, note: str) -> httpx.Response:
    return await http.post("/households/me/diary", headers=headers,
                           json={"at": at.isoformat(), "activity": "shower", "minutes": 10, "note": note})


async def test_a_new_tenancy_hides_the_previous_one_both_ways(base_url: str, db: Database, unique: str) -> None:
    home = await stored_home(db, unique)
    old = await make_user(db, Role.HOUSEHOLDER, household_id=home.household, member_since=home.readings[0])
    operator = await make_user(db, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        old_session = await session_of(db, old)
        staff = await session_of(db, operator)
        now = datetime.now(UTC)
        for at, note in ((now - timedelta(days=3), "old tenant, three days ago"),
                         (now - timedelta(minutes=5), "old tenant, just now"),
                         (now + timedelta(minutes=5), "old tenant, dated ahead")):
            assert (await write_diary(http, old_session, at, note)).status_code == 201
        before = await visible(http, home, old_session)
        assert before == {"readings": len(home.readings), "history": len(home.readings), "diary": 3,
                          "household_diary": 3, "current": 1, "devices": 1, "alerts": 1}

        # the home changes hands: the operator invites the new tenant, who signs up over HTTP
        invited = await http.post("/invitations", json={"household_id": home.household}, headers=staff)
        assert invited.status_code == 201 and invited.json()["ended_memberships"] == 1, invited.text
        old_after_invite = await visible(http, home, old_session)
        joined = await http.post("/auth/invitations/accept", json={
            "token": invited.json()["token"], "username": f"new-{unique}", "password": PASSWORD})
        assert joined.status_code == 200, joined.text
        new_session = bearer(joined.json()["access_token"])

        # the old tenant's session is still valid, and shows nothing: counted, route by route
        assert (await http.get("/auth/me", headers=old_session)).status_code == 200
        nothing: dict[str, int | None] = {"readings": None, "history": None, "diary": None, "household_diary": None,
                                          "current": None, "devices": 0, "alerts": 0}
        assert old_after_invite == nothing       # from the moment the invitation was issued
        assert await visible(http, home, old_session) == nothing
        assert (await write_diary(http, old_session, datetime.now(UTC), "still here?")).status_code == 404
        for path in (f"/devices/{home.box}", f"/devices/{home.box}/health"):
            assert (await http.get(path, headers=old_session)).status_code == 404
        assert (await http.get("/households/me/report", headers=old_session)).status_code == 404
        missing = await http.get("/households/hh-nobody-lives-here/diary", headers=old_session)
        own_old = await http.get(f"/households/{home.household}/diary", headers=old_session)
        assert own_old.status_code == 404 and own_old.json() == missing.json()   # worded as for no household

        await travel_back(db, home.household, MOVED)     # the move was two days ago
        me = (await http.get("/households/me", headers=new_session)).json()
        since = datetime.fromisoformat(me["member_since"])
        assert abs(since - (datetime.now(UTC) - MOVED)) < timedelta(minutes=1)
        ours = [ts for ts in home.readings if ts >= since]
        assert 90 <= len(ours) <= 97                       # two days of 30-minute readings
        assert datetime.fromisoformat(me["current"]["ts"]) == ours[-1]
        assert me["risk"] is None                          # the runner's 30 days are mostly the old tenant's
        assert (await write_diary(http, new_session, since - timedelta(minutes=5), "before")).status_code == 422
        made = await write_diary(http, new_session, datetime.now(UTC) - timedelta(hours=1), "new tenant")
        assert made.status_code == 201, made.text

        seen = await visible(http, home, new_session)
        assert seen == {"readings": len(ours), "history": len(ours), "diary": 1, "household_diary": 1, "current": 1,
                        "devices": 1, "alerts": 0}       # the damp alert opened in the old tenancy is not theirs
        diary = (await http.get("/households/me/diary", params={"days": 400}, headers=new_session)).json()
        assert [e["note"] for e in diary] == ["new tenant"]   # none of the old tenant's, not even the one dated ahead
        assert not await db.fetchval("SELECT membership_id IS NULL FROM damp_diary WHERE id = $1", made.json()["id"])

        # URL manipulation: dates before the start, the old tenancy's entry ids, other households, the members
        earlier = await http.get(f"/readings/{home.box}", headers=new_session, params={
            "start": (since - timedelta(days=30)).isoformat(), "end": since.isoformat()})
        # nothing from before the start; the window is widened to whole buckets, so the last bucket may hold
        # the tenant's own first readings (after the start), never an earlier one
        assert earlier.status_code == 200
        earlier_end = datetime.fromisoformat(earlier.json()["end"])
        assert reading_count(earlier.json()) == len([ts for ts in ours if ts < earlier_end])
        straddling = await http.get(f"/readings/{home.box}", headers=new_session, params={
            "start": (since - timedelta(hours=5)).isoformat(), "end": (since + timedelta(hours=5)).isoformat(),
            "bucket_s": 36_000})
        window_end = datetime.fromisoformat(straddling.json()["end"])      # widened to whole buckets
        assert reading_count(straddling.json()) == len([ts for ts in ours if ts < window_end])
        assert straddling.json()["start"] == since.isoformat()
        old_ids = [r["id"] for r in await db.fetch("SELECT id FROM damp_diary WHERE household_id = $1 "
                                                   "AND note LIKE 'old tenant%'", home.household)]
        assert len(old_ids) == 3
        for entry_id in old_ids:
            assert (await http.delete(f"/households/me/diary/{entry_id}", headers=new_session)).status_code == 404
        assert await db.fetchval("SELECT count(*) FROM damp_diary WHERE id = ANY($1)", old_ids) == 3
        assert (await http.get(f"/households/{home.household}/tenancies", headers=new_session)).status_code == 403
        other = await make_user(db, Role.HOUSEHOLDER)
        assert (await http.get(f"/households/{other.household_id}", headers=new_session)).status_code == 404

        # staff see everything, as before: every reading, every entry, both memberships and why one ended
        all_diary = await http.get(f"/households/{home.household}/diary", params={"days": 400}, headers=staff)
        assert len(all_diary.json()) == 4
        history = await http.get(f"/households/{home.household}/history", params={"hours": 400 * 24}, headers=staff)
        assert reading_count(history.json()) == len(home.readings)
        assert (await http.get(f"/households/{home.household}", headers=staff)).json()["risk"]["level"] == "high"
        members = (await http.get(f"/households/{home.household}/tenancies", headers=staff)).json()
        assert [(m["user_id"], m["ends_at"] is None) for m in members] == [
            (joined.json()["user"]["user_id"], True), (old.user_id, False)]
        assert members[1]["end_reason"] == "a new tenancy: invitation issued"
        assert members[1]["ended_by"] == operator.user_id


async def test_the_evidence_report_covers_only_the_tenants_period(base_url: str, db: Database, unique: str) -> None:
    home = await stored_home(db, unique)
    await make_user(db, Role.HOUSEHOLDER, household_id=home.household, member_since=home.readings[0])
    operator = await make_user(db, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        staff = await session_of(db, operator)
        invited = await http.post("/invitations", json={"household_id": home.household}, headers=staff)
        joined = await http.post("/auth/invitations/accept", json={
            "token": invited.json()["token"], "username": f"new-{unique}", "password": PASSWORD})
        tenant = bearer(joined.json()["access_token"])
        fresh = await http.get("/households/me/report", headers=tenant)
        assert fresh.status_code == 404 and "no complete hour" in fresh.json()["error"]   # not the old tenant's

        await travel_back(db, home.household, MOVED)
        since = datetime.fromisoformat((await http.get("/households/me", headers=tenant)).json()["member_since"])
        first_hour = since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        before = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        page = await http.get("/households/me/report", params={"days": 30}, headers=tenant)
        after = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        assert page.status_code == 200, page.text
        period = re.search(r"Period</th><td>(\S+) to (\S+) \((\d+) hours, (\d+) with usable", page.text)
        assert period is not None
        assert period[1] == first_hour.date().isoformat()
        assert int(period[3]) in {int((end - first_hour) / timedelta(hours=1)) for end in (before, after)}
        assert 0 < int(period[4]) <= int(period[3])

        whole = await http.get(f"/households/{home.household}/report", params={"days": 30}, headers=staff)
        staff_period = re.search(r"\((\d+) hours, ", whole.text)
        assert staff_period is not None and int(staff_period[1]) == 30 * 24


async def test_an_unused_link_of_the_old_tenancy_is_withdrawn_by_the_next(base_url: str, db: Database,
                                                                          unique: str) -> None:
    """The old tenant kept a link they never used: once the next tenancy's link is issued, it is dead."""
    home = await stored_home(db, unique)
    operator = await make_user(db, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        staff = await session_of(db, operator)
        kept = (await http.post("/invitations", json={"household_id": home.household}, headers=staff)).json()
        flatmate = (await http.post("/invitations", json={"household_id": home.household, "new_tenancy": False},
                                    headers=staff)).json()
        assert flatmate["ended_memberships"] == 0
        nxt = (await http.post("/invitations", json={"household_id": home.household}, headers=staff)).json()
        for link in (kept, flatmate):
            used = await http.post("/auth/invitations/accept", json={
                "token": link["token"], "username": f"late-{unique}", "password": PASSWORD})
            assert used.status_code == 404, used.text
        assert (await http.post("/auth/invitations/accept", json={
            "token": nxt["token"], "username": f"new-{unique}", "password": PASSWORD})).status_code == 200
        assert await db.fetchval("SELECT count(*) FROM household_members WHERE household_id = $1",
                                 home.household) == 1


async def test_a_flatmate_joins_without_ending_the_tenancy(base_url: str, db: Database, unique: str) -> None:
    home = await stored_home(db, unique)
    tenant = await make_user(db, Role.HOUSEHOLDER, household_id=home.household, member_since=home.readings[0])
    operator = await make_user(db, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        staff = await session_of(db, operator)
        link = (await http.post("/invitations", json={"household_id": home.household, "new_tenancy": False},
                                headers=staff)).json()
        joined = await http.post("/auth/invitations/accept", json={
            "token": link["token"], "username": f"mate-{unique}", "password": PASSWORD})
        assert joined.status_code == 200
        mate = bearer(joined.json()["access_token"])
        assert (await visible(http, home, await session_of(db, tenant)))["readings"] == len(home.readings)
        assert (await visible(http, home, mate))["readings"] == 0     # from their own start: nothing yet


async def test_an_operator_ends_a_membership_with_a_reason(base_url: str, db: Database, unique: str) -> None:
    home = await stored_home(db, unique)
    tenant = await make_user(db, Role.HOUSEHOLDER, household_id=home.household, member_since=home.readings[0])
    operator = await make_user(db, Role.OPERATOR)
    feed: int = await db.fetchval("INSERT INTO alert_subscriptions (user_id, role, channel, household_id) "
                                  "VALUES ($1, 'householder', 'feed', $2) RETURNING subscription_id",
                                  tenant.user_id, home.household)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        staff, session = await session_of(db, operator), await session_of(db, tenant)
        assert (await visible(http, home, session))["history"] == len(home.readings)
        refused = await http.post(f"/users/{tenant.user_id}/end-tenancy", json={"reason": "  "}, headers=staff)
        assert refused.status_code == 422
        ended = await http.post(f"/users/{tenant.user_id}/end-tenancy", json={"reason": "moved out 3 March"},
                                headers=staff)
        assert ended.status_code == 200 and ended.json()["end_reason"] == "moved out 3 March", ended.text
        assert ended.json()["ended_by"] == operator.user_id
        assert (await visible(http, home, session))["history"] is None      # the same session, the next request
        assert not await db.fetchval("SELECT enabled FROM alert_subscriptions WHERE subscription_id = $1", feed)
        again = await http.post(f"/users/{tenant.user_id}/end-tenancy", json={"reason": "again"}, headers=staff)
        assert again.status_code == 409
        assert (await http.post(f"/users/{tenant.user_id}/end-tenancy", json={"reason": "x"},
                                headers=session)).status_code == 403


async def test_moving_a_householder_ends_one_membership_and_starts_another(db: Database, unique: str) -> None:
    from ops_api.accounts import store, tenancies

    tenant = await make_user(db, Role.HOUSEHOLDER, household_id=f"hh-{unique}-a")
    await store.update_user(db, tenant.user_id, household_id=f"hh-{unique}-b", changed_by="u_admin")
    rows = await tenancies.listing(db, user_id=tenant.user_id)
    assert [(t.household_id, t.is_open, t.end_reason) for t in rows] == [
        (f"hh-{unique}-b", True, None), (f"hh-{unique}-a", False, f"moved to household hh-{unique}-b")]
    await store.update_user(db, tenant.user_id, role=Role.OPERATOR)
    assert not any(t.is_open for t in await tenancies.listing(db, user_id=tenant.user_id))
