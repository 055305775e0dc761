"""A small city seeded for the Grafana boards' panel queries (plain PostgreSQL and the
TimescaleDB tier), and the list of those queries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cityops.settings import DevicesSettings
from cityops.storage import Database
from dashboards.boards import all_boards
from dashboards.model import MapView, Sql

VIEW = MapView.from_area_wkt(DevicesSettings().area_wkt)
BOARDS = all_boards(VIEW)
NOW = datetime.now(UTC).replace(microsecond=0)
SQL_QUERIES = [(b.uid, p.title, chr(ord("A") + i)) for b in BOARDS for p in b.panels
               for i, q in enumerate(p.queries) if isinstance(q, Sql)]


async def seed(db: Database) -> None:
    """Two homes in two areas (one with a quote in its name), a road sensor and a gritter,
    two bins, a depot with a plan, a gritting run, alerts and dead letters, all recent."""
    now = NOW
    await db.execute("""
        INSERT INTO devices (device_id, kind, lon, lat, household_id, road_segment_id, mobile, online, last_seen,
                             battery_v, firmware_version) VALUES
        ('frog-1', 'frog', -2.60, 51.45, 'h1', NULL, false, true, $1, 3.9, '1.0.0'),
        ('frog-2', 'frog', -2.58, 51.46, 'h2', NULL, false, false, $1::timestamptz - interval '3 hours', 3.7, '1.0.0'),
        ('road-1', 'road', -2.62, 51.44, NULL, 'seg-1', false, true, $1, 12.1, '1.0.0'),
        ('grit-1', 'road', NULL, NULL, NULL, NULL, true, true, $1, 12.4, '1.0.0'),
        ('bin-1', 'bin', -2.59, 51.47, NULL, NULL, false, true, $1, 3.6, '1.0.0'),
        ('bin-2', 'bin', -2.61, 51.43, NULL, NULL, false, NULL, NULL, NULL, NULL)""", now)
    await db.execute("""
        INSERT INTO damp_home_settings (household_id, area, social_landlord) VALUES
        ('h1', 'north', true), ('h2', 'St John''s', false)""")
    for step in range(36):  # every 10 minutes for 6 hours
        ts = now - timedelta(minutes=10 * step)
        got = ts + timedelta(seconds=4)
        await db.execute("INSERT INTO frog_readings (device_id, ts, air_temp_c, rh_pct, received_at) VALUES "
                         "('frog-1', $1, 17.5, 78, $2), ('frog-2', $1, 19.0, 66, $2)", ts, got)
        await db.execute("INSERT INTO road_readings (device_id, ts, surface_temp_c, air_temp_c, surface_state, "
                         "received_at) VALUES ('road-1', $1, $3, 1.5, 'damp', $2)", ts, got, 0.5 - step * 0.05)
        await db.execute("INSERT INTO road_readings (device_id, ts, surface_temp_c, air_temp_c, lat, lon, "
                         "received_at) VALUES ('grit-1', $1, -0.5, 0.5, $3, $4, $2)", ts, got,
                         51.44 + step * 0.001, -2.62 + step * 0.001)
        await db.execute("INSERT INTO bin_readings (device_id, ts, distance_mm, fill_fraction, temp_c, tilt_deg, "
                         "received_at) VALUES ('bin-1', $1, 300, $3, 12, 2, $2)", ts, got, 0.9 - step * 0.01)
    await db.execute("INSERT INTO dead_letters (topic, device_id, reason, payload, received_at) VALUES "
                     "('cityops/v1/devices/frog-1/telemetry', 'frog-1', 'schema: rh_pct out of range', '\\x7b7d', $1),"
                     "('cityops/v1/devices/x/telemetry', NULL, 'unknown device: x', '\\x00', $1)",
                     now - timedelta(minutes=5))
    reasons = json.dumps(["surface RH above 80% for 40 of the last 168 hours", "mould index 2.1"])
    await db.execute("""
        INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d,
            condensation_hours_7d, surface_rh_30d, surface_t_30d, reasons, changes, faults, metrics) VALUES
        ('frog-1', $1, 'h1', 'high', 2.1, 40, 6, 82.5, 14.1, $2::jsonb, '[]', '[]', '{}'),
        ('frog-2', $1, 'h2', 'medium', 0.8, 12, 1, 74.0, 15.9, $2::jsonb, '[]', '[]', '{}')""",
                     now - timedelta(minutes=30), reasons)
    await db.execute("""
        INSERT INTO bin_settings (device_id, bin_type, place) VALUES ('bin-1', 'general', 'town_centre');
        INSERT INTO bin_depots (depot_id, lon, lat, trucks, capacity_l) VALUES ('depot-1', -2.6, 51.45, 1, 10000)""")
    await db.execute("""
        INSERT INTO bin_priorities (device_id, data_until, status, fill, hours_to_threshold, hours_low, hours_high,
            overflow_risk, score, mandatory, reasons) VALUES
        ('bin-1', $1, 'ok', 0.9, 3.5, 2, 6, 0.7, 9.5, true, 'over 85% full; overflows within 6 h'),
        ('bin-2', $1, 'learning', 0.2, 'Infinity', NULL, NULL, 0.0, 0.5, false, 'learning its fill rate')""",
                     now - timedelta(minutes=20))
    await db.execute("INSERT INTO bin_events (device_id, ts, kind, value, message) VALUES "
                     "('bin-1', $1, 'tilt', 65, 'bin tipped over (65 degrees)')", now - timedelta(hours=1))
    plan_id = await db.fetchval("""
        INSERT INTO bin_plans (depot_id, shift_start, feasible, distance_m, solve_s, skipped, missed, notes, geojson)
        VALUES ('depot-1', date_trunc('day', $1::timestamptz) + interval '1 day 6 hours', true, 8200, 1.5,
                '[]', '[]', '[]', '{"type": "FeatureCollection", "features": []}') RETURNING plan_id""", now)
    await db.execute("""
        INSERT INTO bin_plan_stops (plan_id, truck, seq, device_id, arrive, depart, load_after_l) VALUES
        ($1, 1, 1, 'bin-1', $2::timestamptz, $2::timestamptz + interval '3 minutes', 240)""", plan_id,
                     now + timedelta(hours=12))
    await seed_gritting(db, now)
    await db.execute("""
        INSERT INTO alerts (rule, cause, severity, state, title, device_id, opened_at, last_firing_at) VALUES
        ('road_freezing', 'road_freezing:seg-1', 'critical', 'open', 'Road surface below zero on seg-1',
         'road-1', $1, $1),
        ('battery_low', 'battery_low:bin-1', 'warning', 'acknowledged', 'Battery low on bin-1', 'bin-1', $1, $1),
        ('offline', 'offline:frog-2', 'warning', 'resolved', 'frog-2 offline', 'frog-2', $1, $1)""",
                     now - timedelta(hours=2))
    await seed_cases(db, now)


async def seed_cases(db: Database, now: datetime) -> None:
    """A landlord's open case at h1, investigated a day after awareness, and a sensor's
    suggestion at h2 (a home with no landlord yet), for the cases board."""
    await db.execute("""
        INSERT INTO landlords (landlord_id, name, kind, social)
        VALUES ('la-1', 'North Homes', 'housing_association', true);
        INSERT INTO homes (household_id, landlord_id, social_housing)
        VALUES ('h1', 'la-1', true), ('h2', NULL, false)""")
    case_id = await db.fetchval("""
        INSERT INTO damp_cases (household_id, state, category, category_reason, created_at, opened_at,
            aware_at, aware_how, opened_by) VALUES ('h1', 'open', 'significant', 'mould in a bedroom', $1, $1, $1,
            'householder', 'officer-1') RETURNING case_id""", now - timedelta(hours=20))
    await db.execute("""
        INSERT INTO case_events (case_id, kind, at, by_user, visible_to_tenant, milestone, summary) VALUES
        ($1, 'opened', $2, 'officer-1', true, 'aware', 'Case opened'),
        ($1, 'investigation', $3, 'officer-1', true, 'investigated', 'The home was inspected')""",
                     case_id, now - timedelta(hours=20), now - timedelta(hours=2))
    await db.execute("""
        INSERT INTO damp_cases (household_id, state, created_at, opened_by, suggestion)
        VALUES ('h2', 'suggested', $1, 'sensor', '{"days": 3}')""", now - timedelta(hours=1))


async def seed_gritting(db: Database, now: datetime) -> None:
    line = json.dumps({"type": "LineString", "coordinates": [[-2.62, 51.44], [-2.61, 51.445]]})
    await db.execute("""
        INSERT INTO road_depots (depot_id, name, lon, lat) VALUES ('rd-1', 'Depot', -2.6, 51.45);
        INSERT INTO gritting_routes (route_id, name, depot_id, vehicles, salt_capacity_kg)
        VALUES ('route-1', 'North loop', 'rd-1', 1, 6000)""")
    await db.execute("""
        INSERT INTO road_segments (segment_id, name, route_id, priority, length_m, width_m, geometry, mid_lon,
            mid_lat, start_node, end_node) VALUES
        ('seg-1', 'Hill Road', 'route-1', 1, 800, 7.3, $1::jsonb, -2.615, 51.4425, 'a', 'b'),
        ('seg-2', 'Bridge Street', 'route-1', 2, 400, 6.5, $1::jsonb, -2.605, 51.4475, 'b', 'c')""", line)
    run_id = await db.fetchval("""
        INSERT INTO gritting_runs (computed_at, as_of, window_start, window_end, inputs, warnings)
        VALUES ($1::timestamptz, $1, $1, $1::timestamptz + interval '12 hours', '{}', '[]') RETURNING run_id""",
        now - timedelta(minutes=15))
    await db.execute("""
        INSERT INTO gritting_segment_decisions (run_id, segment_id, route_id, rst_now_c, rst_min_c, rst_min_at,
            frost_point_c, surface_state, source, action, reason, spread_rate_g_m2, salt_kg) VALUES
        ($1, 'seg-1', 'route-1', 0.4, -2.1, $2, -1.0, 'damp', 'sensor', 'treat', 'RST -2.1 below frost point', 10, 58),
        ($1, 'seg-2', 'route-1', 2.0, 0.8, $2, -1.0, 'dry', 'forecast', 'monitor', 'RST within 1 degC', NULL, 0)""",
                     run_id, now + timedelta(hours=6))
    await db.execute("""
        INSERT INTO gritting_route_decisions (run_id, route_id, send, decision, reason, treat_segments, salt_kg,
            freeze_at, latest_start)
        VALUES ($1, 'route-1', true, 'send', '1 segment below frost point by 03:00', 1, 58, $2, $3)""",
                     run_id, now + timedelta(hours=6), now + timedelta(hours=4))
