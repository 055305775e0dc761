"""`cityops bins assess` through `cityops_cli.main.main`: the runner's answers from CSV files, and
bad files refused with the line and field (exit 2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cityops.settings import StorageSettings
from cityops.storage import Database, migrate
from cityops_cli.main import main
from pipelines.bins.pipeline import BinsRunSettings, run_bins
from simulation.bins import BinSpec
from simulation.synthetic.bins import simulate_bin

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
NOW = "2026-01-08T06:00Z"
KEYS = {"device_id", "fill_now", "hours_to_threshold", "priority", "mandatory", "reasons"}
QUIET = {"fire_chance_per_day": 0.0, "tilt_chance_per_day": 0.0}


def write(folder: Path, name: str, lines: list[str]) -> str:
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def assess(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["bins", "assess", *args])
    out, err = capsys.readouterr()
    return status, out, err


def readings_for_three_days() -> list[str]:
    """Every 30 min from Monday 06:00 to Thursday 05:30: two bins that report fill fractions, one distances."""
    rng = np.random.default_rng(8)
    lines = ["device_id,ts,fill_fraction,distance_mm"]
    for k in range(144):
        at = MONDAY + timedelta(hours=6, minutes=30 * k)
        ts = at.isoformat().replace("+00:00", "Z")
        lines.append(f"quiet,{ts},{0.20 + rng.normal(0, 0.01):.4f},")      # the 20 % +- 1 %
        used = (at.day - 5) + min(max((at.hour - 7) / 15, 0.0), 1.0)      # days of daytime use so far
        lines.append(f"busy,{ts},{0.10 + 0.65 * used / 3:.4f},")            # 10 % -> 75 % over 3 days
        lines.append(f"ultra,{ts},,853")
    return lines


def test_table_and_json_for_fill_fractions_and_a_distance_sensor(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    readings_csv = write(tmp_path, "readings.csv", readings_for_three_days())
    bins_csv = write(tmp_path, "bins.csv", ["device_id,bin_depth_mm,sensor_height_mm,sensor_type,place",
                                            "ultra,1000,1300,jsn-sr04t,school",
                                            "never,1000,1300,jsn-sr04t,"])
    status, out, err = assess(capsys, "--readings", readings_csv, "--bins", bins_csv, "--now", NOW, "--json")
    assert status == 0 and err == ""
    rows = {r["device_id"]: r for r in json.loads(out)}
    assert list(rows) == ["busy", "never", "quiet", "ultra"] and all(set(r) == KEYS for r in rows.values())
    # the quiet bin: its level, not filling, not mandatory
    assert rows["quiet"]["fill_now"] == pytest.approx(0.20, abs=0.01)
    assert (rows["quiet"]["hours_to_threshold"] or np.inf) > 48 and not rows["quiet"]["mandatory"]
    # 75 % and rising 0.65 over 45 usage hours: 80 % within hours, before the pass two days on
    assert rows["busy"]["fill_now"] == pytest.approx(0.75, abs=0.02) and rows["busy"]["mandatory"]
    assert rows["busy"]["hours_to_threshold"] < 24 and rows["busy"]["priority"] >= 40
    # distances read with the bins file's geometry: (1300 - 853) / 1000, steady
    assert rows["ultra"]["fill_now"] == pytest.approx(0.447, abs=1e-3) and "school" in rows["ultra"]["reasons"]
    # registered, never heard from: unknown; not due (the default schedule is Monday, NOW a Thursday)
    assert rows["never"]["fill_now"] is None and "no readings" in rows["never"]["reasons"]
    assert not rows["never"]["mandatory"]

    status, out, _ = assess(capsys, "--readings", readings_csv, "--bins", bins_csv, "--now", NOW)
    header, *lines, summary = out.strip().splitlines()
    assert header.split() == ["device_id", "fill_now", "hours_to_threshold", "priority", "mandatory", "reasons"]
    assert [line.split()[0] for line in lines] == ["busy", "never", "quiet", "ultra"]
    assert lines[2].split()[1] == "20%" and lines[2].split()[-len(rows["quiet"]["reasons"].split()) - 1] == "no"
    assert summary == "4 bin(s) as of 2026-01-08 06:00 UTC, pass to beat 2026-01-10 06:00 UTC: 1 mandatory"


@pytest.mark.parametrize(("readings", "bins", "where"), [
    (["device_id,ts,fill_fraction", "b1,2026-01-08T01:00Z,0.2", "b1,2026-01-08T02:00Z,45"], None,
     "readings.csv, line 3, fill_fraction: 45 is not a fraction 0..1 (a percentage?)"),
    (["device_id,ts,fill_fraction", "b1,2026-01-08 01:00,0.2"], None, "line 2, ts: '2026-01-08 01:00' has no UTC"),
    (["device_id,ts,fill_fraction", "b1,2026-01-08T01:00Z,0.2", "b1,2026-01-08T01:00Z,0.3"], None,
     "line 3, ts: b1 has a reading at 2026-01-08T01:00Z on line 2 too"),
    (["device_id,ts,distance_mm", "b1,2026-01-08T01:00Z,800"], None,
     "line 2, distance_mm: b1 sends distances: the bins file must give its bin_depth_mm and sensor_height_mm"),
    (["device_id,ts,distance_mm", "b1,2026-01-08T01:00Z,800"],
     ["device_id,bin_depth_mm,sensor_height_mm", "b1,1100,40"],
     "bins.csv, line 2, sensor_height_mm: sensor height 40 mm is less than the bin depth 1100 mm"),
    (["device_id,ts,fill_fraction", "b1,2026-01-08T01:00Z"], None, "line 2, row: 2 fields, the header has 3"),
    (["device_id,when,fill_fraction", "b1,2026-01-08T01:00Z,0.2"], None, "line 1: the header needs ts"),
    (["device_id,ts,fill_fraction,colour", "b1,2026-01-08T01:00Z,0.2,red"], None, "line 1, colour: unknown column"),
    (["device_id,ts,fill_fraction"], None, "readings.csv, line 2: no readings after the header"),
    (["device_id,ts,fill_fraction", "b1,2026-01-08T01:00Z,0.2"], ["device_id,collection_weekdays", "b1,someday"],
     "bins.csv, line 2, collection_weekdays: 'someday' is not a weekday"),
])
def test_a_bad_file_exits_2_naming_the_line_and_field(readings: list[str], bins: list[str] | None, where: str,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--readings", write(tmp_path, "readings.csv", readings), "--now", NOW]
    if bins:
        args += ["--bins", write(tmp_path, "bins.csv", bins)]
    status, out, err = assess(capsys, *args)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and where in err.splitlines()[0], err
    assert err.splitlines()[1].startswith("hint: ")


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = assess(capsys, "--readings", str(tmp_path / "nope.csv"), "--now", NOW)
    assert status == 2 and "nope.csv: cannot read it" in err


# --- the same code as the runner ----------------------------------------------------------

@pytest.fixture
async def db(fresh_database_url: str) -> AsyncIterator[Database]:
    """A database of its own: the runner assesses every active bin in the table."""
    async with Database.connect(fresh_database_url) as database:
        await migrate(database, StorageSettings())
        yield database


async def test_the_command_answers_what_the_runner_stores(db: Database, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    specs = {"slow": BinSpec(base_fill_per_day=0.15, collection_weekday=2, **QUIET),
             "fast": BinSpec(base_fill_per_day=0.45, collection_weekday=4, **QUIET),
             "hot": BinSpec(fire_chance_per_day=0.4, tilt_chance_per_day=0.2)}
    for seed, (device_id, spec) in enumerate(specs.items()):
        await db.execute("INSERT INTO devices (device_id, kind, lon, lat, bin_depth_mm, sensor_height_mm, "
                         "sensor_type) VALUES ($1, 'bin', -2.6, 51.45, 1000, 1300, 'jsn-sr04t')", device_id)
        await db.execute("INSERT INTO bin_settings (device_id, collection_weekdays, place) VALUES ($1, '{3}', $2)",
                         device_id, "school" if seed else "")
        history = simulate_bin(spec, MONDAY, days=10, seed=seed)
        await db.execute(
            "INSERT INTO bin_readings (device_id, ts, distance_mm, temp_c, tilt_deg) "
            "SELECT $1, * FROM unnest($2::timestamptz[], $3::real[], $4::real[], $5::real[])", device_id,
            [datetime.fromtimestamp(h * 3600, UTC) for h in history.times_h],
            [None if np.isnan(d) else float(d) for d in history.distance_mm], history.temp_c.tolist(),
            history.tilt_deg.tolist())
    now = MONDAY + timedelta(days=10)
    await run_bins(db, now=now, settings=BinsRunSettings(plan=False))
    stored = {r["device_id"]: r for r in await db.fetch("SELECT * FROM bin_priorities")}

    # the same readings as the runner read them (real columns), as a CSV
    rows = await db.fetch("SELECT device_id, ts, distance_mm, temp_c, tilt_deg FROM bin_readings ORDER BY 1, 2")
    readings = ["device_id,ts,distance_mm,temp_c,tilt_deg"] + [
        ",".join([r["device_id"], r["ts"].isoformat(), *("" if r[k] is None else repr(r[k])
                                                         for k in ("distance_mm", "temp_c", "tilt_deg"))])
        for r in rows]
    bins = ["device_id,bin_depth_mm,sensor_height_mm,sensor_type,place,collection_weekdays",
            "slow,1000,1300,jsn-sr04t,,thu", "fast,1000,1300,jsn-sr04t,school,thu",
            "hot,1000,1300,jsn-sr04t,school,thu"]
    # main runs its own event loop: from this async test, in a thread
    status, out, err = await asyncio.to_thread(assess, capsys, "--readings", write(tmp_path, "r.csv", readings),
                                             "--bins", write(tmp_path, "b.csv", bins), "--now", now.isoformat(),
                                             "--json")
    assert status == 0, err
    answers = {a["device_id"]: a for a in json.loads(out)}
    assert answers.keys() == stored.keys() == set(specs)
    for device_id, answer in answers.items():
        row = stored[device_id]
        assert answer["reasons"] == row["reasons"]
        assert answer["mandatory"] == row["mandatory"]
        assert answer["priority"] == pytest.approx(row["score"], abs=0.05)
        assert answer["fill_now"] == pytest.approx(row["fill"], abs=1e-3)
        hours = row["hours_to_threshold"]         # inf (not filling) and NaN (unknown) are null in JSON
        assert answer["hours_to_threshold"] == (pytest.approx(hours, abs=0.05) if np.isfinite(hours) else None)
