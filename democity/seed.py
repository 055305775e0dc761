"""Putting the demo town into a database (the adapter): reset, then seed, both idempotent.

Everything the demo owns has an id starting `demo-` (segments, routes, depots, devices,
households) or a username starting `demo-`. Seeding goes through the platform's own code
paths: the road network is written as GeoJSON and imported as `cityops roads import` does
(parse_network + save_network), devices are registered as `cityops device import` does
(devices.registry.insert_devices), users are created by ops_api.accounts. Seeding twice
changes nothing.

`reset` clears what a previous demo run produced for the demo's own ids (readings, dead
letters, assessments, priorities, plans, gritting runs over the demo's routes, alerts
about demo causes, jobs of demo users), so every `cityops demo` replays its week from a
clean slate. Nothing that belongs to anyone else is touched.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import shapely

from cityops.settings import Settings
from cityops.storage import Database
from democity.story import Timeline
from democity.town import BIN_DEPTH_MM, BIN_HEIGHT_MM, PREFIX, Town
from devices.area import CouncilArea
from devices.registry import insert_devices
from devices.spec import DeviceSpec, validate
from pipelines.gritting.pipeline import save_network
from rules.gritting.network import parse_network

log = logging.getLogger("democity.seed")

LIKE = f"{PREFIX}%"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    display_name: str
    household_id: str | None = None

    @property
    def password(self) -> str:
        """Demo-only passwords: printed at start-up, never used outside `cityops demo`."""
        return f"{self.username}-pw"


def demo_users(town: Town) -> tuple[DemoUser, ...]:
    damp_home = next(h for h in town.homes if h.damp)
    return (DemoUser(f"{PREFIX}operator", "operator", "Olu (operations centre)"),
            DemoUser(f"{PREFIX}admin", "admin", "Ada (administrator)"),
            DemoUser(f"{PREFIX}gritting", "gritting_crew", "Gus (gritting crew)"),
            DemoUser(f"{PREFIX}waste", "waste_crew", "Wren (waste crew)"),
            DemoUser(f"{PREFIX}householder", "householder", f"Hana (household {damp_home.household_id})",
                     damp_home.household_id))


@dataclass
class SeedReport:
    segments: int = 0
    devices_added: int = 0
    devices: int = 0
    users_added: int = 0
    users: dict[str, str] = field(default_factory=dict)     # username -> user_id
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.segments} road segments, {self.devices} devices ({self.devices_added} new), "
                f"{len(self.users)} users ({self.users_added} new)")


# --- reset ------------------------------------------------------------------------------------

# runs that decided only demo routes (a run that also decided a council's own routes stays)
_DEMO_RUNS = ("SELECT run_id FROM gritting_route_decisions GROUP BY run_id "
              "HAVING bool_and(route_id LIKE $1)")

_RESET = (
    # jobs of demo users, and what completing them recorded
    "DELETE FROM bin_collections WHERE job_id IN (SELECT job_id FROM jobs WHERE assigned_to IN "
    "(SELECT user_id FROM users WHERE username LIKE $1)) OR device_id LIKE $1",
    "DELETE FROM gritting_treatments WHERE job_id IN (SELECT job_id FROM jobs WHERE assigned_to IN "
    "(SELECT user_id FROM users WHERE username LIKE $1)) OR route_id LIKE $1",
    "DELETE FROM jobs WHERE assigned_to IN (SELECT user_id FROM users WHERE username LIKE $1) "
    "OR route_id LIKE $1 OR plan_id IN (SELECT plan_id FROM bin_plans WHERE depot_id LIKE $1)",
    # alerts about demo causes, with their notifications and history
    *(f"DELETE FROM {table} WHERE alert_id IN (SELECT alert_id FROM alerts WHERE cause LIKE '%' || $1)"
      for table in ("notifications", "alert_events", "alert_outbox", "alerts")),
    # readings and everything derived from them
    "DELETE FROM frog_readings WHERE device_id LIKE $1",
    "DELETE FROM road_readings WHERE device_id LIKE $1",
    "DELETE FROM bin_readings WHERE device_id LIKE $1",
    "DELETE FROM dead_letters WHERE device_id LIKE $1",
    "DELETE FROM device_battery WHERE device_id LIKE $1",
    "DELETE FROM damp_assessments WHERE device_id LIKE $1",
    "DELETE FROM damp_mould_state WHERE device_id LIKE $1",
    "DELETE FROM damp_diary WHERE household_id LIKE $1",
    "DELETE FROM bin_priorities WHERE device_id LIKE $1",
    "DELETE FROM bin_events WHERE device_id LIKE $1",
    "DELETE FROM bin_complaints WHERE device_id LIKE $1",
    "DELETE FROM bin_plans WHERE depot_id LIKE $1",
    "DELETE FROM road_forecasts WHERE target_id LIKE $1",
    # the decision log is append-only for a council; the demo's own pretend officers' entries go with its runs
    "ALTER TABLE gritting_decision_log DISABLE TRIGGER gritting_decision_log_append_only",
    f"DELETE FROM gritting_decision_log WHERE run_id IN ({_DEMO_RUNS})",
    "ALTER TABLE gritting_decision_log ENABLE TRIGGER gritting_decision_log_append_only",
    f"DELETE FROM gritting_runs WHERE run_id IN ({_DEMO_RUNS})",
    "UPDATE devices SET last_seen = NULL, battery_v = NULL, firmware_version = NULL, last_seq = NULL, online = NULL, "
    "online_changed_at = NULL WHERE device_id LIKE $1",
)


async def reset(db: Database) -> None:
    """Forget the previous demo week (demo ids only), in one transaction."""
    async with db.transaction() as conn:
        for statement in _RESET:
            await conn.execute(statement, *(() if statement.startswith("ALTER") else (LIKE,)))


# --- seed -------------------------------------------------------------------------------------

def write_network(town: Town, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(town.network_geojson(), indent=1))
    return path


async def import_network(db: Database, path: Path, settings: Settings) -> int:
    """Exactly what `cityops roads import FILE` does."""
    text = await asyncio.to_thread(path.read_text)
    network = parse_network(json.loads(text), str(path), area=shapely.from_wkt(settings.devices.area_wkt))
    report = await save_network(db, network)
    return report.segments


def device_specs(town: Town, area: CouncilArea) -> list[DeviceSpec]:
    specs = [validate(DeviceSpec(s.device_id, "road", s.lon, s.lat, road_segment_id=s.segment_id,
                                 sensor_type="ds18b20"), area) for s in town.road_sensors]
    specs.append(validate(DeviceSpec(town.gritter_id, "road", mobile=True, sensor_type="mlx90614"), area))
    specs += [validate(DeviceSpec(h.device_id, "frog", h.lon, h.lat, household_id=h.household_id,
                                  sensor_type="sht31"), area) for h in town.homes]
    specs += [validate(DeviceSpec(b.device_id, "bin", b.lon, b.lat, bin_depth_mm=BIN_DEPTH_MM,
                                  sensor_height_mm=BIN_HEIGHT_MM, sensor_type="jsn-sr04t"), area) for b in town.bins]
    return specs


async def register_devices(db: Database, town: Town, timeline: Timeline, settings: Settings) -> tuple[int, int]:
    """Register the town's devices (those not yet registered), dated before the simulated week."""
    specs = device_specs(town, CouncilArea.from_wkt(settings.devices.area_wkt))
    async with db.transaction() as conn:
        known = {r["device_id"] for r in await conn.fetch("SELECT device_id FROM devices WHERE device_id = ANY($1)",
                                                          [s.device_id for s in specs])}
        await insert_devices(conn, [s for s in specs if s.device_id not in known])
        # ingest refuses readings from before a device's registration: date it before the week starts
        await conn.execute("UPDATE devices SET registered_at = $2, status = 'active' WHERE device_id = ANY($1)",
                           [s.device_id for s in specs], timeline.registered_at)
    return len(specs) - len(known), len(specs)


async def seed_settings(db: Database, town: Town) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO damp_home_settings (household_id, f_rsi, sensitivity, area, social_landlord) "
            "SELECT * FROM unnest($1::text[], $2::real[], $3::text[], $4::text[], $5::boolean[]) "
            "ON CONFLICT (household_id) DO UPDATE SET f_rsi = EXCLUDED.f_rsi, sensitivity = EXCLUDED.sensitivity, "
            "area = EXCLUDED.area, social_landlord = EXCLUDED.social_landlord, updated_at = now()",
            [h.household_id for h in town.homes], [h.f_rsi for h in town.homes],
            [h.sensitivity for h in town.homes], [h.area for h in town.homes], [h.damp for h in town.homes])
        depot = town.waste_depot
        await conn.execute(
            "INSERT INTO bin_depots (depot_id, lon, lat, trucks, capacity_l, max_trips) "
            "VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (depot_id) DO UPDATE SET lon = EXCLUDED.lon, lat = EXCLUDED.lat, trucks = EXCLUDED.trucks, "
            "capacity_l = EXCLUDED.capacity_l, max_trips = EXCLUDED.max_trips",
            depot.depot_id, depot.lon, depot.lat, depot.trucks, depot.capacity_l, depot.max_trips)
        await conn.execute(
            "INSERT INTO bin_settings (device_id, bin_type, place, volume_l, collection_weekdays, depot_id) "
            "SELECT d, t, p, v, ARRAY[w]::smallint[], $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], "
            "$5::smallint[]) AS u(d, t, p, v, w) "
            "ON CONFLICT (device_id) DO UPDATE SET bin_type = EXCLUDED.bin_type, place = EXCLUDED.place, "
            "volume_l = EXCLUDED.volume_l, collection_weekdays = EXCLUDED.collection_weekdays, "
            "depot_id = EXCLUDED.depot_id, updated_at = now()",
            [b.device_id for b in town.bins], [b.bin_type for b in town.bins], [b.place for b in town.bins],
            [b.volume_l for b in town.bins], [b.collection_weekday for b in town.bins], depot.depot_id)


async def seed_users(db: Database, town: Town, member_since: datetime | None = None) -> tuple[int, dict[str, str]]:
    """The demo logins (ops_api.accounts), created once; returns (created, username -> user_id).
    The householder's tenancy starts at `member_since` (see `seed`)."""
    from ops_api.accounts.store import create_user

    added = 0
    ids: dict[str, str] = {}
    for user in demo_users(town):
        user_id = await db.fetchval("SELECT user_id FROM users WHERE username = $1", user.username)
        if user_id is None:
            created = await create_user(db, username=user.username, password=user.password, role=user.role,
                                        household_id=user.household_id, display_name=user.display_name,
                                        created_by="cityops demo", member_since=member_since)
            user_id, added = created.user_id, added + 1
        ids[user.username] = user_id
    await _feed_subscriptions(db, town, ids)
    return added, ids


async def _feed_subscriptions(db: Database, town: Town, ids: dict[str, str]) -> None:
    """In-app alert feeds: the operator sees every alert, the householder their home's."""
    users = {u.username: u for u in demo_users(town)}
    for username, user_id in ids.items():
        user = users[username]
        if user.role not in ("operator", "householder"):
            continue
        exists = await db.fetchval("SELECT 1 FROM alert_subscriptions WHERE user_id = $1 AND channel = 'feed'",
                                   user_id)
        if not exists:
            await db.execute("INSERT INTO alert_subscriptions (user_id, role, channel, household_id, min_severity) "
                             "VALUES ($1, $2, 'feed', $3, 'info')", user_id, user.role, user.household_id)


async def seed(db: Database, town: Town, timeline: Timeline, settings: Settings, work_dir: Path) -> SeedReport:
    """The whole town: network, devices, settings, users. Safe to run again."""
    report = SeedReport()
    network = await asyncio.to_thread(write_network, town, work_dir / "network.geojson")
    report.segments = await import_network(db, network, settings)
    report.devices_added, report.devices = await register_devices(db, town, timeline, settings)
    await seed_settings(db, town)
    # Hana moved in a month before the monitor was fitted: a tenant sees the damp risk once it
    # rests on her tenancy's readings alone (RISK_HISTORY), which a week from her moving in never would
    from ops_api.queries.households import RISK_HISTORY

    report.users_added, report.users = await seed_users(db, town, timeline.registered_at - RISK_HISTORY)
    return report
