"""The health page and JSON against the real database and broker."""

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityops.embedded.process import free_port
from cityops.settings import load_settings
from cityops.storage import Database
from ops_api import create_app
from tests.conftest import BrokerInstance


async def get(app, path: str) -> httpx.Response:
    async with LifespanManager(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get(path)


async def test_health_is_ok_when_database_and_broker_answer(db: Database, mosquitto: BrokerInstance) -> None:
    app = create_app(load_settings(), db=db, mqtt_url=mosquitto.url)
    response = await get(app, "/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["pending_migrations"] == 0
    assert body["database"]["backend"].startswith("plain PostgreSQL")
    assert set(body["database"]["readings"]) == {"frog", "road", "bin"}


async def test_health_is_degraded_with_a_reason_when_the_broker_is_down(db: Database) -> None:
    app = create_app(load_settings(), db=db, mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    response = await get(app, "/health")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
    assert "cannot connect" in response.json()["broker"]["error"]


async def test_the_status_page_shows_each_service(db: Database, mosquitto: BrokerInstance) -> None:
    app = create_app(load_settings(), db=db, mqtt_url=mosquitto.url)
    response = await get(app, "/")
    assert response.status_code == 200
    assert "<th>database</th>" in response.text and "<th>broker</th>" in response.text
    assert "DOWN" not in response.text


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
async def test_api_documentation_is_served(db: Database, path: str) -> None:
    response = await get(create_app(load_settings(), db=db), path)
    assert response.status_code == 200
