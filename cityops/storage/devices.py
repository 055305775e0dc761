"""The device registry as ingest sees it: who may send, and what it last said."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime

from cityops.storage.database import DB_ERRORS, Connection, Database, translate_query_error


@dataclass(frozen=True)
class RegisteredDevice:
    device_id: str
    kind: str
    registered_at: datetime
    retired: bool


@dataclass(frozen=True)
class DeviceState:
    """What one flush learnt about a device; None leaves a field as it was."""

    device_id: str
    last_seen: datetime | None = None
    battery_v: float | None = None
    firmware_version: str | None = None
    last_seq: int | None = None
    online: bool | None = None


async def registered_devices(db: Database, device_ids: Sequence[str] | None = None
                             ) -> list[RegisteredDevice]:
    rows = await db.fetch(
        "SELECT device_id, kind, registered_at, status = 'retired' AS retired FROM devices "
        "WHERE $1::text[] IS NULL OR device_id = ANY($1)",
        list(device_ids) if device_ids is not None else None)
    return [RegisteredDevice(**dict(row)) for row in rows]


# The rows an update will touch, locked in one order (PostgreSQL sorts, then locks): see below.
_LOCK_IN_ORDER = ("SELECT 1 FROM devices WHERE device_id = ANY($1::text[]) "
                  "ORDER BY device_id FOR NO KEY UPDATE")


async def update_device_states(conn: Connection, states: Sequence[DeviceState], *, locked: bool = False) -> None:
    """Apply many devices' news in one UPDATE; last_seen and last_seq never go back.

    The devices' rows are locked first, in device_id order, in the caller's transaction: the
    UPDATE locks rows in whatever order its plan meets them (a hash join: the table's physical
    order), and two ingest consumers updating overlapping sets of devices in different orders
    could deadlock. (FOR NO KEY UPDATE is the UPDATE's own lock: it blocks no reader and no
    foreign-key check.) `locked`: the caller's transaction already holds them (`lock_devices`)."""
    if not states:
        return
    states = sorted(states, key=lambda s: s.device_id)  # and the UPDATE's nested loop meets them so
    try:
        async with _transaction(conn):
            if not locked:
                await conn.execute(_LOCK_IN_ORDER, [s.device_id for s in states])
            await _apply(conn, states)
    except DB_ERRORS as exc:
        raise translate_query_error(exc) from exc


async def lock_devices(conn: Connection, device_ids: Sequence[str]) -> None:
    """Lock the devices' rows in device_id order until the caller's transaction ends (the lock
    `update_device_states` takes), e.g. before reading what a concurrent writer may change."""
    try:
        await conn.execute(_LOCK_IN_ORDER, list(device_ids))
    except DB_ERRORS as exc:
        raise translate_query_error(exc) from exc


def _transaction(conn: Connection) -> AbstractAsyncContextManager[object]:
    """The caller's transaction when there is one (ingest's commit), else one of our own: a lock
    taken outside a transaction would be gone before the UPDATE."""
    return nullcontext() if conn.is_in_transaction() else conn.transaction()


async def _apply(conn: Connection, states: Sequence[DeviceState]) -> None:
    await conn.execute(
        """
        UPDATE devices AS d SET
            last_seen = greatest(d.last_seen, u.last_seen),
            battery_v = coalesce(u.battery_v, d.battery_v),
            firmware_version = coalesce(u.firmware_version, d.firmware_version),
            last_seq = CASE WHEN u.last_seq IS NULL THEN d.last_seq
                            ELSE greatest(d.last_seq, u.last_seq) END,
            online = coalesce(u.online, d.online),
            online_changed_at = CASE WHEN u.online IS NOT NULL AND u.online IS DISTINCT FROM d.online
                                     THEN now() ELSE d.online_changed_at END
        FROM unnest($1::text[], $2::timestamptz[], $3::real[], $4::text[], $5::bigint[], $6::bool[])
             AS u(device_id, last_seen, battery_v, firmware_version, last_seq, online)
        WHERE d.device_id = u.device_id
        """,
        [s.device_id for s in states], [s.last_seen for s in states], [s.battery_v for s in states],
        [s.firmware_version for s in states], [s.last_seq for s in states], [s.online for s in states])
