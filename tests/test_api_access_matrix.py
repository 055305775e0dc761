"""The authorization matrix: every route in app.routes, as every role and as nobody, against
the table in ops_api/access.py. Nobody gets 401, a role the table leaves out 403, a role it
lets in 2xx, 404 or 422 (never 401/403/5xx). A route missing from the table fails. Then the
household wall: a householder never sees another household's data, and another household's
id in a URL is 404."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from cityops.embedded.broker import EmbeddedBroker
from cityops.settings import DevicesSettings, Settings
from cityops.storage import Database
from devices import registry
from devices.spec import DeviceSpec
from ops_api.access import ACCESS, Access, api_routes, dependency_calls, enforced_roles, undeclared
from ops_api.accounts.roles import Role, User
from ops_api.accounts.sessions import open_session
from ops_api.app import create_app
from ops_api.deps import current_user
from tests.api_helpers import api_client, make_user

ACTORS: tuple[Role | None, ...] = (None, *Role)
ROUTES = sorted((r.method, r.path) for r in api_routes(create_app(Settings())))
MISSING_INT = 987_654_321
MISSING_ID = "nothing-here-1"


@dataclass
class World:
    """Two households with a damp box, readings, an alert and a diary entry each; a user per role."""

    app: FastAPI
    users: dict[Role, User]
    households: tuple[str, str]   # (the householder's own, another's)
    devices: tuple[str, str]
    alerts: tuple[int, int]
    other_user: User

    def values(self, path: str, *, which: str = "own") -> dict[str, str]:
        """Path parameters: the householder's own objects, another household's, or missing ones."""
        i = 1 if which == "other" else 0
        values = {"household_id": self.households[i], "alert_id": str(self.alerts[i]),
                  "device_id": f"none-{uuid.uuid4().hex[:8]}" if path.startswith("/admin/") else self.devices[i],
                  "user_id": self.other_user.user_id, "job_id": str(MISSING_INT), "plan_id": str(MISSING_INT),
                  "truck": "1", "entry_id": str(MISSING_INT), "notification_id": str(MISSING_INT),
                  "run_id": str(MISSING_INT), "case_id": str(MISSING_INT), "photo_id": str(MISSING_INT),
                  "route_id": "no-such-route", "token": "not-a-token", "version": "0.0.0-none"}
        if which == "missing":
            values |= {"household_id": MISSING_ID, "device_id": MISSING_ID, "alert_id": str(MISSING_INT)}
        return values

    def url(self, path: str, *, which: str = "own") -> str:
        return path.format(**self.values(path, which=which))


async def _household(db: Database, tag: str, now: datetime) -> tuple[str, str, int]:
    household, device = f"hh-{tag}", f"{tag}-frog"
    await registry.add_device(db, DeviceSpec(device, "frog", -2.59, 51.45, household_id=household))
    await db.execute("INSERT INTO frog_readings (device_id, ts, air_temp_c, rh_pct) "
                     "SELECT $1, $2::timestamptz - n * interval '10 minutes', 18 + n % 3, 70 + n % 7 "
                     "FROM generate_series(0, 40) n", device, now)
    alert_id: int = await db.fetchval(
        "INSERT INTO alerts (rule, cause, severity, title, device_id, household_id, opened_at, last_firing_at) "
        "VALUES ('damp_risk', $1, 'warning', 'Damp risk high', $2, $3, $4, $4) RETURNING alert_id",
        f"damp:{household}", device, household, now)
    return household, device, alert_id


@pytest.fixture(scope="module")
async def world(db: Database, mosquitto: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory,
                database_url: str) -> World:
    broker_files = tmp_path_factory.mktemp("broker")
    settings = Settings(database_url=database_url,  # type: ignore[arg-type]
                        devices=DevicesSettings(broker_password_file=broker_files / "passwords",
                                                broker_acl_file=broker_files / "acl"))
    app = create_app(settings, db=db, mqtt_url=mosquitto.url)
    tag = f"m{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    own = await _household(db, f"{tag}a", now)
    other = await _household(db, f"{tag}b", now)
    users = {role: await make_user(db, role, household_id=own[0] if role is Role.HOUSEHOLDER else None)
             for role in Role}
    other_user = await make_user(db, Role.HOUSEHOLDER, household_id=other[0])
    # the landlord officer works for an organisation of their own (neither household is its home)
    await db.execute("INSERT INTO landlords (landlord_id, name, kind, social) VALUES ($1, 'Matrix Homes', "
                     "'housing_association', true)", tag)
    await db.execute("UPDATE users SET landlord_id = $1 WHERE user_id = $2", tag, users[Role.LANDLORD].user_id)
    async with api_client(app) as client:
        client.headers["Authorization"] = f"Bearer {await open_session(db, other_user.user_id)}"
        entry = await client.post("/households/me/diary", json={
            "at": (now - timedelta(hours=2)).isoformat(), "activity": "shower", "minutes": 10,
            "note": f"secret note of {other[0]}"})
        assert entry.status_code == 201, entry.text
    return World(app, users, (own[0], other[0]), (own[1], other[1]), (own[2], other[2]), other_user)


@pytest.fixture(scope="module")
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(world.app) as http:
        yield http


async def call(client: httpx.AsyncClient, db: Database, method: str, url: str, user: User | None) -> httpx.Response:
    """One request with a fresh session of the user's (a route like /auth/logout may end it)."""
    headers = {"Authorization": f"Bearer {await open_session(db, user.user_id)}"} if user else {}
    body: dict[str, object] | None = {} if method in ("POST", "PATCH", "PUT") else None
    return await client.request(method, url, headers=headers, json=body)


def test_every_route_is_in_the_access_table() -> None:
    app = create_app(Settings())
    assert undeclared(app) == [], "add these routes to ops_api/access.py ACCESS"
    assert set(ACCESS) <= {(r.method, r.path) for r in api_routes(app)}, "stale entries in ACCESS"


def test_the_role_dependencies_agree_with_the_table() -> None:
    """A route guarded by allow(...) lets through exactly the roles the table names; any other
    route that is not public at least needs a signed-in user (and narrows by role in its code)."""
    for info in api_routes(create_app(Settings())):
        access, enforced = ACCESS[(info.method, info.path)], enforced_roles(info.route)
        if enforced is not None:
            assert enforced == access.roles, (info.method, info.path)
        elif not (access.public or access.device):
            assert current_user in dependency_calls(info.route), (info.method, info.path)


def expected(access: Access, role: Role | None) -> str:
    if access.device:
        return "401"
    if access.public:
        return "any but 401/403/5xx"
    if role is None:
        return "401"
    return "2xx/404/422" if access.allows(role) else "403"


def matches(expectation: str, status: int) -> bool:
    if expectation == "any but 401/403/5xx":
        return status < 500 and status not in (401, 403)
    if expectation == "2xx/404/422":
        return 200 <= status < 300 or status in (404, 422)
    return str(status) == expectation


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_every_role_gets_what_the_table_says(world: World, client: httpx.AsyncClient, db: Database,
                                                  method: str, path: str) -> None:
    access = ACCESS.get((method, path))
    assert access is not None, f"{method} {path} is missing from ops_api/access.py ACCESS"
    wrong = []
    for role in ACTORS:
        response = await call(client, db, method, world.url(path), world.users[role] if role else None)
        want = expected(access, role)
        if not matches(want, response.status_code):
            wrong.append(f"{role.value if role else 'anonymous'}: {response.status_code} (want {want}) "
                         f"{response.text[:200]}")
        elif response.status_code in (401, 403) and not access.device:
            assert response.json()["error"] and response.json()["hint"]
            if response.status_code == 401:
                assert response.headers["www-authenticate"] == "Bearer"
    assert not wrong, f"{method} {path}:\n" + "\n".join(wrong)


SCOPED_PARAMS = ("{household_id}", "{device_id}", "{alert_id}")


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if ACCESS[r].household_scoped
                                              and any(p in r[1] for p in SCOPED_PARAMS)],
                         ids=lambda v: str(v))
async def test_another_households_id_in_the_url_is_404(world: World, client: httpx.AsyncClient, db: Database,
                                                      method: str, path: str) -> None:
    """404, worded exactly as for an id that does not exist: nothing says the other household is there."""
    householder = world.users[Role.HOUSEHOLDER]
    other = await call(client, db, method, world.url(path, which="other"), householder)
    missing = await call(client, db, method, world.url(path, which="missing"), householder)
    assert other.status_code == missing.status_code == 404, other.text
    other_ids = (world.households[1], world.devices[1], str(world.alerts[1]))
    masked = other.text
    for value in other_ids:
        masked = masked.replace(value, "<id>")
    assert masked == missing.text.replace(MISSING_ID, "<id>").replace(str(MISSING_INT), "<id>")
    own = await call(client, db, method, world.url(path), householder)
    assert own.status_code == 200, own.text  # and their own is there: the 404 is the wall, not a bug


async def test_a_householder_never_sees_another_households_data(world: World, client: httpx.AsyncClient,
                                                                db: Database) -> None:
    householder = world.users[Role.HOUSEHOLDER]
    seen_own = False
    for method, path in ROUTES:
        access = ACCESS[(method, path)]
        if method != "GET" or not access.allows(Role.HOUSEHOLDER) or access.device:
            continue
        response = await call(client, db, method, world.url(path), householder)
        assert response.status_code < 500, (path, response.text)
        for secret in (world.households[1], world.devices[1], f"secret note of {world.households[1]}"):
            assert secret not in response.text, f"GET {path} shows another household's {secret}"
        seen_own |= world.devices[0] in response.text
    assert seen_own  # the same calls do show the householder's own device


async def test_staff_see_every_household(world: World, client: httpx.AsyncClient, db: Database) -> None:
    response = await call(client, db, "GET", f"/households/{world.households[1]}/diary", world.users[Role.OPERATOR])
    assert response.status_code == 200 and f"secret note of {world.households[1]}" in response.text



async def test_a_landlord_officer_sees_no_household_sensor_or_alert(world: World, client: httpx.AsyncClient,
                                                                   db: Database) -> None:
    """The landlord role reaches its cases (tests/test_cases_access.py), never the council's
    devices, readings, alerts or any household's data: a GET the table lets them call shows
    nothing of either household (neither is their organisation's home)."""
    landlord = world.users[Role.LANDLORD]
    for method, path in ROUTES:
        access = ACCESS[(method, path)]
        if method != "GET" or not access.allows(Role.LANDLORD) or access.public or access.device:
            continue
        response = await call(client, db, method, world.url(path), landlord)
        assert response.status_code < 500, (path, response.text)
        for secret in (*world.households, *world.devices):
            assert secret not in response.text, f"GET {path} shows a landlord officer {secret}"
