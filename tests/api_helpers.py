"""Helpers for API tests: the app in-process (ASGI transport, lifespan run) and signed-in users.

The `app` fixture (tests/fixtures.py: the API over the session's migrated `db`, shared; the
app does not close it; `world_app` over the seeded `world`):

    async def test_something(app: FastAPI, db: Database) -> None:
        async with api_client(app) as client:
            user = await login_as(client, db, Role.HOUSEHOLDER, household_id="hh-1")
            assert (await client.get("/auth/me")).json()["user_id"] == user.user_id

`login_as` creates a fresh user (unique username, no password: it opens a session directly,
skipping the slow password hash) and sets `Authorization: Bearer <token>` on the client.
A householder made here has been a member of their household since ALWAYS (the readings a
test stored before making them are theirs); tenancy tests pass `member_since` themselves.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from cityops.embedded.process import free_port
from cityops.serve import server_config
from cityops.storage import Database
from ops_api.accounts.roles import Role, User
from ops_api.accounts.sessions import open_session
from ops_api.accounts.store import create_user

BASE_URL = "http://testserver"
ALWAYS = datetime(2000, 1, 1, tzinfo=UTC)


def client_address() -> str:
    """A made-up client address of a test's own, so the per-address login limit of one test
    never trips another's (the session database is shared)."""
    n = uuid.uuid4().int
    return f"10.{n % 250 + 1}.{(n >> 8) % 250 + 1}.{(n >> 16) % 250 + 1}"


@asynccontextmanager
async def api_client(app: FastAPI, *, client: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in-process, with its lifespan run around it."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=(client or client_address(), 50000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield http


async def make_user(db: Database, role: Role | str, *, household_id: str | None = None,
                    password: str | None = None, member_since: datetime | None = ALWAYS) -> User:
    """A new user with a unique username; a householder gets a unique household unless given one
    (and a membership from `member_since`; None: from now)."""
    role = Role(role)
    if role is Role.HOUSEHOLDER and household_id is None:
        household_id = f"hh-{uuid.uuid4().hex[:10]}"
    return await create_user(db, username=f"{role.value.replace('_', '-')}-{uuid.uuid4().hex[:10]}",
                             password=password, role=role, household_id=household_id, member_since=member_since)


async def login_as(client: httpx.AsyncClient, db: Database, role: Role | str, *,
                   household_id: str | None = None) -> User:
    """Create a unique user with this role and sign the client in as them (bearer header)."""
    user = await make_user(db, role, household_id=household_id)
    token = await open_session(db, user.user_id)
    client.headers["Authorization"] = f"Bearer {token}"
    return user


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The app served by uvicorn on a free port in this process (a real socket, for clients
    that are not httpx); yields its base URL and stops the server afterwards."""
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))  # as `cityops api` runs it
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
