"""Bad input, picked by hand: expired and forged tokens, huge date ranges, malformed bodies.
Each is a 401/403/422 with a body that says what is wrong; never a 500."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from cityops.storage import Database
from ops_api.accounts.sessions import open_session
from ops_api.deps import Role
from tests.api_helpers import api_client, login_as, make_user

PROTECTED = ["/auth/me", "/users", "/devices", "/households/me", "/jobs", "/alerts", "/gritting/routes",
             "/bins/priorities"]


async def test_expired_forged_and_garbled_tokens_are_401_with_a_hint(app: FastAPI, db: Database) -> None:
    user = await make_user(db, Role.ADMIN)
    expired = await open_session(db, user.user_id, ttl=timedelta(seconds=-5))
    headers = [{"Authorization": f"Bearer {expired}"}, {"Authorization": "Bearer forged.jwt.looking.thing"},
               {"Authorization": "Bearer " + "A" * 100_000}, {"Authorization": "Bearer  "},
               {"Cookie": "cityops_session=forged"}, {"Authorization": "Digest abc"}]
    async with api_client(app) as client:
        for path in PROTECTED:
            for header in headers:
                response = await client.get(path, headers=header)
                assert response.status_code == 401, (path, header, response.text)
                body = response.json()
                assert body["error"] and body["hint"] and response.headers["www-authenticate"] == "Bearer"


async def test_malformed_bodies_are_422_that_name_the_field(app: FastAPI, db: Database) -> None:
    async with api_client(app) as client:
        await login_as(client, db, Role.ADMIN)
        cases = [("POST", "/users", {"username": "ok-name", "password": "x" * 20, "role": "emperor"}),
                 ("POST", "/users", {"username": "a" * 500, "password": "x" * 20, "role": "operator"}),
                 ("POST", "/users", {"username": "Bad Name!", "password": "x" * 20, "role": "operator"}),
                 ("POST", "/invitations", {"household_id": ""}),
                 ("POST", "/invitations", {"household_id": "has spaces/and slashes"}),
                 ("POST", "/admin/devices", {"device_id": "d1", "kind": "frog", "lon": "NaN", "lat": 51.45}),
                 ("PATCH", "/users/u_x", {"role": "householder", "household_id": 7}),
                 ("POST", "/auth/invitations/accept", {"token": "t"})]
        for method, path, body in cases:
            response = await client.request(method, path, json=body)
            assert response.status_code == 422, (path, body, response.text)
            assert "detail" in response.json() or response.json()["error"]
        raw = await client.post("/users", content=b"{not json", headers={"Content-Type": "application/json"})
        assert raw.status_code == 422
        form = await client.post("/auth/login", data={"username": "x"})  # no password
        assert form.status_code == 422


async def test_huge_date_ranges_are_capped_with_a_clear_message(app: FastAPI, db: Database, unique: str) -> None:
    from devices import registry
    from devices.spec import DeviceSpec

    household = f"hh-{unique}"
    await registry.add_device(db, DeviceSpec(f"{unique}-frog", "frog", -2.59, 51.45, household_id=household))
    async with api_client(app) as client:
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        for params in ({"start": "1900-01-01T00:00:00Z"}, {"start": "2020-01-01", "end": "2020-01-01"},
                       {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}, {"bucket_s": "1"},
                       {"start": "yesterday"}):
            response = await client.get(f"/readings/{unique}-frog", params=params)
            assert response.status_code == 422, (params, response.text)
        history = await client.get("/households/me/history", params={"hours": 10_000_000})
        assert history.status_code == 422


async def test_values_the_database_cannot_hold_are_422_not_503(app: FastAPI, db: Database) -> None:
    """A NUL character or a number past 64 bits reaches PostgreSQL as a data error: the
    request's fault, answered 422 by the one error handler, whichever route it came in by."""
    async with api_client(app) as client:
        await login_as(client, db, Role.ADMIN)
        for url in ("/users?household_id=a%00b", f"/bins/plans/{10**30}/trucks/1",
                    "/bins/priorities?depot_id=x%00"):
            response = await client.get(url)
            assert response.status_code == 422, (url, response.text)
            assert response.json()["hint"]
        named = await client.post("/users", json={"username": "nul-name", "password": "x" * 12, "role": "operator",
                                                  "display_name": "a\u0000b"})
        assert named.status_code == 422 and "NUL" in named.json()["error"]
