"""The registry in the database: add, update, move, rotate, retire, list, show.

Thin adapter over `spec` (the rules) and `secrets` (the hashes). Every change runs in one
transaction with its audit row in `device_events`, so nothing is ever half-created.
Bringing the broker in line afterwards is the caller's job (`broker_sync.apply_to_broker`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from cityops.storage import Database
from cityops.storage.database import Connection
from devices.area import CouncilArea
from devices.errors import DeviceRetired, DuplicateDevice, InvalidField, UnknownDevice
from devices.secrets import bcrypt_secret, hash_secret, new_secret, verify_secret
from devices.spec import DeviceSpec, moved, validate

log = logging.getLogger("devices.registry")

SERVICE_ACCOUNTS = ("ingest", "alerts", "releases", "api")
_COLUMNS = ("device_id, kind, lon, lat, household_id, road_segment_id, mobile, bin_depth_mm, sensor_height_mm, "
            "sensor_type, calibration, sample_interval_s")
# a device's spec as one row: the devices table's columns and, for a LoRaWAN device, lorawan_devices'
_SPEC = (", ".join(f"d.{name.strip()}" for name in _COLUMNS.split(","))
         + ", l.dev_eui AS lorawan_dev_eui, l.network_server, l.codec")
_FROM = "devices d LEFT JOIN lorawan_devices l ON l.device_id = d.device_id"


@dataclass(frozen=True)
class DeviceRecord:
    spec: DeviceSpec
    status: str
    registered_at: datetime
    last_seen: datetime | None
    online: bool | None
    battery_v: float | None
    firmware_version: str | None
    has_secret: bool

    def as_json(self) -> dict[str, Any]:
        out = {**asdict(self.spec), **{k: v for k, v in asdict(self).items() if k != "spec"}}
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in out.items()}


@dataclass(frozen=True)
class Provisioned:
    """A device (or service account) and its secret, which is shown this once."""

    name: str
    secret: str


def _spec_args(spec: DeviceSpec) -> tuple[Any, ...]:
    return (spec.device_id, spec.kind, spec.lon, spec.lat, spec.household_id, spec.road_segment_id, spec.mobile,
            spec.bin_depth_mm, spec.sensor_height_mm, spec.sensor_type, json.dumps(spec.calibration),
            spec.sample_interval_s)


async def _write_lorawan(conn: Connection, spec: DeviceSpec) -> None:
    """A LoRaWAN device's DevEUI, network server and codec; a DevEUI another device holds is refused."""
    holder = await conn.fetchval("SELECT device_id FROM lorawan_devices WHERE dev_eui = $1 AND device_id <> $2",
                                 spec.lorawan_dev_eui, spec.device_id)
    if holder is not None:
        raise InvalidField("lorawan_dev_eui", f"DevEUI {spec.lorawan_dev_eui} is registered to {holder} (a "
                                              "retired device keeps its DevEUI: give this one a new entry only "
                                              "if the hardware changed)")
    try:
        await conn.execute(
            "INSERT INTO lorawan_devices (device_id, dev_eui, network_server, codec) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (device_id) DO UPDATE SET dev_eui = EXCLUDED.dev_eui, "
            "network_server = EXCLUDED.network_server, codec = EXCLUDED.codec",
            spec.device_id, spec.lorawan_dev_eui, spec.network_server, spec.codec)
    except asyncpg.UniqueViolationError:  # taken by someone else since the check
        raise InvalidField("lorawan_dev_eui", f"DevEUI {spec.lorawan_dev_eui} is registered to another device") \
            from None


async def _event(conn: Connection, device_id: str, action: str, detail: dict[str, Any] | None = None) -> None:
    await conn.execute("INSERT INTO device_events (device_id, action, detail) VALUES ($1, $2, $3::jsonb)",
                       device_id, action, json.dumps(detail or {}))


async def _hashed(conn: Connection, secrets: Sequence[str]) -> list[str]:
    """Each secret's `$7$` hash, its bcrypt partner kept for the NATS cluster (migration 0026)."""
    pairs = [(hash_secret(secret), bcrypt_secret(secret)) for secret in secrets]
    await conn.executemany("INSERT INTO secret_bcrypt_hashes (secret_hash, bcrypt_hash) VALUES ($1, $2) "
                           "ON CONFLICT DO NOTHING", pairs)
    return [pbkdf2 for pbkdf2, _ in pairs]


async def insert_devices(conn: Connection, specs: Sequence[DeviceSpec]) -> list[Provisioned]:
    """Insert validated specs on an open transaction; a taken id raises. Each native device gets a
    fresh secret (returned); a LoRaWAN device gets none: it never connects to the broker."""
    taken = await conn.fetch("SELECT device_id FROM devices WHERE device_id = ANY($1)",
                             [s.device_id for s in specs])
    if taken:
        raise DuplicateDevice(taken[0]["device_id"])
    issued = []
    for spec in specs:
        try:
            await conn.execute(f"INSERT INTO devices ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                               "$10, $11::jsonb, $12)", *_spec_args(spec))
        except asyncpg.UniqueViolationError:  # registered by someone else since the check
            raise DuplicateDevice(spec.device_id) from None
        if spec.is_lorawan:
            await _write_lorawan(conn, spec)
            await _event(conn, spec.device_id, "added", {"kind": spec.kind, "lorawan_dev_eui": spec.lorawan_dev_eui,
                                                         "codec": spec.codec})
            continue
        secret = new_secret()
        [hashed] = await _hashed(conn, [secret])
        await conn.execute("INSERT INTO device_secrets (device_id, secret_hash) VALUES ($1, $2)",
                           spec.device_id, hashed)
        await _event(conn, spec.device_id, "added", {"kind": spec.kind})
        issued.append(Provisioned(spec.device_id, secret))
    return issued


async def add_device(db: Database, spec: DeviceSpec) -> Provisioned | None:
    """Register a device; its secret (None for a LoRaWAN device, which has none)."""
    async with db.transaction() as conn:
        issued = await insert_devices(conn, [spec])
    log.info("added %s (%s%s)", spec.device_id, spec.kind, ", LoRaWAN" if spec.is_lorawan else "")
    return issued[0] if issued else None


async def get_device(db: Database, device_id: str) -> DeviceRecord:
    rows = await list_devices(db, device_ids=[device_id], include_retired=True)
    if not rows:
        raise UnknownDevice(device_id)
    return rows[0]


async def list_devices(db: Database, *, kind: str | None = None, include_retired: bool = False,
                       device_ids: Sequence[str] | None = None) -> list[DeviceRecord]:
    rows = await db.fetch(
        f"SELECT {_SPEC}, status, registered_at, last_seen, online, battery_v, firmware_version, "
        "EXISTS (SELECT 1 FROM device_secrets s WHERE s.device_id = d.device_id) AS has_secret "
        f"FROM {_FROM} WHERE ($1::text IS NULL OR kind = $1) AND ($2 OR status = 'active') "
        "AND ($3::text[] IS NULL OR d.device_id = ANY($3)) ORDER BY d.device_id",
        kind, include_retired, list(device_ids) if device_ids is not None else None)
    return [_record(row) for row in rows]


def _split_spec(row: asyncpg.Record) -> tuple[DeviceSpec, dict[str, Any]]:
    """The spec columns of a row as a DeviceSpec, and the other columns."""
    values = dict(row)
    spec_values = {k: values.pop(k) for k in list(values) if k in DeviceSpec.__dataclass_fields__}
    spec_values["calibration"] = json.loads(spec_values["calibration"])
    return DeviceSpec(**spec_values), values


def _record(row: asyncpg.Record) -> DeviceRecord:
    spec, rest = _split_spec(row)
    return DeviceRecord(spec=spec, **rest)


async def _active(conn: Connection, device_id: str) -> DeviceSpec:
    row = await conn.fetchrow(f"SELECT {_SPEC}, status FROM {_FROM} WHERE d.device_id = $1 FOR UPDATE OF d",
                              device_id)
    if row is None:
        raise UnknownDevice(device_id)
    if row["status"] == "retired":
        raise DeviceRetired(device_id)
    return _split_spec(row)[0]


async def _write_spec(conn: Connection, spec: DeviceSpec) -> None:
    await conn.execute(
        "UPDATE devices SET kind = $2, lon = $3, lat = $4, household_id = $5, road_segment_id = $6, mobile = $7, "
        "bin_depth_mm = $8, sensor_height_mm = $9, sensor_type = $10, calibration = $11::jsonb, "
        "sample_interval_s = $12 WHERE device_id = $1", *_spec_args(spec))
    if spec.is_lorawan:
        await _write_lorawan(conn, spec)


async def update_device(db: Database, device_id: str, changes: dict[str, Any], area: CouncilArea) -> DeviceSpec:
    """Change attributes (not the id or kind; `move_device` for the location); validated again as a whole."""
    for name in changes.keys() & {"device_id", "kind", "lon", "lat"}:
        raise InvalidField(name, "cannot be changed by an update (retire and add a new device, or move it)")
    async with db.transaction() as conn:
        current = await _active(conn, device_id)
        if "lorawan_dev_eui" in changes and (changes["lorawan_dev_eui"] is None) != (not current.is_lorawan):
            raise InvalidField("lorawan_dev_eui", "a device cannot change between native and LoRaWAN (retire it "
                                                  "and add a new one)")
        updated = validate(replace(current, **changes), area)
        await _write_spec(conn, updated)
        await _event(conn, device_id, "updated", {k: v for k, v in changes.items()})
    return updated


async def move_device(db: Database, device_id: str, lon: float, lat: float, area: CouncilArea) -> DeviceSpec:
    async with db.transaction() as conn:
        current = await _active(conn, device_id)
        updated = moved(current, lon, lat, area)
        await _write_spec(conn, updated)
        await _event(conn, device_id, "moved", {"from": [current.lon, current.lat], "to": [lon, lat]})
    return updated


async def rotate_secret(db: Database, device_id: str) -> Provisioned:
    """A new secret for an active device; the old one stops working at the broker's next reload."""
    secret = new_secret()
    async with db.transaction() as conn:
        if (await _active(conn, device_id)).is_lorawan:
            raise InvalidField("device_id", f"{device_id} is a LoRaWAN device: it has no broker secret (its keys "
                                            "live on the network server)")
        [hashed] = await _hashed(conn, [secret])
        await conn.execute(
            "INSERT INTO device_secrets (device_id, secret_hash) VALUES ($1, $2) ON CONFLICT (device_id) "
            "DO UPDATE SET secret_hash = EXCLUDED.secret_hash, created_at = now()", device_id, hashed)
        await _event(conn, device_id, "rotated")
    log.info("rotated the secret of %s", device_id)
    return Provisioned(device_id, secret)


async def rotate_secrets(db: Database, device_ids: Sequence[str]) -> list[Provisioned]:
    """New secrets for many active devices in one transaction (a fleet re-keyed at once)."""
    issued = [Provisioned(d, new_secret()) for d in device_ids]
    async with db.transaction() as conn:
        active = {r["device_id"] for r in await conn.fetch(
            "SELECT device_id FROM devices WHERE device_id = ANY($1) AND status = 'active' "
            "AND device_id NOT IN (SELECT device_id FROM lorawan_devices)", list(device_ids))}
        missing = [d for d in device_ids if d not in active]
        if missing:
            raise UnknownDevice(missing[0])
        await conn.execute(
            "INSERT INTO device_secrets (device_id, secret_hash) SELECT * FROM unnest($1::text[], $2::text[]) "
            "ON CONFLICT (device_id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, created_at = now()",
            [p.name for p in issued], await _hashed(conn, [p.secret for p in issued]))
        await conn.executemany("INSERT INTO device_events (device_id, action, detail) VALUES ($1, 'rotated', '{}')",
                               [(p.name,) for p in issued])
    log.info("rotated the secrets of %d devices", len(issued))
    return issued


async def undo_rotation(db: Database, device_id: str, issued: str, previous_hash: str | None) -> bool:
    """Put back the secret a rotation replaced (the broker never took the new one), unless the
    secret changed again since; True when undone."""
    if previous_hash is None:
        return False
    async with db.transaction() as conn:
        current = await conn.fetchval("SELECT secret_hash FROM device_secrets WHERE device_id = $1 FOR UPDATE",
                                      device_id)
        if current is None or not verify_secret(issued, current):
            return False
        await conn.execute("UPDATE device_secrets SET secret_hash = $2 WHERE device_id = $1", device_id,
                           previous_hash)
        await _event(conn, device_id, "rotated", {"undone": True, "reason": "the broker was not updated"})
    log.warning("rotation of %s undone: the broker was not updated", device_id)
    return True


async def secret_hash(db: Database, device_id: str) -> str | None:
    return await db.fetchval("SELECT secret_hash FROM device_secrets WHERE device_id = $1", device_id)


async def retire_device(db: Database, device_id: str, reason: str = "") -> None:
    """Retired for good: its secret is deleted, so the next broker sync drops it."""
    async with db.transaction() as conn:
        await _active(conn, device_id)
        await conn.execute("UPDATE devices SET status = 'retired' WHERE device_id = $1", device_id)
        await conn.execute("DELETE FROM device_secrets WHERE device_id = $1", device_id)
        await _event(conn, device_id, "retired", {"reason": reason} if reason else {})
    log.info("retired %s", device_id)


async def rotate_service_account(db: Database, name: str) -> Provisioned:
    if name not in SERVICE_ACCOUNTS:
        raise UnknownDevice(name)
    secret = new_secret()
    async with db.transaction() as conn:
        [hashed] = await _hashed(conn, [secret])
        await conn.execute(
            "INSERT INTO service_accounts (name, secret_hash) VALUES ($1, $2) ON CONFLICT (name) "
            "DO UPDATE SET secret_hash = EXCLUDED.secret_hash, created_at = now()", name, hashed)
    log.info("new secret for the %s service account", name)
    return Provisioned(name, secret)


async def device_events(db: Database, device_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT at, action, detail FROM device_events WHERE device_id = $1 ORDER BY id",
                          device_id)
    return [{"at": r["at"].isoformat(), "action": r["action"], "detail": json.loads(r["detail"])} for r in rows]
