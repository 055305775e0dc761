"""The attacker's view of the cases: landlord A cannot see or change landlord B's cases or
homes (404 worded exactly as a missing one, issue 21 point 3), a landlord officer without an
organisation sees nothing, householders and crews cannot reach /cases at all (403: they are
not the routes' roles in ops_api/access.py), and only admins manage landlords and homes."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from cases import lifecycle
from cityops.settings import get_settings
from cityops.storage import Database
from cityops_cli import main as cli
from ops_api.accounts.roles import Role, User
from ops_api.accounts.sessions import open_session
from tests.api_helpers import api_client, make_user

MISSING_CASE = 987_654_321


@dataclass
class Two:
    """Two landlords with a home and an open case each, and an officer each."""

    landlords: tuple[str, str]
    homes: tuple[str, str]
    cases: tuple[int, int]
    officers: tuple[User, User]


async def _landlord_officer(db: Database, landlord_id: str | None) -> User:
    user = await make_user(db, Role.LANDLORD)
    if landlord_id is not None:
        await db.execute("UPDATE users SET landlord_id = $1 WHERE user_id = $2", landlord_id, user.user_id)
    return user


@pytest.fixture
async def two(db: Database, unique: str) -> Two:
    landlords, homes, cases, officers = [], [], [], []
    for side in ("a", "b"):
        landlord, household = f"{unique}{side}", f"hh-{unique}{side}"
        await lifecycle.add_landlord(db, landlord, f"Landlord {side.upper()}", "housing_association", True)
        await lifecycle.put_home(db, household, landlord, f"{side.upper()} Street 1", True, _now())
        cases.append(await lifecycle.open_case(db, household, "council", _now(), category="significant",
                                               reason="mould in the kitchen"))
        landlords.append(landlord)
        homes.append(household)
        officers.append(await _landlord_officer(db, landlord))
    return Two((landlords[0], landlords[1]), (homes[0], homes[1]), (cases[0], cases[1]),
               (officers[0], officers[1]))


def _now() -> datetime:
    return datetime.now(UTC)


async def _as(client: httpx.AsyncClient, db: Database, user: User) -> None:
    client.headers["Authorization"] = f"Bearer {await open_session(db, user.user_id)}"


def _masked(response: httpx.Response, *values: object) -> str:
    text = response.text
    for value in values:
        text = text.replace(str(value), "<id>")
    return text


CASE_CALLS = (
    ("GET", "/cases/{case_id}", None),
    ("POST", "/cases/{case_id}/triage", {"decision": "accept", "category": "emergency", "reason": "take it over"}),
    ("POST", "/cases/{case_id}/events", {"kind": "note", "text": "an intruder's note"}),
    ("POST", "/cases/{case_id}/close", {"reason": "closing someone else's case"}),
)


async def test_landlord_a_cannot_see_or_change_landlord_bs_case(app: FastAPI, db: Database, two: Two) -> None:
    theirs = two.cases[1]
    async with api_client(app) as client:
        await _as(client, db, two.officers[0])
        for method, path, body in CASE_CALLS:
            other = await client.request(method, path.format(case_id=theirs), json=body)
            missing = await client.request(method, path.format(case_id=MISSING_CASE), json=body)
            assert other.status_code == missing.status_code == 404, (path, other.text)
            assert _masked(other, theirs) == _masked(missing, MISSING_CASE)   # nothing says it exists
        listed = (await client.get("/cases")).json()["cases"]
        assert [c["case_id"] for c in listed] == [two.cases[0]]
        assert two.homes[1] not in (await client.get("/cases")).text
        # opening a case on B's home: worded as a home that does not exist
        other = await client.post("/cases", json={"household_id": two.homes[1], "category": "significant",
                                                  "reason": "claiming their home"})
        missing = await client.post("/cases", json={"household_id": "hh-none-at-all", "category": "significant",
                                                    "reason": "claiming their home"})
        assert other.status_code == missing.status_code == 404
        assert _masked(other, two.homes[1]) == _masked(missing, "hh-none-at-all")
        # their own case they work
        own = await client.post(f"/cases/{two.cases[0]}/events", json={"kind": "contact", "how": "phone",
                                                                      "text": "called the tenant"})
        assert own.status_code == 201, own.text
    # and B's case is untouched
    view = await lifecycle.case_view(db, theirs, _now())
    assert view["state"] == "open" and view["category"] == "significant"
    assert [e["kind"] for e in view["timeline"]] == ["opened"]


async def test_a_landlord_officer_without_an_organisation_sees_nothing(app: FastAPI, db: Database,
                                                                       two: Two) -> None:
    async with api_client(app) as client:
        await _as(client, db, await _landlord_officer(db, None))
        assert (await client.get("/cases")).json()["cases"] == []
        assert (await client.get(f"/cases/{two.cases[0]}")).status_code == 404


async def test_council_officers_see_every_landlords_cases(app: FastAPI, db: Database, two: Two) -> None:
    async with api_client(app) as client:
        await _as(client, db, await make_user(db, Role.OPERATOR))
        listed = {c["case_id"] for c in (await client.get("/cases")).json()["cases"]}
        assert set(two.cases) <= listed


@pytest.mark.parametrize("role", [Role.HOUSEHOLDER, Role.GRITTING_CREW, Role.WASTE_CREW])
async def test_householders_and_crews_cannot_reach_the_cases(app: FastAPI, db: Database, two: Two,
                                                             role: Role) -> None:
    async with api_client(app) as client:
        user = await make_user(db, role, household_id=two.homes[0] if role is Role.HOUSEHOLDER else None)
        await _as(client, db, user)
        for method, path, body in (("GET", "/cases", None), *CASE_CALLS):
            response = await client.request(method, path.format(case_id=two.cases[0]), json=body)
            assert response.status_code == 403, (role, path, response.text)


async def test_only_admins_manage_landlords_and_homes(app: FastAPI, db: Database, two: Two, unique: str) -> None:
    async with api_client(app) as client:
        for user in (two.officers[0], await make_user(db, Role.OPERATOR)):
            await _as(client, db, user)
            moved = await client.put(f"/homes/{two.homes[1]}", json={"landlord_id": None, "label": "mine now"})
            assert moved.status_code == 403
            assert (await client.get("/landlords")).status_code == 403
        await _as(client, db, await make_user(db, Role.ADMIN))
        bad = await client.put(f"/homes/{two.homes[1]}", json={"landlord_id": "no-such-landlord"})
        assert bad.status_code == 422 and "landlord_id" in bad.json()["error"]
        new = {"landlord_id": f"{unique}c", "name": "C Lettings", "kind": "private", "social": False}
        assert (await client.post("/landlords", json=new)).status_code == 201
        assert (await client.post("/landlords", json=new)).status_code == 409
        assert f"{unique}c" in (await client.get("/landlords")).text


async def test_a_landlord_follows_the_home_when_it_changes_hands(app: FastAPI, db: Database, two: Two) -> None:
    """A home moved to landlord A (a stock transfer) brings its case to A's officers, away from B's."""
    async with api_client(app) as client:
        await _as(client, db, await make_user(db, Role.ADMIN))
        moved = await client.put(f"/homes/{two.homes[1]}", json={"landlord_id": two.landlords[0],
                                                                 "label": "B Street 1", "social_housing": True})
        assert moved.status_code == 200, moved.text
        await _as(client, db, two.officers[0])
        assert (await client.get(f"/cases/{two.cases[1]}")).status_code == 200
        await _as(client, db, two.officers[1])
        assert (await client.get(f"/cases/{two.cases[1]}")).status_code == 404



async def test_a_landlord_officer_is_added_with_their_organisation_from_the_cli(
        db: Database, database_url: str, unique: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CITYOPS_DATABASE_URL", database_url)
    get_settings.cache_clear()

    async def user_add(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO("a landlord officer's password\n"))
        code = await asyncio.to_thread(cli.main, ["user", "add", *args])
        out, err = capsys.readouterr()
        return code, out + err

    try:
        await lifecycle.add_landlord(db, unique, "Riverside Homes", "housing_association", True)
        code, out = await user_add(f"{unique}-one", "--role", "landlord")
        assert code == 1 and "--landlord: a landlord officer needs the landlord organisation" in out
        code, out = await user_add(f"{unique}-two", "--role", "landlord", "--landlord", f"{unique}-none")
        assert code == 1 and "no landlord" in out
        code, out = await user_add(f"{unique}-three", "--role", "operator", "--landlord", unique)
        assert code == 1 and "only a landlord officer works for a landlord" in out
        code, out = await user_add(f"{unique}-four", "--role", "landlord", "--landlord", unique)
        assert code == 0 and f"created landlord {unique}-four of landlord {unique}" in out, out
        rows = await db.fetch("SELECT username, landlord_id FROM users WHERE username LIKE $1", f"{unique}-%")
        assert [(r["username"], r["landlord_id"]) for r in rows] == [(f"{unique}-four", unique)]

        code = await asyncio.to_thread(cli.main, ["cases", "suggest", "--json"])
        out, _ = capsys.readouterr()
        assert code == 0 and json.loads(out)["days"] == 3   # CasesSettings.suggest_after_days' default
    finally:
        get_settings.cache_clear()


async def test_a_landlord_officer_moved_to_another_role_leaves_their_organisation(
        app: FastAPI, db: Database, two: Two) -> None:
    officer = two.officers[0]
    async with api_client(app) as client:
        await _as(client, db, await make_user(db, Role.ADMIN))
        changed = await client.patch(f"/users/{officer.user_id}", json={"role": "operator"})
        assert changed.status_code == 200, changed.text
    assert await db.fetchval("SELECT landlord_id FROM users WHERE user_id = $1", officer.user_id) is None


async def test_the_users_api_makes_no_landlord_officer_without_an_organisation(
        app: FastAPI, db: Database, unique: str) -> None:
    """A landlord officer with no organisation would see nothing and could not be fixed through
    the API: POST and PATCH /users refuse the role and point to the CLI, which takes it."""
    async with api_client(app) as client:
        await _as(client, db, await make_user(db, Role.ADMIN))
        made = await client.post("/users", json={"username": f"ll-{unique}", "password": "a long password 1",
                                                 "role": "landlord"})
        assert made.status_code == 422 and "--landlord" in made.text
        crew = await make_user(db, Role.WASTE_CREW)
        changed = await client.patch(f"/users/{crew.user_id}", json={"role": "landlord"})
        assert changed.status_code == 422
        assert await db.fetchval("SELECT role FROM users WHERE user_id = $1", crew.user_id) == "waste_crew"
