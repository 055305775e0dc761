"""Run every panel's SQL against a database as Grafana would send it: variables resolved
to `All`, macros expanded for a time range. `cityops dashboards check` and the tests use it.

Each query runs in a read-only transaction with a statement timeout, so a check against a
production database changes nothing and cannot hang.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cityops.errors import StorageError
from cityops.storage import Database
from dashboards.macros import QueryContext, Selection, expand, parse_interval
from dashboards.model import Board, CustomVariable, Panel, QueryVariable, Sql

UNDEFINED_TABLE = "42P01"
# Grafana's interval steps (roughly its roundInterval): $__interval is the smallest that
# keeps a panel near MAX_POINTS points, never below the panel's minimum interval
NICE = tuple(parse_interval(t) for t in ("1s", "5s", "10s", "15s", "30s", "1m", "5m", "10m", "15m", "30m", "1h",
                                          "3h", "6h", "12h", "1d", "7d", "30d"))
MAX_POINTS = 1000


@dataclass(frozen=True)
class PanelRun:
    board: str
    panel: str
    ref_id: str
    sql: str            # as sent
    rows: int
    error: str | None = None
    missing_table: bool = False  # a table from a migration this database does not have yet
    skipped: str | None = None   # why it was not run (a variable without options: no data yet)

    @property
    def ok(self) -> bool:
        return self.error is None and self.rows > 0


def panel_interval(panel: Panel, time_from: datetime, time_to: datetime) -> timedelta:
    floor = parse_interval(panel.min_interval or "1m")
    wanted = (time_to - time_from) / MAX_POINTS
    step = next((n for n in NICE if n >= wanted), NICE[-1])
    return max(step, floor)


async def _fetch(db: Database, sql: str, timeout_s: float, role: str | None = None) -> list[Any]:
    """Rows of `sql`, read-only, as `role` when given (Grafana's: what its data source may read)."""
    async with db.transaction() as conn:
        await conn.execute("SET TRANSACTION READ ONLY")
        await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
        if role:
            await conn.execute(f'SET LOCAL ROLE "{role}"')
        return list(await conn.fetch(sql))


async def variable_selections(db: Database, board: Board, role: str | None = None) -> dict[str, Selection]:
    """Every variable at `All`, as a fresh board opens: all of its options. A variable without
    options (no data yet) is left out; `empty_variables` names them."""
    selections = {}
    for variable in board.variables:
        if isinstance(variable, CustomVariable):
            options = list(variable.values)
        else:
            assert isinstance(variable, QueryVariable)
            options = [str(row[0]) for row in await _fetch(db, variable.sql, 30.0, role)]
        if options:
            selections[variable.name] = Selection.all(options)
    return selections


def uses_variable(sql: str, name: str) -> bool:
    return re.search(rf"\$(?:{name}\b|\{{{name}\b)", sql) is not None


async def run_board(db: Database, board: Board, time_from: datetime, time_to: datetime, *,
                    timescaledb: bool | None = None, timeout_s: float = 30.0, role: str | None = None
                    ) -> list[PanelRun]:
    if timescaledb is None:
        timescaledb = (await db.backend()).is_timescale
    selections = await variable_selections(db, board, role)
    empty = [v.name for v in board.variables if v.name not in selections]
    base = QueryContext(time_from, time_to, timescaledb=timescaledb, variables=selections)
    runs = []
    for panel in board.panels:
        ctx = replace(base, interval=panel_interval(panel, time_from, time_to))
        for i, query in enumerate(panel.queries):
            if not isinstance(query, Sql):
                continue  # Prometheus: not the database's
            ref_id = chr(ord("A") + i)
            unset = [name for name in empty if uses_variable(query.sql, name)]
            if unset:
                runs.append(PanelRun(board.uid, panel.title, ref_id, query.sql, 0,
                                     skipped=f"variable {unset[0]} has no options yet (no data)"))
                continue
            sql = expand(query.sql, ctx)
            try:
                rows = len(await _fetch(db, sql, timeout_s, role))
            except StorageError as exc:
                runs.append(PanelRun(board.uid, panel.title, ref_id, sql, 0, str(exc),
                                     missing_table=exc.sqlstate == UNDEFINED_TABLE))
                continue
            runs.append(PanelRun(board.uid, panel.title, ref_id, sql, rows))
    return runs


async def run_boards(db: Database, boards: Sequence[Board], time_from: datetime, time_to: datetime,
                     *, timescaledb: bool | None = None, role: str | None = None) -> list[PanelRun]:
    runs = []
    for board in boards:
        runs += await run_board(db, board, time_from, time_to, timescaledb=timescaledb, role=role)
    return runs
