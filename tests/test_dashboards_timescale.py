"""The boards on TimescaleDB (PGlite with the extension): every panel's SQL as Grafana sends
it when the data source has `timescaledb: true` ($__timeGroup becomes time_bucket), over
the real continuous aggregates, returns rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cityops.settings import StorageSettings
from cityops.storage import Database, migrate
from dashboards.check import run_boards
from tests.dashboards_helpers import BOARDS, NOW, SQL_QUERIES, seed

pytestmark = pytest.mark.timescale


async def test_every_panel_query_returns_rows_on_timescaledb(timescale_db: Database) -> None:
    await migrate(timescale_db, StorageSettings(timescale="require"))
    assert (await timescale_db.backend(refresh=True)).is_timescale
    if not await timescale_db.fetchval("SELECT count(*) FROM devices WHERE device_id = 'frog-1'"):
        await seed(timescale_db)
    # as Grafana's role (SET LOCAL ROLE: PGlite serves one connection, as its superuser)
    grafana = await timescale_db.fetchval("SELECT role_name FROM db_roles WHERE service = 'grafana'")
    runs = await run_boards(timescale_db, BOARDS, NOW - timedelta(hours=24), NOW + timedelta(minutes=1),
                            timescaledb=True, role=grafana)
    assert len(runs) == len(SQL_QUERIES)
    problems = [f"{r.board}/{r.panel}: {r.error or 'no rows'}\n{r.sql}" for r in runs if not r.ok]
    assert problems == []
    assert any("time_bucket('3600.000s'" in r.sql for r in runs)


async def test_grafanas_role_reads_no_table_on_timescaledb(timescale_db: Database) -> None:
    await migrate(timescale_db, StorageSettings(timescale="require"))
    async with timescale_db.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE cityops_grafana")
        readable = await conn.fetchval("""
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
              AND has_table_privilege(current_user, c.oid, 'SELECT')""")
        views = await conn.fetchval("SELECT count(*) FROM information_schema.views WHERE table_schema = 'reporting'")
    assert (readable, views >= 15) == (0, True)
