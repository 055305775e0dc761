"""Migration 0014 on a real database: bins registered with the old meaning of sensor height
(above the rim, with bin_depth_mm measured from the sensor) read the same after it."""

import json

import pytest

from cityops.errors import StorageError
from cityops.settings import StorageSettings
from cityops.storage import Database, migrate
from cityops.storage.migrations import discover
from rules.bins.fill import BinCalibration, fill_from_pings

BEFORE = [m for m in discover() if m.version < 14]
THROUGH = [m for m in discover() if m.version <= 14]

BINS = {  # device_id: (bin_depth_mm, sensor_height_mm) as stored before 0014
    "old-bin": (1300, 300),      # old meaning: sensor 1300 mm above the bottom, 300 mm above the rim
    "old-rim": (1100, 0),        # old meaning: the sensor sat on the rim
    "new-bin": (1000, 1300),     # already the new meaning (the demo town, written by SQL)
    "no-height": (1000, None),   # nothing to convert
}


async def test_0014_converts_old_rows_keeps_new_ones_and_audits_each(fresh_database_url: str) -> None:
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, StorageSettings(), BEFORE)
        for device_id, (depth, height) in BINS.items():
            await db.execute("INSERT INTO devices (device_id, kind, bin_depth_mm, sensor_height_mm, sensor_type) "
                             "VALUES ($1, 'bin', $2, $3, 'jsn-sr04t')", device_id, depth, height)
        await db.execute("INSERT INTO devices (device_id, kind) VALUES ('a-frog', 'frog')")
        report = await migrate(db, StorageSettings(), THROUGH)
        rows = {r["device_id"]: (r["bin_depth_mm"], r["sensor_height_mm"]) for r in await db.fetch(
            "SELECT device_id, bin_depth_mm, sensor_height_mm FROM devices")}
        events = {r["device_id"]: json.loads(r["detail"]) for r in await db.fetch(
            "SELECT device_id, detail FROM device_events WHERE action = 'updated'")}
    assert [m.version for m in report.applied] == [14]
    # the SQL comment's conversion: height = old depth, depth = old depth - old height
    assert rows == {"old-bin": (1000, 1300), "old-rim": (1100, 1100), "new-bin": (1000, 1300),
                    "no-height": (1000, None), "a-frog": (None, None)}
    assert events == {
        "old-bin": {"migration": "0014_bin_sensor_height", "sensor_height_mm": 1300, "bin_depth_mm": 1000,
                    "was": {"bin_depth_mm": 1300, "sensor_height_mm": 300}},
        "old-rim": {"migration": "0014_bin_sensor_height", "sensor_height_mm": 1100, "bin_depth_mm": 1100,
                    "was": {"bin_depth_mm": 1100, "sensor_height_mm": 0}}}


async def test_a_converted_bin_reads_the_fill_its_old_numbers_meant(fresh_database_url: str) -> None:
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, StorageSettings(), BEFORE)
        await db.execute("INSERT INTO devices (device_id, kind, bin_depth_mm, sensor_height_mm, sensor_type) "
                         "VALUES ('old-bin', 'bin', 1300, 300, 'jsn-sr04t')")
        await migrate(db, StorageSettings(), THROUGH)
        row = await db.fetchrow("SELECT * FROM devices WHERE device_id = 'old-bin'")
    calibration = BinCalibration.for_sensor(row["sensor_height_mm"], row["bin_depth_mm"], row["sensor_type"])
    # old meaning: 1300 mm sensor to bottom, 300 mm sensor to rim; an echo at 800 mm is
    # (1300 - 800) / (1300 - 300) = 50 % full, and at 300 mm (the rim) 100 %
    assert fill_from_pings([800.0], calibration).fill == pytest.approx(0.5)
    assert fill_from_pings([300.0], calibration).fill == pytest.approx(1.0)


async def test_after_0014_the_database_refuses_a_sensor_below_the_bin_depth(fresh_database_url: str) -> None:
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, StorageSettings(), THROUGH)
        with pytest.raises(StorageError, match="devices_sensor_height_above_bottom_check") as refused:
            await db.execute("INSERT INTO devices (device_id, kind, bin_depth_mm, sensor_height_mm) "
                             "VALUES ('bad-bin', 'bin', 1000, 40)")
    assert refused.value.sqlstate == "23514"      # check_violation
