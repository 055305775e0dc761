"""Fixtures many test modules share, loaded for every test by `pytest_plugins` in conftest.py
(the services themselves, PostgreSQL and Mosquitto, are conftest.py's). A module that needs
a variant defines a fixture of the same name, which takes precedence there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cityops.settings import StorageSettings
from cityops.storage import Database, migrate


@pytest.fixture
async def fresh_db(fresh_database_url: str) -> AsyncIterator[Database]:
    """A migrated database of this test's own (for tests that count every row)."""
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, StorageSettings())
        yield db
