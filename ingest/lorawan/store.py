"""The LoRaWAN tables (migration 0032), read and written inside the integration's commit.

The registry side of a device (DevEUI, codec, kind, what the integration last learnt of it) is
cached like native ingest's registry (`LorawanRegistry`); its session is its latest row in the
uplink log, read in the commit's transaction after the batch's devices are locked (in
device_id order, the lock native ingest takes to update them), so two integration processes
sharing a device's uplinks take turns: one sees what the other logged, and a duplicate is
never stored twice. Per uplink that is a log row and the readings; lorawan_devices is written
only when what it holds changes (a join, the battery, the server a device is heard through).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from cityops.storage import Database, insert_readings
from cityops.storage.database import DB_ERRORS, Connection, translate_query_error
from cityops.storage.devices import DeviceState, update_device_states
from cityops.storage.readings import insert_dead_letters
from ingest.accept import dead_letter
from ingest.lorawan.accept import LorawanDevice, Plan
from ingest.registry import CachedRegistry
from lorawan.codecs import FieldMapping, parse_mapping
from lorawan.errors import MappingError
from lorawan.frames import SeenUplink, Session

log = logging.getLogger("ingest.lorawan.store")

# our downlinks' ids: ChirpStack's queue item id is one; The Things Stack's correlation id "cityops:<id>" holds one
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

_REGISTRY = (
    "SELECT l.device_id, d.kind, d.registered_at, d.status = 'retired' AS retired, l.dev_eui, l.network_server, "
    "l.codec, l.rejoined_at, l.battery_pct, l.external_power, l.status_at, l.application_id, l.ns_device_id, "
    "l.heard_via FROM lorawan_devices l JOIN devices d ON d.device_id = l.device_id")
# the state lorawan_devices keeps beside the registry's own columns: written when it changes
_LEARNT = ("rejoined_at", "battery_pct", "external_power", "status_at", "application_id", "ns_device_id", "heard_via")


class LorawanRegistry(CachedRegistry[LorawanDevice]):
    """LoRaWAN devices by DevEUI, cached as native ingest's registry is (ingest/registry.py)."""

    def __init__(self, db: Database, refresh_s: float):
        async def load_all() -> dict[str, LorawanDevice]:
            return {row["dev_eui"]: _device(row) for row in await db.fetch(_REGISTRY)}

        async def load_some(dev_euis: Sequence[str]) -> dict[str, LorawanDevice]:
            rows = await db.fetch(_REGISTRY + " WHERE l.dev_eui = ANY($1::text[])", list(dev_euis))
            return {row["dev_eui"]: _device(row) for row in rows}
        super().__init__(refresh_s, load_all, load_some)

    def learnt(self, devices: Iterable[LorawanDevice]) -> None:
        """What a commit wrote: the cache holds it too."""
        for device in devices:
            self.remember(device.dev_eui, device)


def _device(row: asyncpg.Record) -> LorawanDevice:
    return LorawanDevice(**{name: row[name] for name in (
        "device_id", "kind", "registered_at", "retired", "dev_eui", "network_server", "codec", *_LEARNT)})


async def sessions(conn: Connection, device_ids: Sequence[str], window: timedelta) -> dict[str, Session]:
    """Each device's session from its latest logged uplink: address, frame counter, time, and the
    frames missed in the window before it (a late frame may still fill those)."""
    rows = await conn.fetch(
        "SELECT d.id AS device_id, last.dev_addr, last.f_cnt, last.received_at, "
        "(SELECT coalesce(sum(g.gap), 0) FROM lorawan_uplinks g WHERE g.device_id = d.id "
        " AND g.received_at BETWEEN last.received_at - $2::interval AND last.received_at) AS missed "
        "FROM unnest($1::text[]) AS d(id) CROSS JOIN LATERAL (SELECT u.dev_addr, u.f_cnt, u.received_at "
        " FROM lorawan_uplinks u WHERE u.device_id = d.id ORDER BY u.received_at DESC, u.f_cnt DESC LIMIT 1) last",
        list(device_ids), window)
    return {row["device_id"]: Session(dev_addr=row["dev_addr"], last_f_cnt=row["f_cnt"], last_at=row["received_at"],
                                      missed=max(0, int(row["missed"]))) for row in rows}


async def recent_uplinks(conn: Connection, frames: Sequence[tuple[str, int]], start: datetime, end: datetime
                         ) -> list[SeenUplink]:
    """What the log holds that could make the batch's uplinks duplicates: the same (device, frame
    counter) received in [start, end]. (A redelivery carries its deduplicationId and its original
    time, so it is found here too.) Only those rows, through the log's key."""
    rows = await conn.fetch(
        "SELECT u.device_id, u.f_cnt, u.received_at, u.dedup_id FROM lorawan_uplinks u "
        "JOIN unnest($1::text[], $2::bigint[]) AS c(device_id, f_cnt) "
        "ON u.device_id = c.device_id AND u.f_cnt = c.f_cnt WHERE u.received_at BETWEEN $3 AND $4",
        [d for d, _ in frames], [f for _, f in frames], start, end)
    return [SeenUplink(row["device_id"], row["f_cnt"], row["received_at"], row["dedup_id"]) for row in rows]


async def write(conn: Connection, plan: Plan, server: str, before: Mapping[str, LorawanDevice]
                ) -> dict[str, tuple[int, int]]:
    """Everything a plan says, in the caller's transaction; (new, offered) readings per kind.
    `before`: the devices as the batch found them (only what changed is written back)."""
    counts: dict[str, tuple[int, int]] = {}
    try:
        for kind, rows in plan.rows.items():
            if rows:
                counts[kind] = (await insert_readings(conn, kind, rows), len(rows))
        await _log_uplinks(conn, plan, server)
        await insert_dead_letters(conn, [dead_letter(r.topic, r.payload, r.reason, r.device_id, r.arrived)
                                         for r in plan.refused])
        await _write_learnt(conn, [d for eui, d in plan.devices.items() if _changed(before.get(eui), d)])
        await update_device_states(conn, [
            DeviceState(device_id=device_id, last_seen=at, battery_v=plan.battery_v.get(device_id))
            for device_id, at in plan.last_seen.items()], locked=True)  # the commit locked them first
        await _settle(conn, plan)
    except DB_ERRORS as exc:
        raise translate_query_error(exc) from exc
    return counts


def _changed(before: LorawanDevice | None, after: LorawanDevice) -> bool:
    if after is before:  # judge hands back the same object when nothing changed: the usual uplink
        return False
    return before is None or any(getattr(before, name) != getattr(after, name) for name in _LEARNT)


_LOG_COLUMNS = ["device_id", "received_at", "f_cnt", "dedup_id", "network_server", "dev_addr", "f_port", "gateways",
                "rssi", "snr", "gap", "new_session", "readings"]


async def _log_uplinks(conn: Connection, plan: Plan, server: str) -> None:
    """The batch's uplinks into the log by COPY (the fastest way in): none is there already, the
    duplicates were judged under the devices' lock."""
    if plan.uplinks:
        await conn.copy_records_to_table("lorawan_uplinks", columns=_LOG_COLUMNS, records=[
            (u.device_id, u.received_at, u.f_cnt, u.dedup_id, server, u.dev_addr, u.f_port, u.gateways, u.rssi,
             u.snr, u.gap, u.new_session, u.readings) for u in plan.uplinks])


async def _write_learnt(conn: Connection, devices: Sequence[LorawanDevice]) -> None:
    if not devices:
        return
    states = sorted(devices, key=lambda d: d.device_id)
    await conn.execute(
        """
        UPDATE lorawan_devices AS l SET
            rejoined_at = u.rejoined_at, battery_pct = u.battery_pct, external_power = u.external_power,
            status_at = u.status_at, application_id = u.application_id, ns_device_id = u.ns_device_id,
            heard_via = u.heard_via
        FROM unnest($1::text[], $2::timestamptz[], $3::real[], $4::bool[], $5::timestamptz[], $6::text[], $7::text[],
                    $8::text[])
             AS u(device_id, rejoined_at, battery_pct, external_power, status_at, application_id, ns_device_id,
                  heard_via)
        WHERE l.device_id = u.device_id
        """,
        [d.device_id for d in states], [d.rejoined_at for d in states], [d.battery_pct for d in states],
        [d.external_power for d in states], [d.status_at for d in states], [d.application_id for d in states],
        [d.ns_device_id for d in states], [d.heard_via for d in states])


async def _settle(conn: Connection, plan: Plan) -> None:
    for item in plan.settled:
        found = _UUID.search(item.reference)
        if found is None:  # not one of ours (sent from the server's console, say)
            continue
        updated = await conn.fetchval(
            "UPDATE lorawan_downlinks SET state = $3, settled_at = $4 WHERE id = $1::uuid AND device_id = $2 "
            "AND state <> 'acknowledged' RETURNING detail", found.group(), item.device_id, item.state, item.at)
        if updated is not None:
            await conn.execute(
                "INSERT INTO device_events (device_id, action, detail) VALUES ($1, 'downlink', $2::jsonb)",
                item.device_id, json.dumps({**json.loads(updated), "id": found.group(), "state": item.state}))


# --- mappings ---------------------------------------------------------------------------

async def load_mappings(db: Database) -> dict[str, FieldMapping]:
    """Every stored mapping by profile; one that no longer parses is skipped with an error logged."""
    mappings = {}
    for row in await db.fetch("SELECT profile, mapping FROM lorawan_mappings"):
        try:
            mappings[row["profile"]] = parse_mapping(row["mapping"])
        except MappingError as exc:
            log.error("mapping for profile %r is not usable: %s", row["profile"], exc)
    return mappings


async def set_mapping(db: Database, profile: str, mapping: dict[str, Any]) -> FieldMapping:
    parsed = parse_mapping(mapping)  # refused before it is stored
    await db.execute("INSERT INTO lorawan_mappings (profile, mapping) VALUES ($1, $2::jsonb) ON CONFLICT (profile) "
                     "DO UPDATE SET mapping = EXCLUDED.mapping, updated_at = now()", profile, json.dumps(mapping))
    return parsed


async def list_mappings(db: Database) -> dict[str, dict[str, Any]]:
    return {r["profile"]: json.loads(r["mapping"]) for r in
            await db.fetch("SELECT profile, mapping FROM lorawan_mappings ORDER BY profile")}


async def delete_mapping(db: Database, profile: str) -> bool:
    return await db.fetchval("DELETE FROM lorawan_mappings WHERE profile = $1 RETURNING true", profile) is not None


async def prune_uplinks(db: Database, keep_for: timedelta) -> int:
    status = await db.execute("DELETE FROM lorawan_uplinks WHERE received_at < now() - $1::interval", keep_for)
    return int(status.rsplit(" ", 1)[-1])


def new_downlink_id() -> str:
    return str(uuid.uuid4())
