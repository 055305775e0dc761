"""Issue 18, part 4: the attacks on the API, each run against the real API over HTTP (uvicorn
on a real port, as `cityops api` runs it) and the real PostgreSQL, and each counted.

- a parallel burst of wrong passwords for one user reaches argon2 at most `login_max_failures` times;
- IPv6 addresses from one /64 share one budget; another /64 has its own;
- X-Forwarded-For / -Proto are believed from trusted proxies only; behind one, clients have
  budgets of their own and the cookie stays Secure;
- guessing at `admin` delays the next attempt (bounded), never locks the real admin out;
- a cross-site POST / PATCH / DELETE to every unsafe route is 403; same-origin and bearer clients work;
- bodies over the limit are 413 (anonymous routes: 8 KiB; elsewhere 1 MiB), also when chunked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from cityops.settings import AccountsSettings, ApiSettings, Settings
from cityops.storage import Database
from ops_api.access import api_routes
from ops_api.accounts import store
from ops_api.accounts.roles import Role
from ops_api.accounts.sessions import open_session
from ops_api.app import create_app
from ops_api.deps import SECURE_SESSION_COOKIE, SESSION_COOKIE
from tests.api_helpers import make_user, serving

PASSWORD = "correct horse battery"
EVIL = "https://evil.example"


def make_settings(database_url: str, *, api: dict[str, object] | None = None, **accounts: object) -> Settings:
    return Settings(database_url=database_url,  # type: ignore[arg-type]
                    api=ApiSettings(**{"trusted_proxies": ["127.0.0.1/32"], **(api or {})}),  # type: ignore[arg-type]
                    accounts=AccountsSettings(**accounts))  # type: ignore[arg-type]


@pytest.fixture
async def http(request: pytest.FixtureRequest, db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API served on a real port, with the accounts settings a test gives by
    `@configured(...)` (and `api={...}` for ApiSettings)."""
    app = create_app(make_settings(database_url, **getattr(request, "param", {})), db=db)
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=60) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def configured(**settings: object) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("http", [settings], indirect=True, ids=[""])


def v4() -> str:
    n = uuid.uuid4().int
    return f"198.{n % 200 + 18}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def v6_prefix() -> str:
    """A /64 of the test's own (2001:db8::/32 is for documentation)."""
    n = uuid.uuid4().int
    return f"2001:db8:{n % 0xffff:x}:{(n >> 16) % 0xffff:x}"


async def login(http: httpx.AsyncClient, username: str, password: str, *, client: str | None = None,
                **headers: str) -> httpx.Response:
    if client is not None:
        headers["X-Forwarded-For"] = client
    return await http.post("/auth/login", data={"username": username, "password": password},
                           headers={k.replace("_", "-"): v for k, v in headers.items()})


# --- the login limiter ---------------------------------------------------------------------------

@configured(login_max_failures=5, login_delay=timedelta(minutes=10), login_max_delay=timedelta(minutes=10))
async def test_a_parallel_burst_reaches_argon2_at_most_the_limit(http: httpx.AsyncClient, db: Database,
                                                                 unique: str) -> None:
    user = await store.create_user(db, username=f"op-{unique}", password=PASSWORD, role="operator")
    # 50 wrong passwords at once, each from an address of its own (a botnet): before the fix the
    # check ran before argon2 and the failure was written after it, so all 50 were hashed.
    answers = await asyncio.gather(*(login(http, user.username, f"guess number {n}", client=v4())
                                     for n in range(50)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {401: 5, 429: 45}, statuses  # 401: the password was checked (argon2 ran)
    evaluated = await db.fetchval("SELECT count(*) FROM login_attempts WHERE username = $1", user.username)
    assert evaluated == 5  # one reserved row per attempt that went on to argon2
    assert all(0 < int(a.headers["retry-after"]) <= 600 for a in answers if a.status_code == 429)


@configured(login_max_failures_per_client=3)
async def test_ipv6_addresses_in_one_slash_64_share_a_budget(http: httpx.AsyncClient, db: Database,
                                                             unique: str) -> None:
    prefix, other = v6_prefix(), v6_prefix()
    for n in range(3):  # three names, three addresses, one /64
        failed = await login(http, f"guess{n}-{unique}", "wrong guess!", client=f"{prefix}::{n + 1:x}")
        assert failed.status_code == 401
    rotated = await login(http, f"guess9-{unique}", "wrong guess!", client=f"{prefix}:ffff:1:2:3")
    assert rotated.status_code == 429 and "your address" in rotated.json()["error"]
    assert (await login(http, f"guess9-{unique}", "wrong guess!", client=f"{other}::1")).status_code == 401
    keys = {r["client"] for r in await db.fetch("SELECT client FROM login_attempts WHERE username LIKE $1",
                                                 f"%-{unique}")}
    assert keys == {f"{prefix}::/64", f"{other}::/64"}


@configured(api={"trusted_proxies": ["10.9.9.9/32"]}, login_max_failures_per_client=3,
                      insecure_localhost=True)
async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(http: httpx.AsyncClient, db: Database,
                                                                    unique: str) -> None:
    await db.execute("DELETE FROM login_attempts WHERE client = '127.0.0.1'")  # this peer's budget, fresh
    try:
        for n in range(3):  # a new "address" each time, as a spoofed header
            assert (await login(http, f"guess{n}-{unique}", "wrong guess!", client=v4())).status_code == 401
        spoofed = await login(http, f"guess9-{unique}", "wrong guess!", client=v4())
        assert spoofed.status_code == 429 and "your address" in spoofed.json()["error"]
        assert {r["client"] for r in await db.fetch("SELECT client FROM login_attempts WHERE username LIKE $1",
                                                     f"%-{unique}")} == {"127.0.0.1"}
        await db.execute("DELETE FROM login_attempts WHERE client = '127.0.0.1'")
        user = await store.create_user(db, username=f"op-{unique}", password=PASSWORD, role="operator")
        ok = await login(http, user.username, PASSWORD, X_Forwarded_Proto="https")
        assert ok.status_code == 200 and "Secure" not in ok.headers["set-cookie"]  # not believed: plain http
    finally:
        await db.execute("DELETE FROM login_attempts WHERE client = '127.0.0.1'")


@configured(login_max_failures_per_client=3, insecure_localhost=True)
async def test_behind_a_trusted_proxy_each_client_has_its_own_budget_and_the_cookie_stays_secure(
        http: httpx.AsyncClient, db: Database, unique: str) -> None:
    attacker, neighbour, spoof = v4(), v4(), v4()
    for n in range(3):  # the proxy appends the address it saw; what the client wrote before it is ignored
        chain = f"{spoof}, {attacker}"
        assert (await login(http, f"guess{n}-{unique}", "wrong guess!", client=chain)).status_code == 401
    assert (await login(http, f"guess9-{unique}", "wrong guess!", client=attacker)).status_code == 429
    user = await store.create_user(db, username=f"op-{unique}", password=PASSWORD, role="operator")
    ok = await login(http, user.username, PASSWORD, client=neighbour, X_Forwarded_Proto="https")
    assert ok.status_code == 200  # the attacker's failures are not the neighbour's
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "Secure" in cookie  # TLS ended at the proxy
    clients = {r["client"] for r in await db.fetch("SELECT client FROM login_attempts WHERE username LIKE $1",
                                                    f"%-{unique}")}
    assert clients == {attacker, neighbour}


@configured(login_max_failures=5, login_delay=timedelta(seconds=10), login_max_delay=timedelta(seconds=60),
                      login_max_failures_per_client=1000)
async def test_guessing_at_admin_delays_but_never_locks_the_real_admin_out(http: httpx.AsyncClient, db: Database,
                                                                          unique: str) -> None:
    admin = await store.create_user(db, username=f"admin-{unique}", password=PASSWORD, role="admin")
    office = v4()
    assert (await login(http, admin.username, PASSWORD, client=office)).status_code == 200  # a usual address
    # an attacker has guessed all night from many addresses: 500 failures in the window
    await db.execute("INSERT INTO login_attempts (username, client, succeeded, at) "
                     "SELECT $1, '203.0.113.' || (n % 250), false, now() - n * interval '1 second' "
                     "FROM generate_series(1, 500) n", admin.username)
    guesses = await asyncio.gather(*(login(http, admin.username, "another guess", client=v4()) for _ in range(20)))
    assert {g.status_code for g in guesses} == {429}
    assert max(int(g.headers["retry-after"]) for g in guesses) <= 60  # bounded by login_max_delay
    # from a new address the real admin waits that long at most, then gets in
    travelling = v4()
    waiting = await login(http, admin.username, PASSWORD, client=travelling)
    assert waiting.status_code == 429 and int(waiting.headers["retry-after"]) <= 60
    # from the address the admin signed in from before, no wait at all (only that address's own limit)
    assert (await login(http, admin.username, PASSWORD, client=office)).status_code == 200
    await db.execute("INSERT INTO login_attempts (username, client, succeeded) "
                     "SELECT $1, '203.0.113.9', false FROM generate_series(1, 50)", admin.username)
    await db.execute("UPDATE login_attempts SET at = at - interval '60 seconds' WHERE username = $1", admin.username)
    assert (await login(http, admin.username, PASSWORD, client=travelling)).status_code == 200  # 60 s later


# --- cross-site requests -------------------------------------------------------------------------

def unsafe_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every POST, PUT, PATCH and DELETE the app has, path placeholders filled with their names."""
    return sorted({(r.method, r.path.replace("{", "").replace("}", "")) for r in api_routes(app)
                   if r.method not in ("GET", "HEAD", "OPTIONS")})


@configured(insecure_localhost=True)
async def test_cross_site_requests_to_every_unsafe_route_are_refused(http: httpx.AsyncClient, db: Database,
                                                                     unique: str) -> None:
    routes = unsafe_routes(http.app)  # type: ignore[attr-defined]
    assert len(routes) >= 18 and {("POST", "/auth/login"), ("DELETE", "/households/me/diary/entry_id")} <= set(routes)
    admin = await make_user(db, Role.ADMIN)
    http.cookies.set(SESSION_COOKIE, await open_session(db, admin.user_id))  # the victim's browser
    sessions_before = await db.fetchval("SELECT count(*) FROM sessions")
    own_origin = str(http.base_url).rstrip("/")
    attacks = [{"Origin": EVIL}, {"Origin": "null"}, {"Origin": "http://127.0.0.1.evil.example"},
               {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site", "Origin": own_origin}]
    refused = Counter()
    for method, path in routes:
        for headers in attacks:
            response = await http.request(method, path, headers=headers, data={"username": "u", "password": "p"})
            assert response.status_code == 403, (method, path, headers, response.text)
            assert "another site" in response.json()["error"]
            refused[path] += 1
    assert len(refused) == len({p for _, p in routes}) and set(refused.values()) == {len(attacks)}
    assert await db.fetchval("SELECT count(*) FROM sessions") == sessions_before  # no login CSRF, no logout
    # the same requests from this site's own pages go through to the route
    own = {"Origin": own_origin, "Sec-Fetch-Site": "same-origin"}
    read = await http.post("/me/notifications/999999/read", headers=own)
    assert read.status_code == 404
    assert (await http.post("/auth/logout", headers=own)).status_code == 204


async def test_bearer_clients_without_a_cookie_still_work(http: httpx.AsyncClient, db: Database, unique: str) -> None:
    operator = await make_user(db, Role.OPERATOR)
    bearer = {"Authorization": f"Bearer {await open_session(db, operator.user_id)}"}
    made = await http.post("/invitations", json={"household_id": f"house-{unique}"}, headers=bearer)
    assert made.status_code == 201, made.text  # no Origin, no Sec-Fetch-Site: not a browser on another site
    await store.create_user(db, username=f"op-{unique}", password=PASSWORD, role="operator")
    assert (await login(http, f"op-{unique}", PASSWORD, client=v4())).status_code == 200


# --- body sizes ----------------------------------------------------------------------------------

async def test_bodies_over_the_limit_are_413(http: httpx.AsyncClient, db: Database, unique: str) -> None:
    big = "x" * 9000  # over the anonymous routes' 8 KiB
    assert (await login(http, "someone", big, client=v4())).status_code == 413

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"x" * 1000

    streamed = await http.post("/auth/login", content=chunked(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413 and "8192 bytes" in streamed.json()["error"]
    accept = await http.post("/auth/invitations/accept", json={"token": big, "username": "u", "password": big})
    assert accept.status_code == 413
    assert await db.fetchval("SELECT count(*) FROM login_attempts WHERE username = 'someone'") == 0
    operator = await make_user(db, Role.OPERATOR)
    bearer = {"Authorization": f"Bearer {await open_session(db, operator.user_id)}"}
    huge = await http.post("/invitations", json={"household_id": "x" * 1_100_000}, headers=bearer)
    assert huge.status_code == 413  # 1 MiB elsewhere
    medium = await http.post("/invitations", json={"household_id": "x" * 20_000}, headers=bearer)
    assert medium.status_code == 422  # 20 KB is fine for a signed-in route: the route's own check answers


def test_the_secure_cookie_is_the_default(database_url: str) -> None:
    assert not Settings().accounts.insecure_localhost and SECURE_SESSION_COOKIE.startswith("__Host-")
