"""Damp and mould cases through the API against the real database: an officer's case from
opening to closure with its clocks, a sensor suggestion triaged, and what the householder
sees of their case (cases.lifecycle.household_case).

Clock expectations are hand calculations with England's calendar (no bank holiday in
November 2026): "10 working days" of SI 2025/1042 reg. 4 counted from the day after
awareness, each ending at 23:59:59.999999 London time (GMT in November), as
rules/cases/clocks.py defines them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from cases import lifecycle
from cityops.storage import Database
from devices import registry
from devices.spec import DeviceSpec
from ops_api.accounts.roles import Role
from ops_api.accounts.sessions import open_session
from tests.api_helpers import api_client, login_as, make_user

AWARE = "2026-11-04T10:00:00+00:00"                 # a Wednesday
INVESTIGATION_DUE = "2026-11-18T23:59:59.999999+00:00"  # Thu 5 .. Wed 18 November: 10 working days
INVESTIGATED = "2026-11-17T10:00:00+00:00"
SUMMARY_DUE = "2026-11-20T23:59:59.999999+00:00"        # Wed 18, Thu 19, Fri 20: 3 working days
SUMMARY_SENT = "2026-11-23T09:00:00+00:00"              # the Monday after: late


async def _admin_home(client: httpx.AsyncClient, db: Database, unique: str, *, landlord: str | None = None
                      ) -> str:
    """A landlord organisation (when given) and a home of theirs, made through the admin routes."""
    admin = await make_user(db, Role.ADMIN)
    headers = {"Authorization": f"Bearer {await open_session(db, admin.user_id)}"}
    if landlord is not None:
        made = await client.post("/landlords", headers=headers, json={
            "landlord_id": landlord, "name": f"Homes {landlord}", "kind": "housing_association", "social": True})
        assert made.status_code == 201, made.text
    household = f"hh-{unique}"
    home = await client.put(f"/homes/{household}", headers=headers, json={
        "landlord_id": landlord, "label": "12 Mill Lane", "social_housing": True})
    assert home.status_code == 200, home.text
    return household


def _clock(case: dict, key: str) -> dict:
    return next(c for c in case["clocks"] if c["key"] == key)


async def test_an_officers_case_from_opening_to_closure(app: FastAPI, db: Database, unique: str) -> None:
    async with api_client(app) as client:
        household = await _admin_home(client, db, unique)
        await login_as(client, db, Role.OPERATOR)
        opened = await client.post("/cases", json={
            "household_id": household, "category": "significant", "aware_at": AWARE, "aware_how": "householder",
            "reason": "black mould on the bedroom wall; a child under 5 sleeps there"})
        assert opened.status_code == 201, opened.text
        case = opened.json()
        case_id = case["case_id"]
        assert case["state"] == "open" and case["aware_at"] == AWARE
        # the clocks of a significant hazard (the contract: rules.cases.clocks), due times by hand
        assert [c["key"] for c in case["clocks"]][:2] == ["investigation", "written_summary"]
        investigation = _clock(case, "investigation")
        assert investigation["due"] == INVESTIGATION_DUE and investigation["state"] == "overdue"
        assert _clock(case, "written_summary")["state"] == "waiting"   # no investigation yet

        again = await client.post("/cases", json={"household_id": household, "category": "emergency",
                                                  "reason": "a second case for the same home"})
        assert again.status_code == 409, again.text   # one open case per home

        steps = [
            {"kind": "investigation", "at": INVESTIGATED, "investigator": "A. Surveyor",
             "findings": "mould behind the wardrobe", "cause": "condensation; extractor fan broken"},
            {"kind": "summary_sent", "at": SUMMARY_SENT, "text": "We found mould caused by condensation."},
            {"kind": "note", "text": "tenant's neighbour says the flat above leaks"},
            {"kind": "contact", "how": "phone", "text": "booked the contractor for Thursday"},
            {"kind": "safety_works", "stage": "done", "at": "2026-11-19T15:00:00+00:00", "contractor": "DampCo"},
        ]
        for step in steps:
            response = await client.post(f"/cases/{case_id}/events", json=step)
            assert response.status_code == 201, response.text
        case = (await client.get(f"/cases/{case_id}")).json()
        assert _clock(case, "investigation")["state"] == "met"
        summary = _clock(case, "written_summary")
        assert summary["due"] == SUMMARY_DUE and summary["state"] == "met_late"
        assert _clock(case, "safety_work")["state"] == "met"     # due Tue 24 November, done on the 19th
        kinds = [e["kind"] for e in case["timeline"]]
        assert kinds[0] == "opened" and {"investigation", "summary_sent", "note", "contact"} <= set(kinds)
        note = next(e for e in case["timeline"] if e["kind"] == "note")
        assert note["visible_to_tenant"] is False   # internal, as the officers' route says

        future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        refused = await client.post(f"/cases/{case_id}/events", json={"kind": "made_safe", "at": future})
        assert refused.status_code == 422 and "future" in refused.json()["error"]
        unknown = await client.post(f"/cases/{case_id}/events", json={"kind": "bribe", "text": "x"})
        assert unknown.status_code == 422

        closed = await client.post(f"/cases/{case_id}/close", json={"reason": "works done, tenant content"})
        assert closed.status_code == 200 and closed.json()["state"] == "closed"
        late = await client.post(f"/cases/{case_id}/events", json={"kind": "note", "text": "after closing"})
        assert late.status_code == 409
        listed = (await client.get("/cases", params={"state": "closed"})).json()["cases"]
        assert case_id in [c["case_id"] for c in listed]
        reopened = await client.post("/cases", json={"household_id": household, "category": "significant",
                                                     "reason": "the mould came back"})
        assert reopened.status_code == 201     # a closed case frees the home for a new one


async def _damp_home(db: Database, unique: str, now: datetime, levels: list[str]) -> str:
    """A home with a damp sensor whose assessments were `levels`, one a day, the last one now."""
    household, device = f"hh-{unique}", f"{unique}-frog"
    await registry.add_device(db, DeviceSpec(device, "frog", -2.59, 51.45, household_id=household))
    for days_ago, level in enumerate(reversed(levels)):
        await db.execute(
            "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d, "
            "condensation_hours_7d, reasons, changes, faults, metrics) VALUES ($1, $2, $3, $4, 2, 40, 30, '[]', "
            "'[]', '[]', '{}')", device, now - timedelta(days=days_ago, minutes=5), household, level)
    return household


async def test_a_sensor_suggestion_is_triaged_and_never_runs_a_clock(app: FastAPI, db: Database,
                                                                     unique: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    damp = await _damp_home(db, f"{unique}a", now, ["high", "severe", "high"])
    dry_day = await _damp_home(db, f"{unique}b", now, ["high", "low", "high"])   # one dry day: no suggestion
    created = await lifecycle.suggest_from_sensors(db, now, days=3)
    households = {r["household_id"] for r in await db.fetch(
        "SELECT household_id FROM damp_cases WHERE case_id = ANY($1::bigint[])", created)}
    assert damp in households and dry_day not in households
    await lifecycle.suggest_from_sensors(db, now, days=3)   # idempotent: still one case for the home
    assert await db.fetchval("SELECT count(*) FROM damp_cases WHERE household_id = $1", damp) == 1
    case_id = await db.fetchval("SELECT case_id FROM damp_cases WHERE household_id = $1", damp)
    async with api_client(app) as client:
        await login_as(client, db, Role.OPERATOR)
        suggested = (await client.get(f"/cases/{case_id}")).json()
        assert suggested["state"] == "suggested" and suggested["clocks"] == [] and suggested["aware_at"] is None
        assert suggested["suggestion"]["days"] == 3 and suggested["suggestion"]["worst_level"] == "severe"
        early = await client.post(f"/cases/{case_id}/events", json={
            "kind": "investigation", "investigator": "x", "findings": "y"})
        assert early.status_code == 409    # triage first
        no_category = await client.post(f"/cases/{case_id}/triage", json={"decision": "accept",
                                                                          "reason": "persistent damp"})
        assert no_category.status_code == 422
        accepted = await client.post(f"/cases/{case_id}/triage", json={
            "decision": "accept", "category": "significant", "reason": "three days of high damp; mould index 2"})
        assert accepted.status_code == 200, accepted.text
        case = accepted.json()
        # awareness is the triage time (CasesSettings.sensor_alert_is_awareness is off by default)
        assert case["state"] == "open" and case["aware_at"] >= now.isoformat()
        assert _clock(case, "investigation")["state"] == "on_time"
        again = await client.post(f"/cases/{case_id}/triage", json={"decision": "dismiss", "reason": "changed mind"})
        assert again.status_code == 409    # an open case is closed, not dismissed

    other = await _damp_home(db, f"{unique}c", now, ["severe", "severe", "severe"])
    await lifecycle.suggest_from_sensors(db, now, days=3)
    other_case = await db.fetchval("SELECT case_id FROM damp_cases WHERE household_id = $1", other)
    await lifecycle.triage(db, other_case, "officer", now, decision="dismiss", reason="tenant drying clothes")
    assert await db.fetchval("SELECT state FROM damp_cases WHERE case_id = $1", other_case) == "dismissed"
    await lifecycle.suggest_from_sensors(db, now + timedelta(hours=1), days=3)
    assert await db.fetchval("SELECT count(*) FROM damp_cases WHERE household_id = $1", other) == 1  # not again


async def test_the_householders_view_hides_internal_entries_and_a_previous_tenants_report(
        app: FastAPI, db: Database, unique: str) -> None:
    household = f"hh-{unique}"
    reported = datetime(2026, 11, 2, 9, tzinfo=UTC)
    await lifecycle.householder_report(db, household, "old-tenant", "mould in the bathroom", [], reported)
    case_id = await db.fetchval("SELECT case_id FROM damp_cases WHERE household_id = $1", household)
    officer = datetime(2026, 11, 3, 9, tzinfo=UTC)
    await lifecycle.record_step(db, case_id, "officer", officer, "note", {"text": "SECRET internal remark"})
    await lifecycle.record_step(db, case_id, "officer", officer, "vulnerability",
                                {"flags": ["respiratory_condition"], "note": "SECRET asthma"})
    await lifecycle.record_step(db, case_id, "officer", officer, "contact",
                                {"how": "phone", "text": "called to book a visit"})
    view = await lifecycle.household_case(db, household, officer)
    assert view is not None and view["state"] == "open" and view["category"] == "significant"
    text = json.dumps(view)
    assert "SECRET" not in text and "respiratory" not in text
    assert [e["kind"] for e in view["timeline"]] == ["report", "contact"]
    assert view["timeline"][0]["text"] == "mould in the bathroom"
    assert view["next_step"]["label"] == "Investigate the damp and mould"
    # a new tenant from 2 November 12:00 sees the case, not the old tenant's report
    new_tenant = await lifecycle.household_case(db, household, officer, since=datetime(2026, 11, 2, 12, tzinfo=UTC))
    assert new_tenant is not None and [e["kind"] for e in new_tenant["timeline"]] == ["contact"]
    assert "mould in the bathroom" not in json.dumps(new_tenant)
    # a second report joins the open case
    await lifecycle.householder_report(db, household, "old-tenant", "it is spreading", [], officer)
    assert await db.fetchval("SELECT count(*) FROM damp_cases WHERE household_id = $1", household) == 1


async def test_the_case_list_puts_the_nearest_due_clock_first(db: Database, unique: str) -> None:
    """Investigation due 18 November (aware 4 November) before one due 4 December (aware 20
    November: Mon 23 .. Fri 4 December, 10 working days), then the suggestion (no clock)."""
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    await lifecycle.add_landlord(db, unique, "Order Homes", "council", True)
    homes = [f"hh-{unique}{i}" for i in range(3)]
    for home in homes:
        await lifecycle.put_home(db, home, unique, "", True, now)
    later = await lifecycle.open_case(db, homes[0], "officer", now, category="significant", reason="later one",
                                      aware_at=datetime(2026, 11, 20, 9, tzinfo=UTC))
    sooner = await lifecycle.open_case(db, homes[1], "officer", now, category="significant", reason="sooner one",
                                       aware_at=datetime.fromisoformat(AWARE))
    suggested = await db.fetchval(
        "INSERT INTO damp_cases (household_id, state, created_at, opened_by) VALUES ($1, 'suggested', $2, 'sensor') "
        "RETURNING case_id", homes[2], now)
    listed = await lifecycle.list_cases(db, now, landlord_id=unique, all_landlords=False)
    assert [c["case_id"] for c in listed] == [sooner, later, suggested]
    assert listed[0]["next_step"]["due"] == INVESTIGATION_DUE and listed[0]["next_step"]["state"] == "overdue"
    assert listed[1]["next_step"]["due"] == "2026-12-04T23:59:59.999999+00:00"
    assert listed[2]["next_step"] is None and listed[2]["clocks"] == []
