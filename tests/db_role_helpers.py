"""A Database logged in as one of the migrations' service roles (cityops_ingest, cityops_api, ...)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pydantic import SecretStr

from cityops.storage import Database
from cityops.storage.roles import apply_logins, login_statements, role_url, service_roles

TEST_PASSWORD = "test-role-password"  # the server may not trust local connections


@asynccontextmanager
async def connect_as(owner_url: str, service: str) -> AsyncIterator[Database]:
    """A Database logged in as `service`'s role of this (migrated) database."""
    owner = await asyncpg.connect(owner_url)
    try:
        role = (await service_roles(owner))[service]
        if not await owner.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", role):
            await apply_logins(owner, login_statements({service: role}, {service: SecretStr(TEST_PASSWORD)}))
    finally:
        await owner.close()
    async with Database.connect(role_url(owner_url, role, TEST_PASSWORD)) as db:
        yield db
