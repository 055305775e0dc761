"""Alerts and the in-app feed: who sees which alerts, acknowledging, notifications."""

from __future__ import annotations

from fastapi import FastAPI

from cityops.storage import Database
from ops_api.deps import Role
from tests.api_helpers import api_client, login_as


async def add_alert(db: Database, unique: str, rule: str, *, household_id: str | None = None,
                    state: str = "open", severity: str = "warning") -> int:
    alert_id: int = await db.fetchval(
        "INSERT INTO alerts (rule, cause, severity, state, title, household_id, opened_at, last_firing_at, "
        "resolved_at) VALUES ($1, $2, $3, $4, $5, $6, now(), now(), CASE WHEN $4 = 'resolved' THEN now() END) "
        "RETURNING alert_id", rule, f"{rule}:{unique}:{state}", severity, state, f"{rule} {unique}", household_id)
    return alert_id


async def test_each_role_sees_its_alerts_and_staff_acknowledge(app: FastAPI, db: Database, unique: str) -> None:
    household = f"hh-{unique}"
    damp = await add_alert(db, unique, "damp_risk", household_id=household)
    other_damp = await add_alert(db, unique, "damp_risk", household_id=f"hh-other-{unique}", state="acknowledged")
    freeze = await add_alert(db, unique, "road_freeze", severity="critical")
    fire = await add_alert(db, unique, "bin_fire")
    done = await add_alert(db, unique, "battery_low", state="resolved")
    mine = {damp, other_damp, freeze, fire, done}
    async with api_client(app) as client:
        assert (await client.get("/alerts")).status_code == 401
        await login_as(client, db, Role.OPERATOR)
        active = {a["alert_id"] for a in (await client.get("/alerts")).json()} & mine
        assert active == {damp, other_damp, freeze, fire}
        assert {a["alert_id"] for a in (await client.get("/alerts", params={"state": "all"})).json()} >= mine
        critical = (await client.get("/alerts", params={"severity": "critical"})).json()
        assert freeze in {a["alert_id"] for a in critical} and all(a["severity"] == "critical" for a in critical)
        acked = await client.post(f"/alerts/{freeze}/acknowledge")
        assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
        assert acked.json()["acknowledged_by"].startswith("operator-")
        again = await client.post(f"/alerts/{freeze}/acknowledge")
        assert again.status_code == 200 and again.json()["acknowledged_at"] == acked.json()["acknowledged_at"]
        assert (await client.post(f"/alerts/{done}/acknowledge")).status_code == 409
        assert (await client.post("/alerts/999999999/acknowledge")).status_code == 404
        events = await db.fetchval("SELECT count(*) FROM alert_events WHERE alert_id = $1 AND kind = 'acknowledged'",
                                   freeze)
        assert events == 1

        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        assert {a["alert_id"] for a in (await client.get("/alerts", params={"state": "all"})).json()} == {damp}
        assert (await client.get(f"/alerts/{damp}")).status_code == 200
        assert (await client.get(f"/alerts/{other_damp}")).status_code == 404
        assert (await client.post(f"/alerts/{damp}/acknowledge")).status_code == 403
        await login_as(client, db, Role.GRITTING_CREW)
        assert {a["alert_id"] for a in (await client.get("/alerts", params={"state": "all"})).json()} & mine == {freeze}
        assert (await client.get(f"/alerts/{fire}")).status_code == 404
        await login_as(client, db, Role.WASTE_CREW)
        assert {a["alert_id"] for a in (await client.get("/alerts")).json()} & mine == {fire}


async def test_the_in_app_feed_is_each_users_own(app: FastAPI, db: Database, unique: str) -> None:
    alert = await add_alert(db, unique, "damp_risk", household_id=f"hh-{unique}")
    async with api_client(app) as client, api_client(app) as stranger:
        user = await login_as(client, db, Role.HOUSEHOLDER, household_id=f"hh-{unique}")
        await login_as(stranger, db, Role.HOUSEHOLDER)
        sub = await db.fetchval("INSERT INTO alert_subscriptions (user_id, role, channel, household_id) "
                                "VALUES ($1, 'householder', 'feed', $2) RETURNING subscription_id", user.user_id,
                                f"hh-{unique}")
        event = await db.fetchval("INSERT INTO alert_events (alert_id, at, kind) VALUES ($1, now(), 'opened') "
                                  "RETURNING event_id", alert)
        outbox = await db.fetchval(
            "INSERT INTO alert_outbox (alert_id, event_id, subscription_id, user_id, channel, target, payload, due_at, "
            "status) VALUES ($1, $2, $3, $4, 'feed', '', '{}', now(), 'sent') RETURNING outbox_id",
            alert, event, sub, user.user_id)
        note = await db.fetchval("INSERT INTO notifications (user_id, alert_id, outbox_id, severity, title, body, "
                                 "created_at) VALUES ($1, $2, $3, 'warning', 'Damp', 'Open a window', now()) "
                                 "RETURNING notification_id", user.user_id, alert, outbox)
        feed = (await client.get("/me/notifications")).json()
        assert feed["unread"] == 1 and [n["notification_id"] for n in feed["notifications"]] == [note]
        assert (await stranger.get("/me/notifications")).json() == {"unread": 0, "notifications": []}
        assert (await stranger.post(f"/me/notifications/{note}/read")).status_code == 404
        read = (await client.post(f"/me/notifications/{note}/read")).json()
        assert read["read_at"] is not None
        assert (await client.get("/me/notifications", params={"unread_only": True})).json()["notifications"] == []
