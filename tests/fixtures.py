"""Fixtures many test modules share, loaded for every test by `pytest_plugins` in conftest.py
(the services themselves, PostgreSQL and Mosquitto, and the seeded `world`, are conftest.py's).

A module that needs a variant gives it a name of its own that says what differs (e.g.
`accounts_app` in tests/test_api_accounts.py), rather than redefining a shared name: a
redefined fixture means one thing in one module and another next door.

The operations API, in process (drive it with tests.api_helpers.api_client or serving):

    app         over the session database `db` (shared, migrated; the app does not close it),
                default settings: a test makes its own users and rows with unique ids;
    world_app   over `world`'s database of real gritting and bins runs, once per module (a
                module that redefines `world` with more seeded in gets the API over that).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from cityops.settings import Settings, StorageSettings
from cityops.storage import Database, migrate

if TYPE_CHECKING:
    from tests.resources_helpers import World


@pytest.fixture
async def fresh_db(fresh_database_url: str) -> AsyncIterator[Database]:
    """A migrated database of this test's own (for tests that count every row)."""
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, StorageSettings())
        yield db


@pytest.fixture
def app(db: Database, database_url: str) -> FastAPI:
    """The operations API over the session database, default settings."""
    from ops_api.app import create_app  # the API only for the tests that ask for it

    return create_app(Settings(database_url=database_url), db=db)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world_app(world: World) -> FastAPI:
    """The operations API over `world`'s database (its gritting and bins runs), per module."""
    from ops_api.app import create_app

    return create_app(Settings(database_url=world.url), db=world.db)  # type: ignore[arg-type]
