"""The embedded PostgreSQL from the wheel: starts, keeps its data across a restart."""

from datetime import UTC, datetime

import asyncpg
import pytest

from cityops.embedded.postgres import EmbeddedPostgres
from cityops.embedded.process import accepts_connections, free_port
from cityops.errors import EmbeddedServiceError

pytestmark = pytest.mark.embedded


async def test_the_embedded_database_keeps_its_data_across_a_restart(tmp_path) -> None:
    server = EmbeddedPostgres(tmp_path, free_port())
    async with server:
        conn = await asyncpg.connect(server.url)
        await conn.execute("CREATE TABLE kept (at timestamptz, note text)")
        await conn.execute("INSERT INTO kept VALUES ($1, 'before restart')", datetime(2025, 1, 1, tzinfo=UTC))
        await conn.close()
    assert not accepts_connections(server.port)

    async with server:
        conn = await asyncpg.connect(server.url)
        assert await conn.fetchval("SELECT note FROM kept") == "before restart"
        await conn.close()


async def test_a_port_in_use_is_a_clear_error(tmp_path) -> None:
    first = EmbeddedPostgres(tmp_path / "a", free_port())
    async with first:
        with pytest.raises(EmbeddedServiceError, match="already in use") as caught:
            await EmbeddedPostgres(tmp_path / "b", first.port).start()
    assert "CITYOPS_EMBEDDED__POSTGRES_PORT" in caught.value.hint


async def test_a_stray_data_directory_is_not_overwritten(tmp_path) -> None:
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "something.txt").write_text("not a database")
    with pytest.raises(EmbeddedServiceError, match="not a PostgreSQL data directory"):
        await EmbeddedPostgres(tmp_path, free_port()).start()
    assert (tmp_path / "postgres" / "something.txt").read_text() == "not a database"
