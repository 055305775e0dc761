"""The damp runner against the real PostgreSQL: readings in through the storage layer, assessments out."""

import argparse
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cityops.settings import Settings
from cityops.storage import Database, insert_readings
from pipelines import cli
from pipelines.damp.pipeline import (
    DampRunSettings,
    add_diary_entry,
    diary_analysis,
    latest_home_risks,
    load_evidence,
    run_damp,
)
from pipelines.errors import NoFrogBox
from rules.damp import report
from rules.damp.diary import Activity, DiaryEntry
from simulation.synthetic import damp as synthetic

NOW = datetime(2026, 2, 10, 12, 7, tzinfo=UTC)
DAYS = 37


async def register(db: Database, device_id: str, kind: str, household: str | None, lon: float,
                   lat: float) -> None:
    await db.execute("INSERT INTO devices (device_id, kind, household_id, lon, lat) "
                     "VALUES ($1, $2, $3, $4, $5)", device_id, kind, household, lon, lat)


async def seed(db: Database, unique: str) -> dict[str, str]:
    """A cold damp home next to a road sensor, a warm dry one 40 km from any: 37 days of 5-minute data."""
    ids = {"damp": f"{unique}-damp", "dry": f"{unique}-dry", "road": f"{unique}-road"}
    await register(db, ids["damp"], "frog", f"{unique}-h1", -2.590, 51.450)
    await register(db, ids["dry"], "frog", f"{unique}-h2", -2.000, 51.450)
    await register(db, ids["road"], "road", None, -2.595, 51.452)
    await db.execute("INSERT INTO damp_home_settings (household_id, f_rsi, sensitivity, area) VALUES "
                     "($1, 0.75, 'sensitive', 'Easton'), ($2, 0.75, 'sensitive', 'Clifton')",
                     f"{unique}-h1", f"{unique}-h2")
    start = NOW.replace(minute=0) - timedelta(days=DAYS)
    climates = [synthetic.DAMP_COLD_HOME, synthetic.DRY_WARM_HOME]
    times, temp, rh, outdoor = synthetic.five_minute_readings(climates, DAYS, seed=3)
    stamps = [start + timedelta(minutes=5 * i) for i in range(times.size)]
    for row, key in enumerate(("damp", "dry")):
        rows = [(ids[key], ts, float(t), float(h))
                for ts, t, h in zip(stamps, temp[row], rh[row], strict=True)]
        assert await insert_readings(db, "frog", rows) == len(rows)
    road = [(ids["road"], ts, None, float(t), None, None, None)
            for ts, t in zip(stamps, outdoor[0], strict=True)]
    await insert_readings(db, "road", road)
    return ids


async def mould_state(db: Database, device_id: str) -> tuple[float, datetime]:
    (row,) = await db.fetch("SELECT mould_index, through_hour FROM damp_mould_state WHERE device_id = $1",
                            device_id)
    return row["mould_index"], row["through_hour"]


async def assessments(db: Database, device_id: str) -> list[dict[str, object]]:
    rows = await db.fetch("SELECT level, data_until, computed_at, mould_index, reasons, faults, changes "
                          "FROM damp_assessments WHERE device_id = $1 ORDER BY data_until", device_id)
    return [{**dict(r), "reasons": json.loads(r["reasons"]), "faults": json.loads(r["faults"]),
             "changes": json.loads(r["changes"])} for r in rows]


async def test_runner_assesses_stored_readings_and_is_incremental(db: Database, unique: str) -> None:
    ids = await seed(db, unique)
    before = datetime.now(UTC)
    report = await run_damp(db, now=NOW)
    damp, dry = (await assessments(db, ids["damp"]))[-1], (await assessments(db, ids["dry"]))[-1]
    assert report.data_until == NOW.replace(minute=0) and report.assessed >= 2
    assert damp["level"] == "high" and dry["level"] == "none"
    assert damp["data_until"] == NOW.replace(minute=0)
    assert damp["computed_at"] >= before - timedelta(seconds=5)
    assert any("condensed on the coldest wall" in r for r in damp["reasons"])
    assert not any("No outdoor sensor" in r for r in damp["reasons"])        # the road sensor 400 m away
    assert any("No outdoor sensor within 5.0 km: assumed 5.0 °C" in r for r in dry["reasons"])
    assert damp["faults"] == []  # the sensor data was complete and clean

    # the same hour again: nothing advances; one hour later: exactly one more hour applied per box
    state = await mould_state(db, ids["damp"])
    await run_damp(db, now=NOW + timedelta(minutes=20))
    assert await mould_state(db, ids["damp"]) == state
    assert state[1] == NOW.replace(minute=0) - timedelta(hours=1)
    hour = NOW.replace(minute=0)
    new_hour = [(ids["damp"], hour + timedelta(minutes=5 * i), 14.0, 80.0) for i in range(12)]
    await insert_readings(db, "frog", new_hour)
    await run_damp(db, now=NOW + timedelta(hours=1))
    incremental, through = await mould_state(db, ids["damp"])
    assert through == NOW.replace(minute=0) and incremental > state[0]
    # a full recompute of the same window reaches the same index (the state started 37 days back there too)
    replay = DampRunSettings(recompute=True, lookback=timedelta(days=DAYS + 1))
    await run_damp(db, now=NOW + timedelta(hours=1), settings=replay)
    full, _ = await mould_state(db, ids["damp"])
    assert full == pytest.approx(incremental, abs=1e-9)
    assert len(await assessments(db, ids["damp"])) == 2   # keyed by hour: a rerun replaces, not adds


async def test_a_box_with_clock_and_stuck_faults_is_reported_not_rated(db: Database, unique: str) -> None:
    device = f"{unique}-stuck"
    await register(db, device, "frog", f"{unique}-h3", -2.59, 51.45)
    start = NOW.replace(minute=0) - timedelta(days=8)
    rows = [(device, start + timedelta(minutes=5 * i), 16.0, 100.0) for i in range(8 * 24 * 12)]
    rows += [(device, NOW + timedelta(days=2, minutes=i), 16.0, 60.0) for i in range(3)]  # clock ahead
    await insert_readings(db, "frog", rows)
    await run_damp(db, now=NOW)
    (result,) = await assessments(db, device)
    assert result["level"] == "unknown"
    assert any("100 % without moving for 8.0 days" in f for f in result["faults"])
    assert any("3 readings are dated in the future" in f for f in result["faults"])
    assert np.isclose(float(str(result["mould_index"])), 0.0)


async def test_rules_cli_dewpoint_and_run(database_url: str, db: Database, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["rules", "dewpoint", "-5", "85"])
    assert await args.handler(args, Settings()) == 0
    out = capsys.readouterr().out
    assert "dew point:   -7.13 °C" in out and "frost point: -6.32 °C" in out
    args = parser.parse_args(["rules", "run", "--damp"])
    assert await args.handler(args, Settings(database_url=database_url)) == 0  # type: ignore[arg-type]
    assert "damp: assessed" in capsys.readouterr().out


async def test_evidence_report_and_area_statistics_from_the_database(
        db: Database, database_url: str, unique: str, tmp_path: Path) -> None:
    ids = await seed(db, unique)
    await run_damp(db, now=NOW)
    homes = {h.household_id: h for h in await latest_home_risks(db)}
    assert homes[f"{unique}-h1"].level == "high" and homes[f"{unique}-h1"].area == "Easton"
    assert homes[f"{unique}-h2"].level == "none" and homes[f"{unique}-h2"].area == "Clifton"

    evidence = await load_evidence(db, f"{unique}-h1", NOW - timedelta(days=7), NOW, reported_on=date(2026, 2, 2))
    assert len(evidence.hours) == 7 * 24 and len(evidence.daily_levels) == 7
    assert {level for _, level in evidence.daily_levels} == {"high"}
    page = report.evidence_report(evidence)
    assert ids["damp"] in page and "by Mon 16 Feb 2026" in page   # 10 working days after Mon 2 Feb
    with pytest.raises(NoFrogBox, match="no active frog box"):
        await load_evidence(db, f"{unique}-nobody", NOW - timedelta(days=7), NOW)

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    out = tmp_path / "evidence.html"
    args = parser.parse_args(["rules", "report", "--household", f"{unique}-h1", "--days", "3", "--out", str(out)])
    assert await args.handler(args, Settings(database_url=database_url)) == 0  # type: ignore[arg-type]
    assert "<svg" in out.read_text() and "Awaab" in out.read_text()


async def test_diary_entries_are_stored_and_explain_spikes_in_stored_readings(
        db: Database, database_url: str, unique: str, capsys: pytest.CaptureFixture[str]) -> None:
    device, household = f"{unique}-bath", f"{unique}-h9"
    await register(db, device, "frog", household, -2.59, 51.45)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    rows = []
    for i in range(2 * 288):
        ts = start + timedelta(minutes=5 * i)
        spike = 20.0 if ts.hour == 7 and ts.minute < 30 else 0.0
        rows.append((device, ts, 19.0, 55.0 + spike))
    await insert_readings(db, "frog", rows)
    for day in range(2):
        await add_diary_entry(db, household, DiaryEntry(np.datetime64(f"2026-01-0{5 + day}T06:55"),
                                                        Activity.SHOWER, 10))
    result = await diary_analysis(db, household, start, start + timedelta(days=2))
    assert [s.explained_by for s in result.spikes] == [Activity.SHOWER, Activity.SHOWER]
    assert "Showers raised the humidity by about 20 points (2 times)" in result.advice[0]

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["rules", "diary", "add", "--household", household, "--activity", "cooking",
                              "--at", "2026-01-06T18:00:00+01:00"])
    assert await args.handler(args, Settings(database_url=database_url)) == 0  # type: ignore[arg-type]
    assert "logged cooking at 2026-01-06 17:00 UTC" in capsys.readouterr().out
    stored = await db.fetch("SELECT activity, ts FROM damp_diary WHERE household_id = $1 ORDER BY ts", household)
    assert [r["activity"] for r in stored] == ["shower", "shower", "cooking"]
    assert stored[-1]["ts"] == datetime(2026, 1, 6, 17, 0, tzinfo=UTC)
    args = parser.parse_args(["rules", "diary", "advice", "--household", household, "--days", "1"])
    assert await args.handler(args, Settings(database_url=database_url)) == 0  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "0 rises in humidity over 1 days, 0 explained" in out and "Nothing to change" in out  # no data today
