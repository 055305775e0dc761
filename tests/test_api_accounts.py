"""Accounts through the API against the real database: invitations, the login limit, user
administration, and the registry routes for admins."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cityops.settings import AccountsSettings, DevicesSettings, Settings
from cityops.storage import Database
from devices.secrets import verify_secret
from ops_api.accounts import invitations, store
from ops_api.app import create_app
from ops_api.deps import Role
from tests.api_helpers import api_client, login_as, make_user
from tests.broker_helpers import connack, secured_broker, wait_for_reload

PASSWORD = "correct horse battery"
BRISTOL = {"lon": -2.59, "lat": 51.45}


@pytest.fixture
def accounts_app(db: Database, database_url: str, tmp_path: Path) -> FastAPI:
    """The API over the session database with this module's accounts settings: invitation links,
    tight login limits, and broker files of the test's own (the shared `app` has the defaults)."""
    settings = Settings(
        database_url=database_url,  # type: ignore[arg-type]
        accounts=AccountsSettings(public_base_url="https://cityops.example.org/", login_max_failures=3,
                                  login_max_failures_per_client=5),
        devices=DevicesSettings(broker_password_file=tmp_path / "passwords", broker_acl_file=tmp_path / "acl"))
    return create_app(settings, db=db)


async def test_an_operator_invites_a_householder_who_signs_up_once(
        accounts_app: FastAPI, db: Database, unique: str) -> None:
    async with api_client(accounts_app) as staff:
        operator = await login_as(staff, db, Role.OPERATOR)
        made = await staff.post("/invitations", json={"household_id": f"house-{unique}"})
        assert made.status_code == 201, made.text
        invite = made.json()
        assert invite["url"] == f"https://cityops.example.org/invite/{invite['token']}"
    async with api_client(accounts_app) as phone:
        phone.base_url = httpx.URL("https://testserver")  # the session cookie is Secure
        accept = {"token": invite["token"], "username": f"Jo-{unique}", "password": PASSWORD, "display_name": "Jo"}
        joined = await phone.post("/auth/invitations/accept", json=accept)
        assert joined.status_code == 200, joined.text
        assert joined.json()["user"] | {"user_id": None} == {
            "user_id": None, "username": f"jo-{unique}", "role": "householder",
            "household_id": f"house-{unique}", "display_name": "Jo"}
        assert (await phone.get("/auth/me")).json()["household_id"] == f"house-{unique}"  # signed in (cookie)
        again = await phone.post("/auth/invitations/accept", json={**accept, "username": f"jo2-{unique}"})
        assert again.status_code == 404 and "already used" in again.json()["error"]
    [record] = await store.list_users(db, household_id=f"house-{unique}")
    assert record.created_by == operator.user_id and record.has_password


async def test_an_expired_or_forged_invitation_makes_nobody(accounts_app: FastAPI, db: Database, unique: str) -> None:
    old = await invitations.create_invitation(db, f"house-{unique}", created_by=None, ttl=timedelta(seconds=-1))
    async with api_client(accounts_app) as client:
        for token in (old.token, "forged", "x" * 512):
            body = {"token": token, "username": f"u-{unique}", "password": PASSWORD}
            response = await client.post("/auth/invitations/accept", json=body)
            assert response.status_code == 404 and response.json()["hint"], token
        short = await client.post("/auth/invitations/accept",
                                  json={"token": old.token, "username": "x", "password": PASSWORD})
        assert short.status_code == 422  # malformed body: a clear 422, not a 500
    assert await store.list_users(db, household_id=f"house-{unique}") == []


async def test_a_weak_password_or_taken_username_is_refused_and_the_invitation_stays(
        accounts_app: FastAPI, db: Database, unique: str) -> None:
    taken = await make_user(db, Role.OPERATOR)
    invitation = await invitations.create_invitation(db, f"house-{unique}", created_by=None)
    async with api_client(accounts_app) as client:
        weak = await client.post("/auth/invitations/accept",
                                 json={"token": invitation.token, "username": f"a-{unique}", "password": "short"})
        assert weak.status_code == 422 and weak.json()["error"].startswith("password:")
        clash = await client.post("/auth/invitations/accept",
                                  json={"token": invitation.token, "username": taken.username, "password": PASSWORD})
        assert clash.status_code == 409
        ok = await client.post("/auth/invitations/accept",
                               json={"token": invitation.token, "username": f"a-{unique}", "password": PASSWORD})
        assert ok.status_code == 200


async def test_householders_and_crews_cannot_invite(accounts_app: FastAPI, db: Database) -> None:
    async with api_client(accounts_app) as client:
        for role in (Role.HOUSEHOLDER, Role.GRITTING_CREW, Role.WASTE_CREW):
            await login_as(client, db, role)
            assert (await client.post("/invitations", json={"household_id": "hh-1"})).status_code == 403
        client.headers.pop("Authorization")
        assert (await client.post("/invitations", json={"household_id": "hh-1"})).status_code == 401


async def test_failed_logins_per_username_pause_with_retry_after(
        accounts_app: FastAPI, db: Database, unique: str) -> None:
    user = await store.create_user(db, username=f"op-{unique}", password=PASSWORD, role="operator")
    async with api_client(accounts_app) as client:
        for _ in range(3):
            wrong = await client.post("/auth/login", data={"username": user.username, "password": "wrong guess!"})
            assert wrong.status_code == 401
        paused = await client.post("/auth/login", data={"username": user.username, "password": PASSWORD})
        assert paused.status_code == 429  # even the right password, until the delay has passed
        assert 0 < int(paused.headers["retry-after"]) <= 10  # the first delay: login_delay, 10 s
        assert "too many failed logins" in paused.json()["error"]
    async with api_client(accounts_app) as elsewhere:  # another address: the username still waits
        assert (await elsewhere.post("/auth/login", data={"username": user.username,
                                                          "password": PASSWORD})).status_code == 429
    await db.execute("UPDATE login_attempts SET at = at - interval '10 seconds' WHERE username = $1", user.username)
    async with api_client(accounts_app) as client:
        assert (await client.post("/auth/login", data={"username": user.username,
                                                       "password": PASSWORD})).status_code == 200


async def test_failed_logins_per_client_address_pause_that_address(
        accounts_app: FastAPI, db: Database, unique: str) -> None:
    user = await store.create_user(db, username=f"op-{unique}", password=PASSWORD, role="operator")
    async with api_client(accounts_app) as attacker:
        for n in range(5):  # different names, one address
            assert (await attacker.post("/auth/login", data={"username": f"guess{n}-{unique}",
                                                             "password": "wrong guess!"})).status_code == 401
        blocked = await attacker.post("/auth/login", data={"username": user.username, "password": PASSWORD})
        assert blocked.status_code == 429 and "your address" in blocked.json()["error"]
    async with api_client(accounts_app) as other:
        assert (await other.post("/auth/login", data={"username": user.username,
                                                      "password": PASSWORD})).status_code == 200


async def test_admin_manages_users_and_the_last_admin_stays(accounts_app: FastAPI, db: Database, unique: str) -> None:
    async with api_client(accounts_app) as client:
        admin = await login_as(client, db, Role.ADMIN)
        made = await client.post("/users", json={"username": f"crew-{unique}", "password": PASSWORD,
                                                 "role": "gritting_crew", "display_name": "Sam"})
        assert made.status_code == 201, made.text
        crew = made.json()
        assert crew["created_by"] == admin.user_id and crew["has_password"]
        bad = await client.post("/users", json={"username": f"hh-{unique}", "password": PASSWORD,
                                                "role": "householder"})
        assert bad.status_code == 422 and "household_id" in bad.json()["error"]
        dup = await client.post("/users", json={"username": f"CREW-{unique}", "password": PASSWORD,
                                                "role": "operator"})
        assert dup.status_code == 409
        listed = await client.get("/users", params={"role": "gritting_crew"})
        assert crew["user_id"] in [u["user_id"] for u in listed.json()]
        changed = await client.patch(f"/users/{crew['user_id']}", json={"role": "waste_crew", "disabled": True})
        assert changed.json()["role"] == "waste_crew" and changed.json()["disabled"] is True
        assert (await client.patch("/users/u_nobody", json={"disabled": True})).status_code == 404
        # demoting admins down to the last one is refused
        others = [r for r in await store.list_users(db, role=Role.ADMIN, include_disabled=False)
                  if r.user.user_id != admin.user_id]
        for other in others:
            await store.update_user(db, other.user.user_id, disabled=True)
        last = await client.patch(f"/users/{admin.user_id}", json={"role": "operator"})
        assert last.status_code == 409 and "last enabled admin" in last.json()["error"]
        for other in others:
            await store.update_user(db, other.user.user_id, disabled=False)
        await login_as(client, db, Role.OPERATOR)
        assert (await client.get("/users")).status_code == 403


async def test_admin_registers_updates_rotates_and_retires_a_device(
        db: Database, database_url: str, unique: str, tmp_path: Path) -> None:
    """Against a real Mosquitto on the password and ACL files, reloaded through its pid file."""
    device_id = f"{unique}-frog"
    async with secured_broker(db, tmp_path / "broker") as broker:
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{broker.pid}\n")
        app = create_app(Settings(
            database_url=database_url,  # type: ignore[arg-type]
            devices=DevicesSettings(broker_password_file=broker.passwords, broker_acl_file=broker.acl,
                                    broker_pid_file=pid_file)), db=db)
        async with api_client(app) as client:
            await login_as(client, db, Role.ADMIN)
            reloads = broker.reloads()
            made = await client.post("/admin/devices", json={"device_id": device_id, "kind": "frog", **BRISTOL,
                                                             "household_id": f"house-{unique}"})
            assert made.status_code == 201, made.text
            first = made.json()["secret"]
            assert f"broker reloaded (pid {broker.pid})" in made.json()["broker"]
            await wait_for_reload(broker, reloads)
            assert connack(broker.port, device_id, first) == 0
            assert (await client.post("/admin/devices", json={"device_id": device_id, "kind": "frog",
                                                              **BRISTOL})).status_code == 409
            outside = await client.post("/admin/devices", json={"device_id": f"{unique}-x", "kind": "frog",
                                                                "lon": 10.0, "lat": 10.0})
            assert outside.status_code == 422 and "outside the council's area" in outside.json()["error"]
            moved = await client.patch(f"/admin/devices/{device_id}",
                                       json={"lon": -2.6, "lat": 51.46, "sensor_type": "sht31"})
            assert moved.status_code == 200, moved.text
            assert moved.json()["device"]["lon"] == -2.6 and moved.json()["device"]["sensor_type"] == "sht31"
            half = await client.patch(f"/admin/devices/{device_id}", json={"lon": -2.6})
            assert half.status_code == 422
            reloads = broker.reloads()
            rotated = await client.post(f"/admin/devices/{device_id}/rotate")
            second = rotated.json()["secret"]
            stored = await db.fetchval("SELECT secret_hash FROM device_secrets WHERE device_id = $1", device_id)
            assert second != first and verify_secret(second, stored) and not verify_secret(first, stored)
            await wait_for_reload(broker, reloads)
            assert connack(broker.port, device_id, first) != 0 and connack(broker.port, device_id, second) == 0
            reloads = broker.reloads()
            retired = await client.post(f"/admin/devices/{device_id}/retire", json={"reason": "stolen"})
            assert retired.status_code == 200 and retired.json()["device"]["status"] == "retired"
            await wait_for_reload(broker, reloads)
            assert connack(broker.port, device_id, second) != 0
            assert (await client.post(f"/admin/devices/{device_id}/rotate")).status_code == 409
            assert (await client.post(f"/admin/devices/{unique}-none/retire")).status_code == 404

            await login_as(client, db, Role.OPERATOR)
            assert (await client.post(f"/admin/devices/{device_id}/rotate")).status_code == 403

        # files but no pid file: no running broker hears of it, so the API claims nothing: 502, no secret
        blind = create_app(Settings(database_url=database_url,  # type: ignore[arg-type]
                                    devices=DevicesSettings(broker_password_file=broker.passwords,
                                                            broker_acl_file=broker.acl)), db=db)
        async with api_client(blind) as client:
            await login_as(client, db, Role.ADMIN)
            unapplied = await client.post("/admin/devices", json={"device_id": f"{unique}-2", "kind": "frog",
                                                                  **BRISTOL})
            assert unapplied.status_code == 502 and "BROKER NOT RELOADED" in unapplied.json()["error"]
            assert "secret" not in unapplied.json()


async def test_a_role_change_or_new_password_ends_the_users_sessions(accounts_app: FastAPI, db: Database) -> None:
    async with api_client(accounts_app) as client:
        user = await login_as(client, db, Role.OPERATOR)
        assert (await client.get("/auth/me")).status_code == 200
        await store.update_user(db, user.user_id, role=Role.WASTE_CREW)
        assert (await client.get("/auth/me")).status_code == 401
