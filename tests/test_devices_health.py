"""Device health: pure rules on simulated series, and the same through the database
(battery history recorded by the 0006 trigger from ingest's own device-state updates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityops.storage import Database
from cityops.storage.devices import DeviceState, update_device_states
from devices.health import HealthInputs, HealthPolicy, assess, battery_outlook, stuck_for
from devices.health_query import device_health
from devices.registry import add_device
from tests.broker_helpers import frog

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)
POLICY = HealthPolicy()


def every(minutes: int, count: int, end: datetime = NOW) -> list[datetime]:
    return [end - timedelta(minutes=minutes * (count - 1 - k)) for k in range(count)]


def noisy(count: int, end: datetime = NOW) -> list[tuple[datetime, tuple[float | None, ...]]]:
    return [(ts, (18.0 + (k % 7) / 10, 60.0 + (k % 3))) for k, ts in enumerate(every(5, count, end))]


def healthy(**overrides: object) -> HealthInputs:
    base: dict[str, object] = {
        "device_id": "frog-1", "now": NOW, "last_seen": NOW - timedelta(minutes=3), "online": True,
        "firmware_version": "1.0.0", "battery": [(ts, 3.9) for ts in every(60, 24)],
        "readings": noisy(100), "lags_s": [2.0] * 100}
    return HealthInputs(**{**base, **overrides})  # type: ignore[arg-type]


def test_a_healthy_device_is_ok_with_no_reasons() -> None:
    health = assess(healthy())
    assert (health.state, health.reasons) == ("ok", [])
    assert health.battery_days_left is None and health.clock_drift_s == -2.0


def test_a_stuck_sensor_is_flagged_after_hours_of_identical_values() -> None:
    stuck = noisy(40, end=NOW - timedelta(hours=4)) + [(ts, (17.3, 55.0)) for ts in every(5, 49)]  # 4 h flat
    health = assess(healthy(readings=stuck))
    assert health.state == "critical" and health.reasons == ["sensor stuck: identical values for 4.0 h"]
    short = noisy(40, end=NOW - timedelta(hours=1)) + [(ts, (17.3, 55.0)) for ts in every(5, 13)]  # 1 h flat
    assert assess(healthy(readings=short)).state == "ok"


def test_a_dead_battery_and_a_falling_one() -> None:
    dead = assess(healthy(battery=[(ts, 3.6 - 0.02 * k) for k, ts in enumerate(every(60, 24))]))
    assert dead.state == "critical" and dead.reasons[0].startswith("battery dead (3.14 V)")
    # 0.1 V a day from 3.9: 6 days above 3.3 V
    falling = [(ts, 3.9 - 0.1 * (k / 24)) for k, ts in enumerate(every(60, 48))]
    outlook = battery_outlook(falling, POLICY)
    assert outlook is not None and outlook.trend_v_per_day == pytest.approx(-0.1, rel=1e-6)
    assert outlook.days_left == pytest.approx((3.9 - 0.1 * 47 / 24 - 3.3) / 0.1, rel=1e-6)
    health = assess(healthy(battery=falling))
    assert health.state == "warning" and health.reasons == [f"battery empty in {outlook.days_left:.1f} days"]
    few = battery_outlook(falling[-3:], POLICY)
    assert few is not None and few.days_left is None  # too few samples for a trend


def test_silence_offline_rejections_and_clock_drift_each_give_a_reason() -> None:
    health = assess(healthy(last_seen=NOW - timedelta(hours=7), online=False,
                            online_changed_at=NOW - timedelta(hours=7), dead_letters=60,
                            lags_s=[-300.0, -290.0]))
    assert health.state == "critical"
    assert health.reasons == ["silent for 7.0 h", "offline (Last Will) since 2026-01-10 05:00",
                              "38% of readings rejected", "clock ahead by 300 s"]
    assert assess(healthy(retired=True)).state == "retired"
    assert assess(healthy(last_seen=None)).state == "unknown"


@given(st.lists(st.tuples(st.integers(0, 500), st.sampled_from([1.0, 2.0])), max_size=40))
def test_stuck_never_longer_than_the_series(points: list[tuple[int, float]]) -> None:
    readings = [(NOW + timedelta(minutes=m), (v,)) for m, v in points]
    stuck = stuck_for(readings, 3)
    if stuck is not None:
        stamps = [ts for ts, _ in readings]
        assert timedelta(0) <= stuck <= max(stamps) - min(stamps)


async def test_health_from_the_database_flags_the_stuck_sensor_and_the_dead_battery(
        db: Database, unique: str) -> None:
    stuck, flat_battery, fine = f"{unique}-stuck", f"{unique}-dead", f"{unique}-fine"
    for device in (stuck, flat_battery, fine):
        await add_device(db, frog(device))
    now = datetime.now(UTC)
    stamps = every(5, 72, now - timedelta(minutes=1))  # the last 6 h
    rows = []
    for k, ts in enumerate(stamps):
        rows.append((stuck, ts, 19.5 if k > 12 else 18 + k / 10, 50.0))  # flat from the 14th on
        rows.append((flat_battery, ts, 18 + (k % 5) / 10, 60.0 + k % 2))
        rows.append((fine, ts, 18 + (k % 5) / 10, 60.0 + k % 2))
    await db.execute(
        "INSERT INTO frog_readings (device_id, ts, air_temp_c, rh_pct, received_at) "
        "SELECT d, t, a, r, t + interval '2 seconds' FROM unnest($1::text[], $2::timestamptz[], $3::real[], "
        "$4::real[]) AS u(d, t, a, r)",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])
    async with db.transaction() as conn:  # what ingest does after each flush
        for k, ts in enumerate(stamps[::6]):
            await update_device_states(conn, [
                DeviceState(stuck, last_seen=ts, battery_v=3.95, firmware_version="1.2.0"),
                DeviceState(flat_battery, last_seen=ts, battery_v=3.5 - 0.02 * k, firmware_version="1.2.0"),
                DeviceState(fine, last_seen=ts, battery_v=3.95, firmware_version="1.2.0")])
    assert await db.fetchval("SELECT count(*) FROM device_battery WHERE device_id = $1", flat_battery) == 12
    found = {h.device_id: h for h in await device_health(db, now, device_ids=[stuck, flat_battery, fine])}
    assert found[stuck].state == "critical" and found[stuck].reasons == \
        ["sensor stuck: identical values for 4.8 h"]  # 59 readings, 58 x 5 min
    assert found[flat_battery].state == "critical" and found[flat_battery].reasons[0] == "battery dead (3.28 V)"
    assert (found[fine].state, found[fine].firmware_version, found[fine].clock_drift_s) == ("ok", "1.2.0", -2.0)


# --- LoRaWAN devices (issue 22: health from the last uplink, status-event battery, frame-counter gaps) ---

def test_frames_lost_on_the_air_give_a_warning_then_a_critical() -> None:
    # 12 of 100 frames missing from the counter: above the tenth the policy warns at; 60 of 100 above half
    warn = assess(healthy(uplinks=88, frames_lost=12))
    assert warn.state == "warning" and warn.reasons == ["12% of LoRaWAN frames lost on the air in the last day "
                                                        "(12 of 100)"]
    assert warn.frames_lost_rate == pytest.approx(0.12)
    assert assess(healthy(uplinks=40, frames_lost=60)).state == "critical"
    # too few frames to judge a rate: 2 of 5 lost says nothing yet
    assert assess(healthy(uplinks=3, frames_lost=2)).state == "ok"


def test_a_lorawan_battery_percentage_warns_low_and_critical_near_empty() -> None:
    assert assess(healthy(battery_pct=55.0)).state == "ok"
    assert assess(healthy(battery_pct=18.0)).reasons == ["battery at 18 %"]
    assert assess(healthy(battery_pct=4.0)).state == "critical"


def test_a_device_reporting_hourly_is_not_called_silent_between_its_reports() -> None:
    # the default policy warns after 1 h of silence; a device asked to report every hour is silent
    # only after three missed reports, critical after twelve
    quiet = healthy(last_seen=NOW - timedelta(minutes=100), sample_interval_s=3600)
    assert assess(quiet).state == "ok"
    assert assess(healthy(last_seen=NOW - timedelta(minutes=100))).state == "warning"
    assert assess(healthy(last_seen=NOW - timedelta(hours=4), sample_interval_s=3600)).state == "warning"
    assert assess(healthy(last_seen=NOW - timedelta(hours=13), sample_interval_s=3600)).state == "critical"
