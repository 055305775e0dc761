"""The write path (idempotent, counts new rows) and hourly statistics on plain PostgreSQL."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityops.errors import StorageError
from cityops.storage import Database, hourly_stats, insert_dead_letter, insert_readings

T0 = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)


def frog_rows(device: str, count: int, start: datetime = T0) -> list[tuple]:
    return [(device, start + timedelta(minutes=5 * i), 18.0 + i % 5, 60.0 + i % 7) for i in range(count)]


async def test_new_rows_are_counted_and_exact_duplicates_dropped(db: Database, unique: str) -> None:
    rows = frog_rows(f"{unique}-a", 24)
    assert await insert_readings(db, "frog", rows) == 24
    assert await insert_readings(db, "frog", rows) == 0
    overlapping = rows[12:] + frog_rows(f"{unique}-a", 6, start=T0 + timedelta(hours=2))
    assert await insert_readings(db, "frog", overlapping) == 6
    stored = await db.fetchval("SELECT count(*) FROM frog_readings WHERE device_id = $1", f"{unique}-a")
    assert stored == 30


async def test_a_batch_repeating_a_reading_stores_it_once(db: Database, unique: str) -> None:
    row = (f"{unique}-b", T0, 20.5, 55.0)
    assert await insert_readings(db, "frog", [row, row, row]) == 1


async def test_the_first_copy_of_a_reading_wins(db: Database, unique: str) -> None:
    device = f"{unique}-c"
    await insert_readings(db, "frog", [(device, T0, 20.0, 50.0)])
    await insert_readings(db, "frog", [(device, T0, 99.0, 99.0)])
    assert await db.fetchval("SELECT air_temp_c FROM frog_readings WHERE device_id = $1", device) == 20.0


async def test_every_kind_has_a_working_write_path(db: Database, unique: str) -> None:
    road = [(f"{unique}-r", T0, -1.5, 0.5, "wet", 52.48, -1.89),
            (f"{unique}-r", T0, -1.5, 0.5, "wet", None, None)]
    bin_ = [(f"{unique}-w", T0, 420.0, 0.35, 12.0, 2.0)]
    assert await insert_readings(db, "road", road) == 1
    assert await insert_readings(db, "bin", bin_) == 1


async def test_rows_of_the_wrong_shape_or_kind_are_refused(db: Database, unique: str) -> None:
    with pytest.raises(StorageError, match="need 4 values"):
        await insert_readings(db, "frog", [(f"{unique}-d", T0, 20.0)])
    with pytest.raises(StorageError, match="unknown device kind"):
        await insert_readings(db, "lamp", [(f"{unique}-d", T0)])
    with pytest.raises(StorageError) as caught:
        await insert_readings(db, "road", [(f"{unique}-d", T0, 1.0, 1.0, "slushy", None, None)])
    assert caught.value.sqlstate == "23514"  # check_violation: nothing half-written
    assert await insert_readings(db, "frog", []) == 0


async def test_hourly_stats_match_the_readings(db: Database, unique: str) -> None:
    device = f"{unique}-h"
    rows = frog_rows(device, 36)  # three hours of 5-minute readings
    await insert_readings(db, "frog", rows)
    stats = await hourly_stats(db, "frog", T0, T0 + timedelta(hours=3), [device])
    assert [s.bucket for s in stats] == [T0 + timedelta(hours=h) for h in range(3)]
    for hour, stat in enumerate(stats):
        hour_rows = rows[hour * 12:(hour + 1) * 12]
        temps = [r[2] for r in hour_rows]
        assert stat.readings == 12
        assert stat.values["air_temp_avg"] == pytest.approx(sum(temps) / 12)
        assert stat.values["air_temp_min"] == min(temps)
        assert stat.values["rh_max"] == max(r[3] for r in hour_rows)


async def test_hourly_stats_respect_the_window_and_devices(db: Database, unique: str) -> None:
    await insert_readings(db, "frog", frog_rows(f"{unique}-x", 24) + frog_rows(f"{unique}-y", 24))
    only_x = await hourly_stats(db, "frog", T0 + timedelta(hours=1), T0 + timedelta(hours=2), [f"{unique}-x"])
    assert [(s.device_id, s.bucket) for s in only_x] == [(f"{unique}-x", T0 + timedelta(hours=1))]


async def test_dead_letters_keep_topic_payload_and_reason(db: Database, unique: str) -> None:
    topic = f"cityops/v1/devices/{unique}/telemetry"
    await insert_dead_letter(db, topic=topic, payload=b"\xff not json", reason="bad JSON", device_id=unique)
    [row] = await db.fetch(
        "SELECT device_id, reason, payload, received_at FROM dead_letters WHERE topic = $1", topic)
    assert (row["device_id"], row["reason"], row["payload"]) == (unique, "bad JSON", b"\xff not json")
    assert row["received_at"] is not None


_keys = st.tuples(st.integers(0, 3), st.integers(0, 20))  # (device number, minute)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(_keys, max_size=30), min_size=1, max_size=4))
async def test_new_row_counts_add_up_to_the_distinct_readings_however_batches_repeat(
        db: Database, batches: list[list[tuple[int, int]]]) -> None:
    """Property: whatever the batches and repeats, the new-row counts sum to the distinct keys
    and a replay of everything adds nothing."""
    run = uuid.uuid4().hex[:8]

    def row(key: tuple[int, int]) -> tuple:
        return (f"p{run}-{key[0]}", T0 + timedelta(minutes=key[1]), 20.0, 50.0)

    counted = 0
    for batch in batches:
        counted += await insert_readings(db, "frog", [row(k) for k in batch])
    distinct = {k for batch in batches for k in batch}
    assert counted == len(distinct)
    assert await insert_readings(db, "frog", [row(k) for batch in batches for k in batch]) == 0
