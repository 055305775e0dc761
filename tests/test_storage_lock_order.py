"""Two writers committing overlapping batches at the same time never deadlock (issue 28).

Two ingest consumers can be handed the same readings (a killed consumer's resent window goes
to the other one) in different orders, and commit them at the same moment. Each transaction
takes the unique index's lock on every key it inserts, and the devices' rows it updates; taken
in different orders, each could hold what the other waits for, and PostgreSQL would end one
with `deadlock detected` (seen once in `cityops bench recovery`, docs/ingest.md). The storage
layer writes and locks in key order (cityops/storage/readings.py, devices.py), so one waits
for the other instead.

Against the real PostgreSQL: each round two transactions write overlapping batches, one in
key order and one reversed, started together; many rounds, and not one deadlock. Checked when
this was written by undoing each fix: without the sorted insert the readings test deadlocked
within 4 rounds in 3 runs of 3, without the ordered lock the devices test within 15 rounds in 3
of 3 (the ingest-like test then passes: the sorted readings already make the second commit wait
for the first before it reaches the devices).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cityops.errors import StorageError
from cityops.storage import Database, insert_readings
from cityops.storage.database import Connection
from cityops.storage.devices import DeviceState, update_device_states
from tests.ingest_helpers import devices

ROUNDS = 40
DEVICES = 12
PER_DEVICE = 25            # readings per device and round: 300 keys a round
DEADLOCK = "40P01"         # deadlock_detected
T0 = datetime(2026, 1, 5, tzinfo=UTC)

Write = Callable[[Connection], Awaitable[Any]]


async def city_size_plan(conn: Connection) -> None:
    """The plan a registry of thousands of devices gets for the devices' UPDATE: a nested loop
    meeting the rows in the order given (on a test's small table PostgreSQL would hash-join and
    meet them in the table's order, the same for both writers, hiding the problem)."""
    for setting in ("enable_hashjoin", "enable_mergejoin", "enable_seqscan"):
        await conn.execute(f"SET LOCAL {setting} = off")


async def _together(db: Database, first: Write, second: Write) -> None:
    """Both writes in transactions of their own, started at the same moment."""
    async def one(write: Write) -> None:
        async with db.transaction() as conn:
            await write(conn)

    for outcome in await asyncio.gather(one(first), one(second), return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


async def _rounds(db: Database, writes: Callable[[int], tuple[Write, Write]]) -> None:
    for n in range(ROUNDS):
        first, second = writes(n)
        try:
            await _together(db, first, second)
        except StorageError as exc:
            if exc.sqlstate == DEADLOCK:
                raise AssertionError(f"round {n + 1} of {ROUNDS}: two overlapping writers deadlocked: {exc}") from exc
            raise


def _rows(ids: list[str], n: int) -> list[tuple[Any, ...]]:
    """Round n's readings, in key order: new timestamps every round, so the keys are not yet stored."""
    start = T0 + timedelta(minutes=5 * PER_DEVICE * n)
    return [(d, start + timedelta(minutes=5 * i), 18.0, 60.0) for d in ids for i in range(PER_DEVICE)]


def _states(ids: list[str], n: int) -> list[DeviceState]:
    seen = T0 + timedelta(minutes=5 * PER_DEVICE * (n + 1))
    return [DeviceState(d, last_seen=seen, battery_v=3.7 - 0.001 * n, last_seq=n) for d in ids]


async def test_overlapping_reading_batches_in_different_orders_never_deadlock(db: Database, unique: str) -> None:
    ids = await devices(db, unique, DEVICES)

    def writes(n: int) -> tuple[Write, Write]:
        rows = _rows(ids, n)
        third = len(rows) // 3
        ahead, behind = rows[:2 * third], rows[third:][::-1]   # a third in common, met from both ends

        async def first(conn: Connection) -> int:
            return await insert_readings(conn, "frog", ahead)

        async def second(conn: Connection) -> int:
            return await insert_readings(conn, "frog", behind)
        return first, second

    await _rounds(db, writes)
    stored = await db.fetchval("SELECT count(*) FROM frog_readings WHERE device_id = ANY($1)", ids)
    assert stored == ROUNDS * DEVICES * PER_DEVICE  # every key once


async def test_overlapping_device_updates_in_different_orders_never_deadlock(db: Database, unique: str) -> None:
    ids = await devices(db, unique, DEVICES)

    def writes(n: int) -> tuple[Write, Write]:
        states = _states(ids, n)

        async def first(conn: Connection) -> None:
            await city_size_plan(conn)
            await update_device_states(conn, states)

        async def second(conn: Connection) -> None:
            await city_size_plan(conn)
            await update_device_states(conn, states[::-1])
        return first, second

    await _rounds(db, writes)
    last = await db.fetch("SELECT last_seq, last_seen FROM devices WHERE device_id = ANY($1)", ids)
    assert {(r["last_seq"], r["last_seen"]) for r in last} == {(ROUNDS - 1, _states(ids, ROUNDS - 1)[0].last_seen)}


async def test_two_commits_as_ingest_makes_them_never_deadlock(db: Database, unique: str) -> None:
    """Readings, then the devices' news, in one transaction (ingest/service.py's commit)."""
    ids = await devices(db, unique, DEVICES)

    def writes(n: int) -> tuple[Write, Write]:
        rows, states = _rows(ids, n), _states(ids, n)

        async def first(conn: Connection) -> None:
            await city_size_plan(conn)
            await insert_readings(conn, "frog", rows)
            await update_device_states(conn, states)

        async def second(conn: Connection) -> None:
            await city_size_plan(conn)
            await insert_readings(conn, "frog", rows[::-1])
            await update_device_states(conn, states[::-1])
        return first, second

    await _rounds(db, writes)
    stored = await db.fetchval("SELECT count(*) FROM frog_readings WHERE device_id = ANY($1)", ids)
    assert stored == ROUNDS * DEVICES * PER_DEVICE
