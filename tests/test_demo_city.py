"""The demo town: generated the same from a seed, a valid road network, a week with a
freezing night in the right place, and seeding that can run twice."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.runner import AlertsRunner
from cases.lifecycle import household_case
from cityops.errors import StorageError
from cityops.settings import AlertsSettings, Settings
from cityops.storage import Database, migrate
from democity import seed as seeding
from democity.fleet import parts_for
from democity.story import EVENING_HOUR, StoryWeather, Timeline
from democity.town import BINS, HOMES, LORAWAN_BINS, LORAWAN_HOMES, ROAD_SENSORS, build_town
from democity.worker import FixedClock
from devices.area import CouncilArea
from rules.gritting.network import parse_network

AREA = Settings().devices.area_wkt


def test_the_same_seed_builds_the_same_town_and_another_seed_another() -> None:
    assert build_town(1) == build_town(1)
    assert build_town(1).streets != build_town(2).streets


def test_the_town_has_what_the_demo_promises() -> None:
    town = build_town(1)
    network = parse_network(town.network_geojson(), "demo", area=shapely.from_wkt(AREA))
    assert 300 <= len(network.segments) <= 400
    assert {r.route_id for r in network.routes} == set(town.route_ids) and len(network.routes) == 4
    assert len(network.depots) == 1
    assert sum(s.bridge for s in network.segments) == 3
    assert any(s.thermal_offset_c < -1 and not s.bridge for s in network.segments)  # shaded roads
    for route in network.routes:
        assert network.unreachable(route.route_id) == []
        assert any(s.priority <= 2 for s in network.route_segments(route.route_id))
    assert (len(town.road_sensors), len(town.homes), len(town.bins)) == (ROAD_SENSORS, HOMES, BINS)
    assert {s.segment_id for s in town.road_sensors} <= {s.segment_id for s in network.segments}
    assert all(any(s.segment_id == r.segment_id and s.bridge for s in network.segments)
               for r in town.road_sensors if r.bridge)
    assert 5 <= sum(h.damp for h in town.homes) < HOMES / 2
    assert len(set(town.device_ids)) == len(town.device_ids)
    # issue 22: the LoRaWAN homes and bins, apart from the native devices (no broker account, no agent)
    assert (len(town.lorawan_homes), len(town.lorawan_bins)) == (LORAWAN_HOMES, LORAWAN_BINS)
    assert not set(town.lorawan_device_ids) & set(town.device_ids)
    euis = [d.dev_eui for d in (*town.lorawan_homes, *town.lorawan_bins)]
    assert len(set(euis)) == len(euis) and euis == [d.dev_eui for d in (*build_town(1).lorawan_homes,
                                                                         *build_town(1).lorawan_bins)]
    # the vendors' IEEE OUIs start their DevEUIs: Milesight 24-E1-24, Dragino A8-40-41 (IEEE MA-L registry)
    assert all(h.dev_eui and h.dev_eui.startswith("24e124") for h in town.lorawan_homes)
    assert {b.codec for b in town.lorawan_bins} == {"dragino-ldds75", "milesight-em310-udl"}
    assert all((b.dev_eui or "").startswith("a84041" if b.codec == "dragino-ldds75" else "24e124")
               for b in town.lorawan_bins)


def test_every_device_passes_the_registry_checks() -> None:
    town = build_town(1)
    specs = seeding.device_specs(town, CouncilArea.from_wkt(AREA))
    assert len(specs) == len(town.device_ids) + len(town.lorawan_device_ids)
    lorawan = [s for s in specs if s.is_lorawan]
    assert [s.device_id for s in lorawan] == list(town.lorawan_device_ids)
    assert {s.network_server for s in lorawan} == {"demo-chirpstack"}
    assert all(s.sensor_height_mm and s.bin_depth_mm and s.sensor_height_mm > s.bin_depth_mm
               for s in specs if s.kind == "bin")  # rules.bins reads the height above the empty bin's bottom


def test_the_gritter_drives_along_the_network() -> None:
    town = build_town(1)
    nodes = {point for s in town.streets for point in s.coords}
    assert all((lon, lat) in nodes for lat, lon in town.gritter_loop)
    assert town.gritter_loop[0] == town.gritter_loop[-1]


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
       st.floats(min_value=1, max_value=14))
@settings(max_examples=50, deadline=None)
def test_the_week_ends_at_the_last_evening_before_now(now: datetime, days: float) -> None:
    now = now.replace(tzinfo=UTC)
    week = Timeline.ending_before(now, days)
    assert week.live_from <= now < week.live_from + timedelta(days=1)
    assert week.live_from.hour == EVENING_HOUR and week.live_from.minute == 0
    assert week.registered_at < week.start < week.live_from


def test_the_weather_tells_the_story() -> None:
    week = Timeline.ending_before(datetime(2026, 1, 6, 9, 30, tzinfo=UTC))
    weather = StoryWeather.for_timeline(week)
    evening = week.live_from
    night = [evening + timedelta(hours=h) for h in range(1, 14)]
    assert min(weather.air_temp_c(t) for t in night) < -2.0              # the freezing night
    assert all(weather.sky_clearness(t) > 0.8 for t in night)             # clear: radiative cooling
    assert any(weather.rain_mm_h(evening - timedelta(hours=h)) > 0 for h in range(2, 7))   # wet roads at dusk
    assert weather.air_temp_c(evening + timedelta(days=1, hours=20)) > 2.0  # and a thaw
    wet_day = [week.start + timedelta(hours=h) for h in range(40, 60)]
    assert sum(weather.rain_mm_h(t) > 0 for t in wet_day) >= 10


def test_the_fleet_is_split_so_each_process_stays_under_the_select_limit() -> None:
    assert parts_for(391) == 4
    assert parts_for(130) == 1


async def test_seeding_twice_gives_the_same_city_and_reset_forgets_the_week(fresh_database_url: str,
                                                                            tmp_path: Path) -> None:
    settings = Settings(database_url=fresh_database_url)
    town = build_town(1)
    week = Timeline.ending_before(datetime.now(UTC), days=2)
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, settings.storage)
        first = await seeding.seed(db, town, week, settings, tmp_path)
        # 353 grid segments (14 x 13 each way, less the 11 river crossings without a bridge) and the
        # two closes (democity.town CLOSES); 30 road sensors + 1 gritter + 60 frogs + 300 bins, and the
        # LoRaWAN ones: 4 homes + 6 bins (issue 22)
        # 7 logins: operator, admin, two crews, Hana and the two landlords' officers (issue 21);
        # Hana's case, one overdue and one closed (democity.seed.seed_cases)
        assert (first.segments, first.devices_added, first.users_added, first.cases) == (355, 401, 7, 3)
        again = await seeding.seed(db, town, week, settings, tmp_path)
        assert (again.devices_added, again.users_added, again.users, again.cases) == (0, 0, first.users, 0)
        assert await db.fetchval("SELECT count(*) FROM road_segments WHERE segment_id LIKE 'demo-%'") == 355
        assert await db.fetchval("SELECT count(*) FROM devices WHERE registered_at = $1", week.registered_at) == 401
        assert await db.fetchval("SELECT count(*) FROM damp_home_settings WHERE f_rsi < 0.6") == \
            sum(h.damp for h in town.all_homes)
        assert await db.fetchval("SELECT count(*) FROM bin_settings") == BINS + LORAWAN_BINS
        # the LoRaWAN devices as `cityops device add --lorawan-dev-eui` registers them: no broker secret
        lorawan = await db.fetch("SELECT l.device_id, l.dev_eui, l.codec, l.network_server, s.device_id AS secret "
                                 "FROM lorawan_devices l LEFT JOIN device_secrets s USING (device_id) "
                                 "ORDER BY l.device_id")
        assert [(r["device_id"], r["dev_eui"], r["codec"]) for r in lorawan] == sorted(
            (d.device_id, d.dev_eui, d.codec) for d in (*town.lorawan_homes, *town.lorawan_bins))
        assert {r["network_server"] for r in lorawan} == {"demo-chirpstack"}
        assert [r["secret"] for r in lorawan] == [None] * (LORAWAN_HOMES + LORAWAN_BINS)
        householder = await db.fetchrow("SELECT household_id, role FROM users WHERE username = 'demo-householder'")
        assert householder["role"] == "householder"
        assert await db.fetchval("SELECT count(*) FROM devices WHERE household_id = $1",
                                 householder["household_id"]) == 1
        # the operator's, Hana's and each landlord officer's own (their organisation's case clocks)
        assert await db.fetchval("SELECT count(*) FROM alert_subscriptions WHERE channel = 'feed'") == 4
        officers = await db.fetch("SELECT u.username, u.landlord_id, s.landlord_id AS told_of FROM users u "
                                  "JOIN alert_subscriptions s ON s.user_id = u.user_id WHERE u.role = 'landlord' "
                                  "ORDER BY u.username")
        assert [tuple(r) for r in officers] == [("demo-housing", "demo-ashbury", "demo-ashbury"),
                                                ("demo-riverside", "demo-riverside", "demo-riverside")]
        # 60 homes: every sixth private (10), the council's even ones (30), the association's odd ones (20);
        # the 4 LoRaWAN homes numbered after them, 60-63: the council's 60 and 62, the association's 61 and 63
        owners = {r["owner"]: r["homes"] for r in await db.fetch(
            "SELECT coalesce(landlord_id, 'private') AS owner, count(*) AS homes FROM homes "
            "WHERE household_id LIKE 'demo-%' GROUP BY 1")}
        assert owners == {"demo-ashbury": 32, "demo-riverside": 22, "private": 10}
        states = await db.fetch("SELECT household_id, state FROM damp_cases ORDER BY household_id")
        assert [tuple(r) for r in states] == [("demo-h000", "open"), ("demo-h002", "closed"), ("demo-h015", "open")]
        # Hana sees her case: her report, the inspection and the summary sent to her
        hana = await household_case(db, householder["household_id"], week.live_from)
        assert hana is not None and hana["state"] == "open"
        assert [e["kind"] for e in hana["timeline"]] == ["report", "triage", "investigation", "summary_sent"]
        # at the town's evening the association's case, aware 21 days before (more than 10 working
        # days, SI 2025/1042 reg. 4), has its overdue alert, for the operator and Riverside's officer
        await AlertsRunner(db, AlertsSettings(), clock=FixedClock(week.live_from)).evaluate()
        overdue = await db.fetch("SELECT a.cause, a.landlord_id, array_agg(DISTINCT u.username ORDER BY u.username) "
                                 "AS told FROM alerts a JOIN alert_outbox o USING (alert_id) JOIN users u ON "
                                 "u.user_id = o.user_id WHERE a.rule = 'case_overdue' GROUP BY 1, 2")
        assert [(r["cause"].rsplit(":", 1)[0], r["landlord_id"], r["told"]) for r in overdue] == \
            [("case_overdue:demo-h015", "demo-riverside", ["demo-operator", "demo-riverside"])]

        # someone else's data survives a reset; the demo's readings do not, nor its officers' log entries
        for routes in (("demo-north",), ("demo-north", "other-route")):        # a demo run, and a shared one
            run_id = await db.fetchval("INSERT INTO gritting_runs (as_of, window_start, window_end, inputs, "
                                       "warnings) VALUES (now(), now(), now(), '{}', '[]') RETURNING run_id")
            for route in routes:
                await db.execute("INSERT INTO gritting_route_decisions (run_id, route_id, send, decision, reason, "
                                 "treat_segments, salt_kg) VALUES ($1, $2, true, 'send', 'x', 1, 1)", run_id, route)
                await db.execute("INSERT INTO gritting_decision_log (run_id, route_id, action, decision_before, "
                                 "officer) VALUES ($1, $2, 'acknowledge', 'send', 'an officer')", run_id, route)
        await db.execute("INSERT INTO devices (device_id, kind) VALUES ('other-frog', 'frog')")
        for device in ("other-frog", town.homes[0].device_id):
            await db.execute("INSERT INTO frog_readings (device_id, ts, air_temp_c, rh_pct) VALUES ($1, now(), 20, 50)",
                             device)
        lw = town.lorawan_homes[0].device_id   # a LoRaWAN home heard once: its log and session
        await db.execute("INSERT INTO lorawan_uplinks (device_id, received_at, f_cnt, network_server, gap) "
                         "VALUES ($1, now(), 7, 'demo-chirpstack', 2)", lw)
        await db.execute("UPDATE lorawan_devices SET heard_via = 'demo-chirpstack', battery_pct = 80 "
                         "WHERE device_id = $1", lw)
        await seeding.reset(db)
        # the next week's frame counters start again: the last week's log would make them duplicates
        assert await db.fetchval("SELECT count(*) FROM lorawan_uplinks") == 0
        assert tuple(await db.fetchrow("SELECT heard_via, battery_pct FROM lorawan_devices WHERE device_id = $1",
                                       lw)) == (None, None)
        assert [r["device_id"] for r in await db.fetch("SELECT device_id FROM frog_readings")] == ["other-frog"]
        assert await db.fetchval("SELECT count(*) FROM damp_cases") == 0
        assert sorted(r["route_id"] for r in await db.fetch("SELECT route_id FROM gritting_decision_log")) == \
            ["demo-north", "other-route"]                                  # only the shared run's entries stay
        with pytest.raises(StorageError, match="append-only"):         # and the log is append-only again
            await db.execute("DELETE FROM gritting_decision_log")
        assert await db.fetchval("SELECT count(*) FROM devices WHERE device_id LIKE 'demo-%'") == 401
