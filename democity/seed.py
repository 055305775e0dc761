"""Putting the demo town into a database (the adapter): reset, then seed, both idempotent.

Everything the demo owns has an id starting `demo-` (segments, routes, depots, devices,
households) or a username starting `demo-`. Seeding goes through the platform's own code
paths: the road network is written as GeoJSON and imported as `cityops roads import` does
(parse_network + save_network), devices are registered as `cityops device import` does
(devices.registry.insert_devices; the LoRaWAN ones with their DevEUI, codec and network
server, and no broker secret), users are created by ops_api.accounts. Seeding twice
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
from datetime import datetime, timedelta
from pathlib import Path

import shapely

from cases import lifecycle as cases
from cases import store as cases_store
from cityops.settings import Settings
from cityops.storage import Database
from democity.story import Timeline
from democity.town import BIN_DEPTH_MM, BIN_HEIGHT_MM, NETWORK_SERVER, PREFIX, Home, Town
from devices.area import CouncilArea
from devices.registry import insert_devices
from devices.spec import DeviceSpec, validate
from pipelines.gritting.pipeline import save_network
from rules.gritting.network import parse_network

log = logging.getLogger("democity.seed")

LIKE = f"{PREFIX}%"


@dataclass(frozen=True)
class DemoLandlord:
    landlord_id: str
    name: str
    kind: str                  # council | housing_association | private
    social: bool               # a social landlord: Awaab's Law's clocks apply to its homes


COUNCIL_HOUSING = DemoLandlord(f"{PREFIX}ashbury", "Ashbury Council Housing", "council", True)
HOUSING_ASSOCIATION = DemoLandlord(f"{PREFIX}riverside", "Riverside Homes", "housing_association", True)
PRIVATE_EVERY = 6              # every sixth home (the 6th, 12th, ...) is let privately: no landlord on record


def landlord_of(index: int) -> DemoLandlord | None:
    """The town's homes by their number: 10 private, then the council's even ones (30) and the
    housing association's odd ones (20)."""
    if index % PRIVATE_EVERY == PRIVATE_EVERY - 1:
        return None
    return COUNCIL_HOUSING if index % 2 == 0 else HOUSING_ASSOCIATION


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    display_name: str
    household_id: str | None = None
    landlord_id: str | None = None      # a landlord officer's organisation

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
                     damp_home.household_id),
            DemoUser(f"{PREFIX}housing", "landlord", "Hamid (Ashbury Council Housing)",
                     landlord_id=COUNCIL_HOUSING.landlord_id),
            DemoUser(f"{PREFIX}riverside", "landlord", "Rosa (Riverside Homes)",
                     landlord_id=HOUSING_ASSOCIATION.landlord_id))


@dataclass
class SeedReport:
    segments: int = 0
    devices_added: int = 0
    devices: int = 0
    lorawan: int = 0                                         # of the devices, heard through the network server
    users_added: int = 0
    users: dict[str, str] = field(default_factory=dict)     # username -> user_id
    cases: int = 0                                           # damp cases made (none when seeded before)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.segments} road segments, {self.devices} devices ({self.devices_added} new; "
                f"{self.lorawan} of them LoRaWAN), "
                f"{len(self.users)} users ({self.users_added} new), {self.cases} damp cases")


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
    # the damp cases of demo homes (their alerts' causes name the home: deleted below)
    "DELETE FROM case_photos WHERE case_id IN (SELECT case_id FROM damp_cases WHERE household_id LIKE $1)",
    "DELETE FROM case_events WHERE case_id IN (SELECT case_id FROM damp_cases WHERE household_id LIKE $1)",
    "DELETE FROM damp_cases WHERE household_id LIKE $1",
    # alerts about demo causes, with their notifications and history
    *(f"DELETE FROM {table} WHERE alert_id IN (SELECT alert_id FROM alerts WHERE cause LIKE '%' || $1)"
      for table in ("notifications", "alert_events", "alert_outbox", "alerts")),
    # readings and everything derived from them
    "DELETE FROM frog_readings WHERE device_id LIKE $1",
    "DELETE FROM road_readings WHERE device_id LIKE $1",
    "DELETE FROM bin_readings WHERE device_id LIKE $1",
    "DELETE FROM dead_letters WHERE device_id LIKE $1",
    # the LoRaWAN devices' uplink log (their sessions), what was learnt of them, and downlinks (the next
    # week's frame counters start again)
    "DELETE FROM lorawan_uplinks WHERE device_id LIKE $1",
    "DELETE FROM lorawan_downlinks WHERE device_id LIKE $1",
    "UPDATE lorawan_devices SET heard_via = NULL, application_id = NULL, ns_device_id = NULL, rejoined_at = NULL, "
    "battery_pct = NULL, external_power = NULL, status_at = NULL, interval_sent_s = NULL WHERE device_id LIKE $1",
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
    return specs + lorawan_specs(town, area)


def lorawan_specs(town: Town, area: CouncilArea) -> list[DeviceSpec]:
    """The LoRaWAN homes and bins, heard through the demo's network server (no broker secret)."""
    specs = [validate(DeviceSpec(h.device_id, "frog", h.lon, h.lat, household_id=h.household_id,
                                 sensor_type=h.codec, lorawan_dev_eui=h.dev_eui, codec=h.codec,
                                 network_server=NETWORK_SERVER), area)
             for h in town.lorawan_homes]
    specs += [validate(DeviceSpec(b.device_id, "bin", b.lon, b.lat, bin_depth_mm=BIN_DEPTH_MM,
                                  sensor_height_mm=BIN_HEIGHT_MM, sensor_type=b.codec, lorawan_dev_eui=b.dev_eui,
                                  codec=b.codec, network_server=NETWORK_SERVER), area)
              for b in town.lorawan_bins]
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
    homes, bins = town.all_homes, town.all_bins
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO damp_home_settings (household_id, f_rsi, sensitivity, area, social_landlord) "
            "SELECT * FROM unnest($1::text[], $2::real[], $3::text[], $4::text[], $5::boolean[]) "
            "ON CONFLICT (household_id) DO UPDATE SET f_rsi = EXCLUDED.f_rsi, sensitivity = EXCLUDED.sensitivity, "
            "area = EXCLUDED.area, social_landlord = EXCLUDED.social_landlord, updated_at = now()",
            [h.household_id for h in homes], [h.f_rsi for h in homes],
            [h.sensitivity for h in homes], [h.area for h in homes], [h.damp for h in homes])
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
            [b.device_id for b in bins], [b.bin_type for b in bins], [b.place for b in bins],
            [b.volume_l for b in bins], [b.collection_weekday for b in bins], depot.depot_id)


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
        if user.landlord_id is not None:   # as `cityops user add --role landlord --landlord ID` does
            async with db.transaction() as conn:
                await cases_store.set_user_landlord(conn, user_id, user.landlord_id)
        ids[user.username] = user_id
    await _feed_subscriptions(db, town, ids)
    return added, ids


async def _feed_subscriptions(db: Database, town: Town, ids: dict[str, str]) -> None:
    """In-app alert feeds: the operator sees every alert, the householder their home's, a landlord
    officer the case clocks of their organisation's homes."""
    users = {u.username: u for u in demo_users(town)}
    for username, user_id in ids.items():
        user = users[username]
        if user.role not in ("operator", "householder", "landlord"):
            continue
        exists = await db.fetchval("SELECT 1 FROM alert_subscriptions WHERE user_id = $1 AND channel = 'feed'",
                                   user_id)
        if not exists:
            await db.execute("INSERT INTO alert_subscriptions (user_id, role, channel, household_id, landlord_id, "
                             "min_severity) VALUES ($1, $2, 'feed', $3, $4, 'info')", user_id, user.role,
                             user.household_id, user.landlord_id)


# --- landlords and damp cases -----------------------------------------------------------------

async def seed_landlords(db: Database, town: Town, timeline: Timeline) -> None:
    """The two social landlords and which of the town's homes each owns (PUT /homes does the same)."""
    for org in (COUNCIL_HOUSING, HOUSING_ASSOCIATION):
        await cases_store.insert_landlord(db, org.landlord_id, org.name, org.kind, org.social)
    for i, home in enumerate(town.all_homes):   # the LoRaWAN homes numbered after the others
        landlord = landlord_of(i)
        await cases.put_home(db, home.household_id, landlord.landlord_id if landlord else None,
                             f"{i + 1} {home.area} Close", landlord is not None, timeline.registered_at)


def case_homes(town: Town) -> dict[str, Home]:
    """The homes the seeded cases are about: Hana's (the council's, damp), one of the housing
    association's damp homes, and a dry council home whose case is closed."""
    hana = next(h for h in town.homes if h.damp)
    late = next(h for i, h in enumerate(town.homes) if h.damp and landlord_of(i) is HOUSING_ASSOCIATION)
    closed = next(h for i, h in enumerate(town.homes) if not h.damp and landlord_of(i) is COUNCIL_HOUSING)
    return {"investigated": hana, "overdue": late, "closed": closed}


async def seed_cases(db: Database, town: Town, timeline: Timeline, users: dict[str, str]) -> int:
    """Three damp cases at the town's time, made as the officers and Hana would (cases.lifecycle):
    Hana's report, investigated with its summary sent, during the week; one the housing
    association has not investigated for three weeks (overdue); one closed after its works. The
    sensors' suggestions come from the worker (democity/worker.py). None when any exists already."""
    homes = case_homes(town)
    if await db.fetchval("SELECT count(*) FROM damp_cases WHERE household_id = ANY($1)",
                         [h.household_id for h in homes.values()]):
        return 0
    housing, riverside = users[f"{PREFIX}housing"], users[f"{PREFIX}riverside"]
    day = timedelta(days=1)

    # Hana reported mould four days before the town's evening; the council inspected two days
    # later and wrote to her the day after (the written summary, SI 2025/1042 reg. 6)
    reported = timeline.live_from - 4 * day
    view = await cases.householder_report(db, homes["investigated"].household_id, users[f"{PREFIX}householder"],
                                          "Black mould is spreading behind the wardrobe in the back bedroom, and the "
                                          "window runs with water every morning.", (), reported)
    case_id = view["case_id"]
    await cases.triage(db, case_id, housing, reported + timedelta(hours=2), decision="accept",
                       category="significant", reason="mould in a bedroom; no one vulnerable recorded")
    inspected = reported + 2 * day
    await cases.record_step(db, case_id, housing, inspected, "investigation",
                            {"findings": "condensation on a cold solid wall; extractor fan not working"})
    await cases.record_step(db, case_id, housing, inspected + day, "summary_sent", {
        "how": "letter", "text": "We found condensation on the cold back wall and a broken extractor fan. We will "
        "replace the fan and treat the mould within five working days, then insulate the wall."})

    # the housing association logged a call three weeks before the town's evening and has not inspected
    aware = timeline.live_from - 21 * day
    late = await cases.open_case(db, homes["overdue"].household_id, riverside, aware, category="significant",
                                 reason="tenant reports damp walls in the living room", aware_at=aware,
                                 aware_how="householder", text="Phone call: damp patches and a musty smell.")
    await cases.record_step(db, late, riverside, aware + day, "contact", {"how": "phone"})

    # an older case, worked through and closed at the start of the week
    aware = timeline.live_from - 40 * day
    done = await cases.open_case(db, homes["closed"].household_id, housing, aware, category="significant",
                                 reason="mould around the bathroom window", aware_at=aware, aware_how="officer")
    inspected = aware + 2 * day
    steps: tuple[tuple[timedelta, str, dict[str, str]], ...] = (
        (timedelta(0), "investigation", {"findings": "a blocked trickle vent and mould on the reveal"}),
        (day, "summary_sent", {"how": "email", "text": "We will clear the vent and treat the mould."}),
        (2 * day, "safety_works", {"stage": "done"}),
        (3 * day, "further_works", {"stage": "begun"}),
        (10 * day, "further_works", {"stage": "started"}),
    )
    for after, kind, body in steps:
        await cases.record_step(db, done, housing, inspected + after, kind, body)
    await cases.close_case(db, done, housing, timeline.start + timedelta(hours=12),
                           "works finished; no damp on the follow-up visit")
    return 3


async def seed(db: Database, town: Town, timeline: Timeline, settings: Settings, work_dir: Path) -> SeedReport:
    """The whole town: network, devices, settings, users. Safe to run again."""
    report = SeedReport()
    network = await asyncio.to_thread(write_network, town, work_dir / "network.geojson")
    report.segments = await import_network(db, network, settings)
    report.devices_added, report.devices = await register_devices(db, town, timeline, settings)
    report.lorawan = len(town.lorawan_device_ids)
    await seed_settings(db, town)
    # Hana moved in a month before the monitor was fitted: a tenant sees the damp risk once it
    # rests on her tenancy's readings alone (RISK_HISTORY), which a week from her moving in never would
    from ops_api.queries.households import RISK_HISTORY

    await seed_landlords(db, town, timeline)
    report.users_added, report.users = await seed_users(db, town, timeline.registered_at - RISK_HISTORY)
    report.cases = await seed_cases(db, town, timeline, report.users)
    return report
