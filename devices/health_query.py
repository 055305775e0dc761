"""Gather `health.HealthInputs` for devices from the database (the adapter for health.py)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from cityops.storage import Database
from devices.health import DEFAULT_POLICY, Health, HealthInputs, HealthPolicy, Values, assess

log = logging.getLogger("devices.health_query")

FRAMES_WINDOW = timedelta(days=1)  # LoRaWAN frames lost are counted over this long

# The values compared for a stuck sensor, per kind.
VALUE_COLUMNS = {
    "frog": ("frog_readings", ("air_temp_c", "rh_pct")),
    "road": ("road_readings", ("surface_temp_c", "air_temp_c")),
    "bin": ("bin_readings", ("distance_mm", "temp_c")),
}


async def device_health(db: Database, now: datetime, *, device_ids: Sequence[str] | None = None,
                        window: timedelta = timedelta(days=7), policy: HealthPolicy = DEFAULT_POLICY
                        ) -> list[Health]:
    """Health of the given devices (default: every active one) over the recent `window`."""
    since = now - window
    devices = await db.fetch(
        "SELECT d.device_id, d.kind, d.status, d.last_seen, d.online, d.online_changed_at, d.firmware_version, "
        "d.sample_interval_s, l.battery_pct FROM devices d LEFT JOIN lorawan_devices l ON l.device_id = d.device_id "
        "WHERE ($1::text[] IS NULL AND d.status = 'active') OR d.device_id = ANY($1) ORDER BY d.device_id",
        list(device_ids) if device_ids is not None else None)
    ids = [d["device_id"] for d in devices]
    battery: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for row in await db.fetch("SELECT device_id, ts, battery_v FROM device_battery WHERE device_id = ANY($1) "
                              "AND ts >= $2", ids, since):
        battery[row["device_id"]].append((row["ts"], float(row["battery_v"])))
    dead = {r["device_id"]: int(r["n"]) for r in await db.fetch(
        "SELECT device_id, count(*) AS n FROM dead_letters WHERE device_id = ANY($1) AND received_at >= $2 "
        "GROUP BY device_id", ids, since)}
    readings: dict[str, list[tuple[datetime, Values]]] = defaultdict(list)
    lags: dict[str, list[float]] = defaultdict(list)
    for kind, (table, columns) in VALUE_COLUMNS.items():
        kind_ids = [d["device_id"] for d in devices if d["kind"] == kind]
        if not kind_ids:
            continue
        rows = await db.fetch(
            f"SELECT device_id, ts, {', '.join(columns)}, "
            "extract(epoch FROM received_at - ts)::float8 AS lag_s, time_source "
            f"FROM {table} WHERE device_id = ANY($1) AND ts >= $2", kind_ids, since)
        for row in rows:
            readings[row["device_id"]].append((row["ts"], tuple(row[c] for c in columns)))
            if row["time_source"] is None:  # a clock the device keeps (not a network server's receive time)
                lags[row["device_id"]].append(row["lag_s"])
    frames = {r["device_id"]: (int(r["uplinks"]), max(0, int(r["lost"]))) for r in await db.fetch(
        "SELECT device_id, count(*) AS uplinks, coalesce(sum(gap), 0) AS lost FROM lorawan_uplinks "
        "WHERE device_id = ANY($1) AND received_at >= $2 GROUP BY device_id", ids, now - FRAMES_WINDOW)}
    return [assess(HealthInputs(
        device_id=d["device_id"], now=now, retired=d["status"] == "retired", last_seen=d["last_seen"],
        online=d["online"], online_changed_at=d["online_changed_at"], firmware_version=d["firmware_version"],
        battery=battery[d["device_id"]], readings=readings[d["device_id"]], lags_s=lags[d["device_id"]],
        dead_letters=dead.get(d["device_id"], 0), sample_interval_s=d["sample_interval_s"],
        uplinks=frames.get(d["device_id"], (0, 0))[0], frames_lost=frames.get(d["device_id"], (0, 0))[1],
        battery_pct=d["battery_pct"]), policy) for d in devices]
