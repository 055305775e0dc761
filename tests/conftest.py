"""Fixtures for tests against real services, chosen by environment.

PostgreSQL: CITYOPS_TEST_DATABASE_URL (a server where the role may CREATE DATABASE), else
127.0.0.1:5432 when it answers, else an embedded PostgreSQL from the wheel. Each test
session gets a fresh database, dropped at the end.

Mosquitto: started per session from a generated config on a free port; tests skip with
the reason when no `mosquitto` binary is on PATH.

TimescaleDB conformance tier: PGlite with TimescaleDB under node (tests/timescale/);
skipped with the reason when node or its packages are missing, unless
CITYOPS_TEST_STRICT=1 (CI), where a missing service is a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import asyncpg
import pytest

from cityops.embedded.broker import EmbeddedBroker
from cityops.embedded.postgres import EmbeddedPostgres
from cityops.embedded.process import (
    accepts_connections,
    free_port,
    spawn,
    stop_process,
    wait_for_port,
)
from cityops.settings import StorageSettings
from cityops.storage import Database, migrate

pytest_plugins = ["tests.fixtures"]  # shared fixtures beyond the services (a fresh database, the API)

if TYPE_CHECKING:
    from tests.resources_helpers import World

TIMESCALE_DIR = Path(__file__).parent / "timescale"
STRICT = os.environ.get("CITYOPS_TEST_STRICT") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with the reason; under CITYOPS_TEST_STRICT=1 (CI) a missing service fails instead."""
    if STRICT:
        pytest.fail(f"{reason} (CITYOPS_TEST_STRICT=1)")
    pytest.skip(reason)


def _replace_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A URL on a real PostgreSQL server whose role may create databases."""
    configured = os.environ.get("CITYOPS_TEST_DATABASE_URL")
    if configured:
        yield configured
    elif accepts_connections(5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
    else:
        server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), free_port(), database="postgres",
                                  durable=False)
        async with server:
            yield server.url


@asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"cityops_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _replace_database(admin_url, name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def session_database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh database for this test session (not yet migrated: see `database_url`)."""
    async with scratch_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(db: Database, session_database_url: str) -> str:
    """The session database's URL, migrated (so a test run alone finds the tables)."""
    return session_database_url


@pytest.fixture
async def fresh_database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """An empty database of its own, for tests that migrate from nothing."""
    async with scratch_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
async def db(session_database_url: str) -> AsyncIterator[Database]:
    """The session database, migrated, as the storage layer's Database."""
    async with Database.connect(session_database_url) as database:
        await migrate(database, StorageSettings())
        yield database


@pytest.fixture
def unique() -> str:
    """A short id unique to this test: prefix device ids and topics with it."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic_prefix(unique: str) -> str:
    return f"test/{unique}"


BrokerInstance = EmbeddedBroker  # what the broker fixtures give: .port, .url, .start(), .stop(), .pid


def own_mosquitto(folder: Path, *, persistent: bool = True, extra_config: str = "") -> EmbeddedBroker:
    """A Mosquitto of a test's own (generated config, free port); a skip when there is no binary."""
    if shutil.which("mosquitto") is None:
        skip_or_fail("no `mosquitto` binary on PATH (apt-get install mosquitto)")
    return EmbeddedBroker(folder, free_port(), "mosquitto", persistent=persistent, extra_config=extra_config)


@pytest.fixture(scope="session")
async def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedBroker]:
    """The session's Mosquitto, shared by the tests that need no broker of their own."""
    async with own_mosquitto(tmp_path_factory.mktemp("mosquitto"), persistent=False) as server:
        yield server


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """A persistent Mosquitto of this test's own, which the test may restart."""
    async with own_mosquitto(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def timescale_node() -> Iterator[Path]:
    """The node binary for the TimescaleDB tier, or a skip (a failure where it is required)."""
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is not installed: TimescaleDB conformance tier skipped"
    elif not (TIMESCALE_DIR / "node_modules" / "@unni-craftsman" / "pglite").exists():
        reason = ("PGlite with TimescaleDB is not installed: run `make test` (it runs "
                  "`npm ci --prefix tests/timescale`); TimescaleDB conformance tier skipped")
    if reason:
        skip_or_fail(reason)
    assert node is not None
    yield Path(node)


@asynccontextmanager
async def pglite_server(node: Path, log_dir: Path) -> AsyncIterator[str]:
    """Run tests/timescale/server.mjs on a free port; yield its PostgreSQL URL."""
    port = free_port()
    log_path = log_dir / "pglite.log"
    proc = spawn([str(node), str(TIMESCALE_DIR / "server.mjs"), str(port)], log_path=log_path)
    try:
        await wait_for_port(proc, port, name="PGlite", log_path=log_path, timeout_s=60)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    finally:
        await stop_process(proc, timeout_s=10)


async def pglite_pool(url: str, *session_sql: str) -> asyncpg.Pool:
    """PGlite serves one connection at a time: a pool of one.

    PGlite's RESET ALL (which asyncpg runs when a connection returns to the pool) sets
    search_path to pg_catalog, so each acquire sets it back to public (and runs session_sql)."""

    async def setup(conn: asyncpg.Connection) -> None:
        await conn.execute("SET search_path = public")
        for sql in session_sql:
            await conn.execute(sql)

    pool = await asyncpg.create_pool(url, min_size=1, max_size=1, setup=setup)
    assert pool is not None
    return pool


@pytest.fixture(scope="session")
async def timescale_url(timescale_node: Path, tmp_path_factory: pytest.TempPathFactory
                        ) -> AsyncIterator[str]:
    """A PostgreSQL URL served by PGlite with the TimescaleDB extension available."""
    async with pglite_server(timescale_node, tmp_path_factory.mktemp("pglite")) as url:
        yield url


@pytest.fixture(scope="session")
async def timescale_db(timescale_url: str) -> AsyncIterator[Database]:
    database = Database(await pglite_pool(timescale_url), timescale_url)
    try:
        yield database
    finally:
        database.pool.terminate()  # PGlite does not answer a Terminate message


@pytest.fixture(scope="module")
async def world(postgres_admin_url: str) -> AsyncIterator[World]:
    """A database of the module's own with real gritting and bins runs (tests.resources_helpers)."""
    from tests.resources_helpers import runner_world  # it imports this module: here, not at the top

    async with runner_world(postgres_admin_url) as built:
        yield built
