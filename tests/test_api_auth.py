"""Signing in and out against the real database: login, bearer and cookie sessions, /auth/me,
expired and forged tokens, roles, the login limit, invitations."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from cityops.settings import AccountsSettings, Settings
from cityops.storage import Database
from ops_api.accounts import sessions, store
from ops_api.app import create_app
from ops_api.deps import SECURE_SESSION_COOKIE, SESSION_COOKIE, Admin, GrittingReader, Role, Staff, User, WasteReader
from tests.api_helpers import api_client, login_as, make_user

PASSWORD = "correct horse battery"


async def test_login_me_and_logout_with_a_bearer_token(app: FastAPI, db: Database, unique: str) -> None:
    user = await store.create_user(db, username=f"Op-{unique}", password=PASSWORD, role="operator")
    assert user.username == f"op-{unique}"  # stored lower-case
    async with api_client(app) as client:
        assert (await client.get("/auth/me")).status_code == 401
        wrong = await client.post("/auth/login", data={"username": user.username, "password": "not it at all"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "wrong username or password"
        assert wrong.headers["www-authenticate"] == "Bearer"
        ok = await client.post("/auth/login", data={"username": f"OP-{unique}", "password": PASSWORD})
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["token_type"] == "bearer" and body["user"]["role"] == "operator"
        assert body["user"]["user_id"] == user.user_id
        cookie = ok.headers["set-cookie"]
        assert cookie.startswith(f"{SECURE_SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie  # __Host- needs all three
        client.cookies.clear()
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        me = await client.get("/auth/me", headers=bearer)
        assert me.status_code == 200 and me.json()["username"] == user.username
        assert (await client.post("/auth/logout", headers=bearer)).status_code == 204
        gone = await client.get("/auth/me", headers=bearer)
        assert gone.status_code == 401 and "expired" in gone.json()["error"]


async def test_the_session_cookie_signs_in_the_pages(app: FastAPI, db: Database, unique: str) -> None:
    await store.create_user(db, username=f"hh-{unique}", password=PASSWORD, role="householder",
                            household_id=f"house-{unique}")
    async with api_client(app) as client:
        client.base_url = httpx.URL("https://testserver")  # a Secure cookie goes back only over https
        ok = await client.post("/auth/login", data={"username": f"hh-{unique}", "password": PASSWORD})
        assert ok.status_code == 200
        assert client.cookies.get(SECURE_SESSION_COOKIE) == ok.json()["access_token"]
        me = await client.get("/auth/me")  # no header: the cookie
        assert me.json()["household_id"] == f"house-{unique}"
        await client.post("/auth/logout")
        assert (await client.get("/auth/me")).status_code == 401


@pytest.mark.parametrize("header", ["Bearer forged-token", "Bearer " + "x" * 5000, "Basic dXNlcjpwYXNz", "Bearer"])
async def test_forged_or_malformed_tokens_are_401_with_a_clear_body(app: FastAPI, header: str) -> None:
    async with api_client(app) as client:
        response = await client.get("/auth/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"] and response.json()["hint"]


async def test_expired_and_disabled_sessions_are_refused(app: FastAPI, db: Database) -> None:
    user = await make_user(db, Role.OPERATOR)
    expired = await sessions.open_session(db, user.user_id, ttl=timedelta(seconds=-1))
    live = await sessions.open_session(db, user.user_id)
    async with api_client(app) as client:
        assert (await client.get("/auth/me", headers={"Authorization": f"Bearer {expired}"})).status_code == 401
        assert (await client.get("/auth/me", headers={"Authorization": f"Bearer {live}"})).status_code == 200
        await store.disable_user(db, user.user_id)
        assert (await client.get("/auth/me", headers={"Authorization": f"Bearer {live}"})).status_code == 401


async def test_role_dependencies_let_the_right_roles_through(db: Database, database_url: str) -> None:
    app = create_app(Settings(database_url=database_url), db=db)  # type: ignore[arg-type]

    @app.get("/probe/staff")
    async def staff(user: Staff) -> str:
        return user.role

    @app.get("/probe/admin")
    async def admin(user: Admin) -> str:
        return user.role

    @app.get("/probe/gritting")
    async def gritting(user: GrittingReader) -> str:
        return user.role

    @app.get("/probe/waste")
    async def waste(user: WasteReader) -> str:
        return user.role

    allowed = {"staff": {Role.OPERATOR, Role.ADMIN}, "admin": {Role.ADMIN},
               "gritting": {Role.OPERATOR, Role.GRITTING_CREW, Role.ADMIN},
               "waste": {Role.OPERATOR, Role.WASTE_CREW, Role.ADMIN}}
    async with api_client(app) as client:
        for role in Role:
            await login_as(client, db, role)
            for probe, roles in allowed.items():
                response = await client.get(f"/probe/{probe}")
                assert response.status_code == (200 if role in roles else 403), (role, probe)
                if response.status_code == 403:
                    assert role.value in response.json()["error"]


async def test_login_as_gives_a_householder_their_own_household(app: FastAPI, db: Database) -> None:
    async with api_client(app) as client:
        user: User = await login_as(client, db, Role.HOUSEHOLDER, household_id="hh-given")
        assert user.household_id == "hh-given"
        assert (await client.get("/auth/me")).json()["household_id"] == "hh-given"


async def test_the_demo_cookie_is_plain_over_http_and_secure_over_https(db: Database, database_url: str,
                                                                         unique: str) -> None:
    demo = create_app(Settings(database_url=database_url,  # type: ignore[arg-type]
                               accounts=AccountsSettings(insecure_localhost=True)), db=db)
    await store.create_user(db, username=f"op-{unique}", password=PASSWORD, role="operator")
    async with api_client(demo) as client:
        plain = await client.post("/auth/login", data={"username": f"op-{unique}", "password": PASSWORD})
        cookie = plain.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=") and "Secure" not in cookie
        assert (await client.get("/auth/me")).status_code == 200  # the cookie works over plain http
        client.cookies.clear()
        client.base_url = httpx.URL("https://testserver")
        ok = await client.post("/auth/login", data={"username": f"op-{unique}", "password": PASSWORD})
        assert ok.status_code == 200 and "Secure" in ok.headers["set-cookie"]


async def test_a_login_forgets_expired_sessions(app: FastAPI, db: Database, unique: str) -> None:
    user = await store.create_user(db, username=f"op-{unique}", password=PASSWORD, role="operator")
    await sessions.open_session(db, user.user_id, ttl=timedelta(seconds=-1))
    async with api_client(app) as client:
        await client.post("/auth/login", data={"username": user.username, "password": PASSWORD})
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1 AND expires_at <= now()",
                             user.user_id) == 0


def test_allow_carries_its_roles_for_the_access_checks() -> None:
    from ops_api.deps import allow

    assert allow(Role.OPERATOR).roles == {Role.OPERATOR, Role.ADMIN}  # type: ignore[attr-defined]
    assert allow().roles == {Role.ADMIN}  # type: ignore[attr-defined]
