"""The alerts runner over real tables: every rule's facts as the other parts write them, the
as-of time, rules whose tables are missing, and the `cityops alerts` commands."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from alerts.errors import AlertNotFound, InvalidPreference, InvalidTransition
from alerts.runner import AlertsRunner
from alerts.sealing import Sealer, new_key
from cityops.settings import AlertsSettings, load_settings
from cityops.storage import Database
from cityops_cli.main import build_parser

NOW = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
SETTINGS = AlertsSettings(stuck_readings=6, stuck_after=timedelta(hours=2))


class Clock:
    def __init__(self, at: datetime = NOW, *, cycles_seen_after: int = 6) -> None:
        self.at = at
        self.reads = 0  # every cycle reads it: how a test knows cycles have run
        self.cycles_seen = asyncio.Event()
        self._enough = cycles_seen_after

    def now(self) -> datetime:
        self.reads += 1
        if self.reads >= self._enough:
            self.cycles_seen.set()
        return self.at



async def device(db: Database, device_id: str, kind: str, *, seen: datetime | None = NOW,
                 battery_v: float | None = 3.9, household: str | None = None) -> None:
    await db.execute("INSERT INTO devices (device_id, kind, household_id, registered_at, last_seen, battery_v) "
                     "VALUES ($1, $2, $3, $4, $5, $6)", device_id, kind, household, NOW - timedelta(days=30),
                     seen, battery_v)


async def gritting_run(db: Database, as_of: datetime, rst_min_c: float, send: bool) -> None:
    await db.execute("INSERT INTO road_depots (depot_id, name, lon, lat) VALUES ('dep', 'Depot', -2.6, 51.45) "
                     "ON CONFLICT DO NOTHING")
    await db.execute("INSERT INTO gritting_routes (route_id, name, depot_id, vehicles, salt_capacity_kg) "
                     "VALUES ('P1', 'Priority 1 north', 'dep', 1, 6000) ON CONFLICT DO NOTHING")
    await db.execute(
        "INSERT INTO road_segments (segment_id, name, route_id, priority, length_m, width_m, geometry, mid_lon, "
        "mid_lat, start_node, end_node) VALUES ('seg-bridge', 'Cumberland Bridge', 'P1', 1, 120, 7.3, $1, -2.61, "
        "51.449, 'a', 'b') ON CONFLICT DO NOTHING",
        json.dumps({"type": "LineString", "coordinates": [[-2.611, 51.449], [-2.609, 51.449]]}))
    run_id = await db.fetchval("INSERT INTO gritting_runs (as_of, window_start, window_end, inputs, warnings) "
                               "VALUES ($1, $1, $2, '{}', '[]') RETURNING run_id", as_of, as_of + timedelta(hours=12))
    await db.execute("INSERT INTO gritting_segment_decisions (run_id, segment_id, route_id, rst_min_c, rst_min_at, "
                     "source, action, reason, hazard_at, surface_state) VALUES ($1, 'seg-bridge', 'P1', $2, $3, "
                     "'sensors', $4, 'wet road and lowest RST', $5, 'wet')",
                     run_id, rst_min_c, as_of + timedelta(hours=6), "treat" if rst_min_c <= 0.5 else "none",
                     as_of + timedelta(hours=5))
    await db.execute("INSERT INTO gritting_route_decisions (run_id, route_id, send, decision, reason, treat_segments, "
                     "salt_kg, latest_start) VALUES ($1, 'P1', $2, $3, 'frost', 1, 84.1, $4)", run_id, send,
                     "send" if send else "not_needed",
                     as_of + timedelta(hours=4))


async def open_causes(db: Database) -> dict[str, dict[str, object]]:
    rows = await db.fetch("SELECT cause, severity, household_id, area, route_id, device_id FROM alerts "
                          "WHERE state <> 'resolved'")
    return {r["cause"]: dict(r) for r in rows}


async def test_every_rule_opens_from_the_tables_the_other_parts_write(fresh_db: Database) -> None:
    # damp: a frog box whose latest assessment is high (an earlier one was low)
    await device(fresh_db, "frog-a", "frog", household="h-1")
    await fresh_db.execute("INSERT INTO damp_home_settings (household_id, area) VALUES ('h-1', 'Easton')")
    for hours, level in ((30, "low"), (2, "high")):
        await fresh_db.execute(
            "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d, "
            "condensation_hours_7d, reasons, changes, faults, metrics) "
            "VALUES ('frog-a', $1, 'h-1', $2, 1.2, 40, 3, '[]', '[]', '[]', '{}')", NOW - timedelta(hours=hours), level)
    # bins: one about to overflow with a fire event, one knocked over a day ago (too old)
    await device(fresh_db, "bin-a", "bin")
    await device(fresh_db, "bin-b", "bin")
    await fresh_db.execute("INSERT INTO bin_priorities (device_id, data_until, status, fill, overflow_risk, score, "
                      "mandatory, reasons) VALUES ('bin-a', $1, 'ok', 0.92, 0.85, 90, true, '')",
                      NOW - timedelta(minutes=30))
    await fresh_db.execute("INSERT INTO bin_events (device_id, ts, kind, value, message) VALUES "
                      "('bin-a', $1, 'fire', 74, 'possible fire: 74 °C'), ('bin-b', $2, 'tilt', 80, 'knocked over')",
                      NOW - timedelta(hours=1), NOW - timedelta(days=1))
    # device health: silent for 2 h, a low battery, a stuck sensor (6 identical readings over 2.5 h)
    await device(fresh_db, "frog-silent", "frog", seen=NOW - timedelta(hours=2))
    await device(fresh_db, "frog-flat", "frog", battery_v=3.3)
    every_half_hour = "$1::timestamptz - i * interval '30 minutes'"
    await fresh_db.execute("INSERT INTO frog_readings (device_id, ts, air_temp_c, rh_pct) "
                      f"SELECT 'frog-flat', {every_half_hour}, 19.5, 55 FROM generate_series(0, 5) i", NOW)
    await fresh_db.execute("INSERT INTO frog_readings (device_id, ts, air_temp_c, rh_pct) "
                      f"SELECT 'frog-a', {every_half_hour}, 19 + i * 0.1, 70 FROM generate_series(0, 5) i", NOW)
    # ingest: 120 dead letters in the last 15 minutes
    await fresh_db.execute("INSERT INTO dead_letters (received_at, topic, reason, payload) "
                      "SELECT $1::timestamptz - i * interval '5 seconds', 't', 'malformed', '\\x00' "
                      "FROM generate_series(1, 120) i", NOW)
    # gritting: the latest run as of now says the bridge freezes and the route goes out
    await gritting_run(fresh_db, NOW - timedelta(hours=1), -2.5, True)
    await gritting_run(fresh_db, NOW + timedelta(hours=1), 5.0, False)   # a run "from the future": not yet

    report = await AlertsRunner(fresh_db, SETTINGS, clock=Clock()).evaluate()
    assert report.notes == ()
    causes = await open_causes(fresh_db)
    assert set(causes) == {"damp_risk:frog-a", "bin_overflow:no-depot:no-round", "bin_fire:bin-a",
                           "device_offline:frog-silent", "battery_low:frog-flat", "sensor_stuck:frog-flat",
                           "dead_letter_spike:ingest", "route_treatment:P1:wet_road"}
    assert causes["damp_risk:frog-a"]["household_id"] == "h-1" and causes["damp_risk:frog-a"]["area"] == "Easton"
    assert causes["bin_fire:bin-a"]["severity"] == "critical"
    assert causes["battery_low:frog-flat"]["severity"] == "critical"
    assert causes["route_treatment:P1:wet_road"]["route_id"] == "P1"
    title = await fresh_db.fetchval("SELECT title FROM alerts WHERE cause = 'route_treatment:P1:wet_road'")
    assert title == "Priority 1 north needs treatment (wet or damp roads freezing): 1 segment, from 22:00 UTC"
    assert report.transitions == {"opened": 8}

    # later: the device is retired, the newer gritting run is now current, the dead letters age out
    await fresh_db.execute("UPDATE devices SET status = 'retired' WHERE device_id = 'frog-silent'")
    later = Clock(NOW + timedelta(hours=2))
    await AlertsRunner(fresh_db, SETTINGS, clock=later).evaluate()            # the clear spell starts
    later.at += SETTINGS.clear_hold
    done = await AlertsRunner(fresh_db, SETTINGS, clock=later).evaluate()
    assert "device_offline:frog-silent" not in await open_causes(fresh_db)
    assert "route_treatment:P1:wet_road" not in await open_causes(fresh_db)
    assert "dead_letter_spike:ingest" not in await open_causes(fresh_db)
    assert done.transitions["resolved"] >= 3


async def test_a_gritting_run_whose_night_is_over_raises_nothing_and_its_alerts_clear(fresh_db: Database) -> None:
    await gritting_run(fresh_db, NOW - timedelta(hours=1), -2.5, True)   # window: to NOW + 11 h
    clock = Clock()
    await AlertsRunner(fresh_db, SETTINGS, clock=clock).evaluate()
    assert "route_treatment:P1:wet_road" in await open_causes(fresh_db)
    clock.at = NOW + timedelta(hours=12)  # the run's window has ended and no new run came
    report = await AlertsRunner(fresh_db, SETTINGS, clock=clock).evaluate()
    assert any("no current gritting run" in note for note in report.notes)
    clock.at += SETTINGS.clear_hold
    await AlertsRunner(fresh_db, SETTINGS, clock=clock).evaluate()
    assert "route_treatment:P1:wet_road" not in await open_causes(fresh_db)


async def test_rules_whose_tables_are_missing_keep_their_alerts_and_say_why(fresh_db: Database) -> None:
    await gritting_run(fresh_db, NOW - timedelta(hours=1), -2.5, True)
    clock = Clock()
    await AlertsRunner(fresh_db, SETTINGS, clock=clock).evaluate()
    assert "route_treatment:P1:wet_road" in await open_causes(fresh_db)
    await fresh_db.execute("DROP TABLE gritting_plans, gritting_route_decisions, gritting_segment_decisions, "
                      "gritting_runs CASCADE")
    clock.at += timedelta(hours=3)
    report = await AlertsRunner(fresh_db, SETTINGS, clock=clock).evaluate()
    assert report.notes and "gritting rules not evaluated" in report.notes[0] and "gritting_runs" in report.notes[0]
    assert "route_treatment:P1:wet_road" in await open_causes(fresh_db)
    assert report.transitions == {"escalated": 1}  # not resolved, but still escalated: nobody acknowledged


CLI_KEY = new_key()


async def cli(settings_url: str, *argv: str) -> int:
    args = build_parser().parse_args(["alerts", *argv])
    settings = load_settings(database_url=settings_url)
    settings.alerts.secret_keys = [SecretStr(CLI_KEY)]          # webhook secrets are stored sealed
    result: int = await args.handler(args, settings)
    return result


async def test_commands_subscribe_run_list_ack_show_and_retry(fresh_db: Database, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    url = fresh_db.url
    now = datetime.now(UTC)
    await fresh_db.execute("INSERT INTO devices (device_id, kind, registered_at, last_seen, battery_v) "
                      "VALUES ('frog-cli', 'frog', $1, $2, 3.4)", now - timedelta(days=1), now)
    assert await cli(url, "subscribe", "--user", "ops", "--role", "operator", "--channel", "feed") == 0
    assert await cli(url, "subscribe", "--user", "hook", "--role", "operator", "--channel", "webhook",
                     "--to", "http://127.0.0.1:9/nothing", "--rules", "battery_low") == 0
    out = capsys.readouterr().out
    assert "subscription 1: ops (operator) by feed" in out and "webhook secret (shown once" in out
    secret = out.split("with it): ")[1].strip()
    stored = await fresh_db.fetchval("SELECT secret FROM alert_subscriptions WHERE subscription_id = 2")
    assert secret not in stored and Sealer([CLI_KEY]).open(stored) == secret     # shown once, stored sealed
    with pytest.raises(InvalidPreference, match="household_id"):
        await cli(url, "subscribe", "--user", "t", "--role", "householder", "--channel", "feed")
    with pytest.raises(InvalidPreference, match="quiet"):
        await cli(url, "subscribe", "--user", "t", "--role", "operator", "--channel", "feed", "--quiet", "late")

    assert await cli(url, "run") == 0
    out = capsys.readouterr().out
    assert "1 opened" in out and "1 sent" in out and "1 to retry" in out
    alert_id = await fresh_db.fetchval("SELECT alert_id FROM alerts")
    assert await cli(url, "list") == 0
    assert f"{alert_id:>6}  warning  open" in capsys.readouterr().out
    assert await cli(url, "ack", str(alert_id), "--by", "amy") == 0
    assert await cli(url, "ack", str(alert_id), "--by", "amy") == 0
    assert capsys.readouterr().out.splitlines() == [f"alert {alert_id} acknowledged by amy",
                                                    f"alert {alert_id} was already acknowledged"]
    with pytest.raises(AlertNotFound):
        await cli(url, "ack", "999", "--by", "amy")
    assert await cli(url, "show", str(alert_id)) == 0
    history = capsys.readouterr().out
    for kind in ("opened", "sent", "failed", "acknowledged"):
        assert f"  {kind}" in history, history

    outbox_id = await fresh_db.fetchval("SELECT outbox_id FROM alert_outbox WHERE channel = 'webhook'")
    await fresh_db.execute("UPDATE alert_outbox SET status = 'dead' WHERE outbox_id = $1", outbox_id)
    assert await cli(url, "outbox", "--dead") == 0
    assert "Connect" in capsys.readouterr().out
    assert await cli(url, "retry", str(outbox_id)) == 0
    assert await fresh_db.fetchval("SELECT status FROM alert_outbox WHERE outbox_id = $1", outbox_id) == "pending"
    with pytest.raises(AlertNotFound):
        await cli(url, "retry", str(outbox_id))

    await fresh_db.execute("UPDATE alert_subscriptions SET timezone = 'Nowhere/Town', quiet_start = '22:00', "
                      "quiet_end = '07:00' WHERE subscription_id = 1")
    assert await cli(url, "run") == 0
    assert "1 subscriptions skipped" in capsys.readouterr().out
    assert await cli(url, "subscriptions") == 0
    assert "PROBLEM: timezone: unknown time zone 'Nowhere/Town'" in capsys.readouterr().out
    assert await cli(url, "unsubscribe", "1") == 0
    assert await fresh_db.fetchval("SELECT enabled FROM alert_subscriptions WHERE subscription_id = 1") is False

    await fresh_db.execute("UPDATE alerts SET state = 'resolved'")
    with pytest.raises(InvalidTransition):
        await cli(url, "ack", str(alert_id), "--by", "amy")


def test_errors_print_as_error_and_hint(fresh_database_url: str) -> None:
    env = {**os.environ, "CITYOPS_DATABASE_URL": fresh_database_url}
    done = subprocess.run([sys.executable, "-m", "cityops_cli", "alerts", "list"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 1
    assert "error: database error" in done.stderr and "hint: run `cityops db migrate` first" in done.stderr


async def test_the_loop_runs_cycles_on_its_clock_until_stopped(fresh_db: Database) -> None:
    await device(fresh_db, "frog-loop", "frog", battery_v=3.4)
    await fresh_db.execute(
        "INSERT INTO alert_subscriptions (user_id, role, channel) VALUES ('ops', 'operator', 'feed')")
    clock = Clock()
    runner = AlertsRunner(fresh_db, SETTINGS, clock=clock)
    stop = asyncio.Event()
    loop = asyncio.create_task(runner.run_forever(0.05, stop))
    await asyncio.wait_for(clock.cycles_seen.wait(), 10)  # several cycles have run
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert await fresh_db.fetchval("SELECT count(*) FROM alerts") == 1          # many cycles, one alert
    assert await fresh_db.fetchval("SELECT count(*) FROM notifications") == 1   # and one notification
    # the pure parts saw the injected time, not the wall clock
    assert await fresh_db.fetchval("SELECT opened_at FROM alerts") == NOW


ROUTES = ("one", "two", "three")
WET_ROAD = "wet road and lowest RST -1.5 °C at 03:00, at or below the trigger +1.0 °C; spread 16 g/m²"


async def network(db: Database, routes: tuple[str, ...] = ROUTES, per_route: int = 20) -> None:
    """Routes with `per_route` segments each (seg-<route>-NN, priority 1)."""
    await db.execute("INSERT INTO road_depots (depot_id, name, lon, lat) VALUES ('dep', 'Depot', -2.6, 51.45)")
    for route_id in routes:
        await db.execute("INSERT INTO gritting_routes (route_id, name, depot_id, vehicles, salt_capacity_kg) "
                         "VALUES ($1, $2, 'dep', 1, 6000)", route_id, f"Route {route_id} north")
        await db.execute(
            "INSERT INTO road_segments (segment_id, name, route_id, priority, length_m, width_m, geometry, mid_lon, "
            "mid_lat, start_node, end_node) SELECT format('seg-%s-%s', $1::text, lpad(i::text, 2, '0')), "
            "format('Street %s', i), $1, 1, 100, 7.3, '{}', -2.6, 51.45, format('a%s', i), format('b%s', i) "
            "FROM generate_series(1, $2) i", route_id, per_route)


async def freezing(db: Database, as_of: datetime, treat: dict[str, int], decision: str = "send") -> int:
    """A gritting run in which the first treat[route] segments of each route need treatment."""
    run_id: int = await db.fetchval("INSERT INTO gritting_runs (as_of, window_start, window_end, inputs, warnings) "
                                    "VALUES ($1, $1, $2, '{}', '[]') RETURNING run_id", as_of,
                                    as_of + timedelta(hours=12))
    for route_id, n in treat.items():
        await db.execute(
            "INSERT INTO gritting_segment_decisions (run_id, segment_id, route_id, rst_min_c, rst_min_at, source, "
            "action, reason, hazard_at, surface_state) "
            "SELECT $1, s.segment_id, s.route_id, CASE WHEN i <= $3 THEN -1.5 ELSE 3.0 END, $4, 'sensors', "
            "CASE WHEN i <= $3 THEN 'treat' ELSE 'none' END, CASE WHEN i <= $3 THEN $5 ELSE 'dry road' END, "
            "CASE WHEN i <= $3 THEN $6::timestamptz END, 'wet' "
            "FROM (SELECT segment_id, route_id, row_number() OVER (ORDER BY segment_id) AS i FROM road_segments "
            "WHERE route_id = $2) s", run_id, route_id, n, NOW + timedelta(hours=9), WET_ROAD,
            NOW + timedelta(hours=3, minutes=30))
        await db.execute("INSERT INTO gritting_route_decisions (run_id, route_id, send, decision, reason, "
                         "treat_segments, salt_kg, latest_start) VALUES ($1, $2, $3, $4, $5, $6, 900, $7)",
                         run_id, route_id, decision == "send" and n > 0, decision if n else "not_needed",
                         f"{decision}: {n} segments", n, NOW + timedelta(hours=2))
    return run_id


async def bins(db: Database, risk: dict[int, float]) -> None:
    """60 bins on two rounds from depot 'east' (Mondays: bin-00..29, Thursdays: bin-30..59), and a plan
    for tomorrow's shift with bin-00..04 on truck 1; bin_priorities risk[i] (default 0.8)."""
    await db.execute("INSERT INTO bin_depots (depot_id, lon, lat, trucks, capacity_l) VALUES ('east', -2.5, 51.4, 2, "
                     "9000) ON CONFLICT DO NOTHING")
    await db.execute("INSERT INTO devices (device_id, kind, registered_at, last_seen, battery_v) "
                     "SELECT format('bin-%s', lpad(i::text, 2, '0')), 'bin', $1, $2, 3.9 FROM generate_series(0, 59) i "
                     "ON CONFLICT DO NOTHING", NOW - timedelta(days=30), NOW)
    await db.execute("INSERT INTO bin_settings (device_id, collection_weekdays, depot_id) "
                     "SELECT format('bin-%s', lpad(i::text, 2, '0')), CASE WHEN i < 30 THEN '{0}'::smallint[] "
                     "ELSE '{3}'::smallint[] END, 'east' FROM generate_series(0, 59) i ON CONFLICT DO NOTHING")
    if not await db.fetchval("SELECT count(*) FROM bin_plans"):
        plan = await db.fetchval(
            "INSERT INTO bin_plans (depot_id, shift_start, feasible, distance_m, solve_s, skipped, missed, notes, "
            "geojson) VALUES ('east', $1, true, 1000, 1, '[]', '[]', '[]', '[]') RETURNING plan_id",
            NOW + timedelta(hours=12))
        await db.execute("INSERT INTO bin_plan_stops (plan_id, truck, seq, device_id, arrive, depart, load_after_l) "
                         "SELECT $1, 1, i, format('bin-%s', lpad(i::text, 2, '0')), $2, $2, 100 "
                         "FROM generate_series(0, 4) i", plan, NOW + timedelta(hours=12))
    await db.execute("INSERT INTO bin_priorities (device_id, data_until, status, fill, overflow_risk, score, "
                     "mandatory, reasons) SELECT format('bin-%s', lpad(i::text, 2, '0')), $1, 'ok', 0.9, "
                     "coalesce(($2::jsonb ->> i::text)::real, 0.8), 80, true, '' FROM generate_series(0, 59) i",
                     NOW - timedelta(minutes=10), json.dumps({str(k): v for k, v in risk.items()}))


async def open_alerts(db: Database) -> dict[str, dict[str, object]]:
    rows = await db.fetch("SELECT alert_id, cause, title, severity, jsonb_array_length(members) AS n FROM alerts "
                          "WHERE state <> 'resolved'")
    return {r["cause"]: dict(r) for r in rows}


async def test_three_routes_of_twenty_freezing_segments_and_sixty_bins_give_five_alerts(fresh_db: Database) -> None:
    await network(fresh_db)
    await freezing(fresh_db, NOW - timedelta(minutes=5), {"one": 20, "two": 20, "three": 20})
    await bins(fresh_db, {})
    await fresh_db.execute(
        "INSERT INTO alert_subscriptions (user_id, role, channel) VALUES ('ops', 'operator', 'feed')")
    report = await AlertsRunner(fresh_db, SETTINGS, clock=Clock()).cycle()
    alerts = await open_alerts(fresh_db)
    assert {c: a["n"] for c, a in alerts.items()} == {
        "route_treatment:one:wet_road": 20, "route_treatment:two:wet_road": 20, "route_treatment:three:wet_road": 20,
        "bin_overflow:east:mon": 30, "bin_overflow:east:thu": 30}    # 5 alerts, not 120
    assert report.transitions == {"opened": 5} and report.sent == 5
    assert alerts["route_treatment:one:wet_road"]["title"] == \
        "Route one north needs treatment (wet or damp roads freezing): 20 segments, from 21:30 UTC"
    assert alerts["bin_overflow:east:mon"]["title"] == "Bins round Mon, depot east: 30 bins predicted to overflow"
    # the members, as the API reads them, and in the feed's text
    from ops_api.queries.alerts import get_alert
    monday = await get_alert(fresh_db, int(alerts["bin_overflow:east:mon"]["alert_id"]))  # type: ignore[call-overload]
    assert monday["members"][0] == {"id": "bin-00", "name": "", "value": 0.800000011920929, "at": None,
                                    "note": "90% full, overflow risk 80%; truck 1 of the Tue 06:00 UTC plan"}
    assert [m["id"] for m in monday["members"]][-1] == "bin-29"
    body = await fresh_db.fetchval("SELECT body FROM notifications n JOIN alerts a USING (alert_id) "
                              "WHERE a.cause = 'route_treatment:two:wet_road'")
    assert "Route decision: send: 20 segments" in body and "- Street 1 (seg-two-01): priority 1, lowest -1.5 °C" in body
    assert "- ... and 0 more" not in body and body.count("\n- ") == 20


async def test_a_groups_members_change_in_place_and_an_empty_group_clears(fresh_db: Database) -> None:
    await network(fresh_db, ("one", "two"))
    await bins(fresh_db, {})
    await freezing(fresh_db, NOW - timedelta(minutes=5), {"one": 4, "two": 6})
    await fresh_db.execute(
        "INSERT INTO alert_subscriptions (user_id, role, channel) VALUES ('ops', 'operator', 'feed')")
    clock = Clock()
    await AlertsRunner(fresh_db, SETTINGS, clock=clock).cycle()
    before = await open_alerts(fresh_db)
    assert {c: a["n"] for c, a in before.items()} == {"route_treatment:one:wet_road": 4,
                                                      "route_treatment:two:wet_road": 6,
                                                      "bin_overflow:east:mon": 30, "bin_overflow:east:thu": 30}
    # a new run: route one has 7 segments to treat, route two none; bin-00 is in the hold zone, bin-01 clear;
    # and a new runner (a restart): the same alerts, updated, and nothing notified again
    clock.at += timedelta(minutes=10)
    await freezing(fresh_db, clock.at - timedelta(minutes=5), {"one": 7, "two": 0})
    await fresh_db.execute("UPDATE bin_priorities SET overflow_risk = CASE device_id WHEN 'bin-00' THEN 0.4 "
                      "WHEN 'bin-01' THEN 0.2 ELSE overflow_risk END")
    report = await AlertsRunner(fresh_db, SETTINGS, clock=clock).cycle()
    after = await open_alerts(fresh_db)
    assert {c: a["alert_id"] for c, a in after.items()} == {c: a["alert_id"] for c, a in before.items()}
    assert after["route_treatment:one:wet_road"]["n"] == 7 and after["bin_overflow:east:mon"]["n"] == 29
    assert report.transitions == {"updated": 2} and report.queued == 0
    assert await fresh_db.fetchval("SELECT count(*) FROM notifications") == 4
    updates = await fresh_db.fetch("SELECT a.cause, e.detail FROM alert_events e JOIN alerts a USING (alert_id) "
                              "WHERE e.kind = 'updated' ORDER BY a.cause")
    assert [(u["cause"], u["detail"]) for u in updates] == [
        ("bin_overflow:east:mon", "30 -> 29 members: left bin-01"),
        ("route_treatment:one:wet_road", "4 -> 7 members: joined seg-one-05, seg-one-06, seg-one-07")]
    # route two's group is empty: it clears after the hold, alone
    clock.at += SETTINGS.clear_hold
    report = await AlertsRunner(fresh_db, SETTINGS, clock=clock).cycle()
    assert report.transitions == {"resolved": 1, "escalated": 3}
    assert "route_treatment:two:wet_road" not in await open_alerts(fresh_db)


async def test_a_route_whose_decision_is_unknown_raises_a_critical_alert_to_patrol(fresh_db: Database) -> None:
    await network(fresh_db, ("one",), per_route=3)
    run_id = await freezing(fresh_db, NOW - timedelta(minutes=5), {"one": 0})
    await fresh_db.execute(
        "UPDATE gritting_segment_decisions SET rst_min_c = NULL, rst_min_at = NULL, action = 'monitor', "
                      "reason = 'no road surface temperature' WHERE segment_id <> 'seg-one-02'")
    await fresh_db.execute("UPDATE gritting_route_decisions SET decision = 'unknown', reason = 'UNKNOWN: 2 priority-1 "
                      "segment(s) have no usable road temperature' WHERE run_id = $1", run_id)
    await AlertsRunner(fresh_db, SETTINGS, clock=Clock()).evaluate()
    row = await fresh_db.fetchrow("SELECT cause, severity, title, members FROM alerts")
    assert (row["cause"], row["severity"]) == ("route_treatment:one:no_data", "critical")
    assert row["title"] == "Route one north: no usable road temperature, decide by patrol"
    assert [m["id"] for m in json.loads(row["members"])] == ["seg-one-01", "seg-one-03"]
