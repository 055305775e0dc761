"""The health page and JSON against the real database and broker: anonymous callers get a
cached up/down only, staff the details; N requests cost one probe per interval (counted: the
cache's probes, and the broker's TCP connections through a counting proxy)."""

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityops.embedded.process import free_port
from cityops.settings import load_settings
from cityops.storage import Database
from ops_api import create_app
from ops_api.accounts.roles import Role
from ops_api.accounts.sessions import open_session
from ops_api.healthcheck import HealthCache
from tests.api_helpers import make_user, serving
from tests.conftest import BrokerInstance
from tests.tcp_proxy import CuttableProxy


async def get(app, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with LifespanManager(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get(path, headers=headers)


async def staff_headers(db: Database, role: Role = Role.OPERATOR) -> dict[str, str]:
    user = await make_user(db, role)
    return {"Authorization": f"Bearer {await open_session(db, user.user_id)}"}


class CountingProxy(CuttableProxy):
    """Forwards to the broker and counts the connections made through it."""
    connections = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await super()._accept(reader, writer)


async def test_anonymous_health_is_up_or_down_only(db: Database, mosquitto: BrokerInstance) -> None:
    app = create_app(load_settings(), db=db, mqtt_url=mosquitto.url)
    response = await get(app, "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}  # no hosts, user names, versions or migrations
    page = await get(app, "/")
    assert page.status_code == 200 and "<b>ok</b>" in page.text
    for secret in ("postgresql", "mqtt://", "migrations", "127.0.0.1", "<th>database</th>"):
        assert secret not in page.text and secret not in response.text


async def test_staff_see_the_details(db: Database, mosquitto: BrokerInstance) -> None:
    app = create_app(load_settings(), db=db, mqtt_url=mosquitto.url)
    body = (await get(app, "/health", await staff_headers(db))).json()
    assert body["status"] == "ok" and body["database"]["pending_migrations"] == 0
    assert body["database"]["backend"].startswith(("plain PostgreSQL", "TimescaleDB")) and body["broker"]["ok"] is True
    page = await get(app, "/", await staff_headers(db, Role.ADMIN))
    assert "<th>database</th>" in page.text and "<th>broker</th>" in page.text and "DOWN" not in page.text
    crew = (await get(app, "/health", await staff_headers(db, Role.GRITTING_CREW))).json()
    assert crew == {"status": "ok"}  # signed in is not enough: operators and admins only


async def test_health_is_degraded_with_a_reason_for_staff_when_the_broker_is_down(db: Database) -> None:
    app = create_app(load_settings(), db=db, mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    anonymous = await get(app, "/health")
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "degraded"}
    staff = await get(app, "/health", await staff_headers(db))
    assert staff.status_code == 503 and staff.json()["broker"]["ok"] is False
    assert "cannot connect" in staff.json()["broker"]["error"]


async def test_a_burst_of_requests_costs_one_probe_per_interval(db: Database, mosquitto: BrokerInstance) -> None:
    async with CountingProxy("127.0.0.1", mosquitto.port) as broker:
        app = create_app(load_settings(), db=db, mqtt_url=f"mqtt://127.0.0.1:{broker.port}")
        async with serving(app) as base, httpx.AsyncClient(base_url=base) as http:
            cache: HealthCache = app.state.health
            now = [1000.0]
            cache.clock = lambda: now[0]  # the interval passes when the test says so

            async def burst() -> list[int]:
                answers = await asyncio.gather(*(http.get(p) for p in ["/health", "/"] * 25))
                return [a.status_code for a in answers]

            assert await burst() == [200] * 50
            assert (cache.probes, broker.connections) == (1, 1)
            now[0] += cache.ttl_s - 0.01  # still fresh
            assert await burst() == [200] * 50
            assert (cache.probes, broker.connections) == (1, 1)
            now[0] += 0.02  # stale: the next burst shares one new probe
            assert await burst() == [200] * 50
            assert (cache.probes, broker.connections) == (2, 2)
            staff = await http.get("/health", headers=await staff_headers(db))
            assert staff.json()["broker"]["ok"] is True and cache.probes == 2  # staff read the same probe


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
async def test_api_documentation_is_served(db: Database, path: str) -> None:
    response = await get(create_app(load_settings(), db=db), path)
    assert response.status_code == 200
