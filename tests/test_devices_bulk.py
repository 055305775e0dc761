"""CSV import: a dry run and a per-row report naming row and field; all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityops.settings import load_settings
from cityops.storage import Database
from devices.bulk import import_devices, plan_import
from devices.errors import ImportRejected
from devices.registry import add_device
from firmware.config import load_agent_config
from tests.broker_helpers import AREA, frog, parse

HEADER = "device_id,kind,lon,lat,household_id,bin_depth_mm,calibration\n"


def good_rows(unique: str) -> str:
    return (f"{unique}-f1,frog,-2.60,51.45,h-1,,air_temp_c=-0.2\n"
            f"{unique}-f2,frog,-2.61,51.46,h-2,,\n"
            f"{unique}-b1,bin,-2.62,51.47,,1100,\n")


def test_the_report_names_each_bad_row_and_field() -> None:
    text = HEADER + (
        "f-1,frog,-2.60,51.45,h-1,,\n"        # row 2: fine
        "f-2,toaster,-2.60,51.45,,,\n"        # row 3: kind
        "f-3,frog,7.0,51.45,,,\n"             # row 4: outside the area
        "f-1,frog,-2.60,51.45,,,\n"           # row 5: repeats row 2
        "b-1,bin,-2.60,51.45,,,\n"            # row 6: a bin without depth
        "f-4,frog,-2.60,51.45,,,,extra\n"     # row 7: too many fields
        "f-5,frog,-2.60\n"                    # row 8: too few
        "taken,frog,-2.60,51.45,,,\n")        # row 9: already registered
    plan = plan_import(text, AREA, registered={"taken"})
    assert [s.device_id for s in plan.specs] == ["f-1"]
    assert [(p.row, p.field) for p in plan.problems] == [
        (3, "kind"), (4, "lon"), (5, "device_id"), (6, "bin_depth_mm"), (7, "row"), (8, "row"), (9, "device_id")]
    assert str(plan.problems[2]) == "row 5, device_id: 'f-1' repeats row 2"


@pytest.mark.parametrize(("text", "reason"), [
    ("device_id,lon\nf-1,1\n", "missing column(s) kind"),
    ("device_id,kind,colour\nf-1,frog,red\n", "unknown column(s) colour"),
    (HEADER, "no device rows"),
    ("", "missing column(s) device_id, kind"),
])
def test_a_bad_header_or_an_empty_file_is_one_clear_problem(text: str, reason: str) -> None:
    plan = plan_import(text, AREA, registered=set())
    assert len(plan.problems) == 1 and reason in str(plan.problems[0]) and not plan.specs


async def test_one_bad_row_imports_nothing(db: Database, unique: str) -> None:
    text = HEADER + good_rows(unique) + f"{unique}-f9,frog,-2.60,99,,,\n"
    with pytest.raises(ImportRejected) as caught:
        await import_devices(db, text, AREA)
    assert [(p.row, p.field) for p in caught.value.problems] == [(5, "lat")]
    assert await db.fetchval("SELECT count(*) FROM devices WHERE device_id LIKE $1", f"{unique}%") == 0


async def test_a_good_file_imports_every_row_with_its_own_secret(db: Database, unique: str) -> None:
    _, issued = await import_devices(db, HEADER + good_rows(unique), AREA)
    assert [i.name for i in issued] == [f"{unique}-f1", f"{unique}-f2", f"{unique}-b1"]
    assert len({i.secret for i in issued}) == 3
    assert await db.fetchval("SELECT count(*) FROM device_secrets WHERE device_id LIKE $1", f"{unique}%") == 3
    calibration = await db.fetchval("SELECT calibration FROM devices WHERE device_id = $1", f"{unique}-f1")
    assert json.loads(calibration) == {"air_temp_c": -0.2}


async def test_cli_dry_run_changes_nothing_then_the_import_writes_configs_and_secrets(
        db: Database, database_url: str, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await add_device(db, frog(f"{unique}-taken"))
    settings = load_settings(database_url=database_url, devices={
        "broker_password_file": tmp_path / "passwords", "broker_acl_file": tmp_path / "acl"})
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(HEADER + good_rows(unique) + f"{unique}-taken,frog,-2.6,51.45,,,\n")
    args = parse("import", str(csv_file), "--dry-run", "--json")
    assert await args.handler(args, settings) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == [f"row 5, device_id: '{unique}-taken' is already registered"]
    assert len(report["valid"]) == 3
    assert await db.fetchval("SELECT count(*) FROM devices WHERE device_id LIKE $1", f"{unique}%") == 1

    csv_file.write_text(HEADER + good_rows(unique))
    out = tmp_path / "out"
    args = parse("import", str(csv_file), "--out", str(out))
    assert await args.handler(args, settings) == 1          # imported, but no broker was told (no pid file)
    printed = capsys.readouterr().out
    assert "imported 3 devices" in printed and "BROKER NOT RELOADED" in printed
    [secrets_file] = out.glob("secrets-*.csv")
    secrets = secrets_file.read_text().splitlines()
    assert secrets[0] == "device_id,secret" and len(secrets) == 4
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    assert load_agent_config(out / f"{unique}-b1.toml").kind == "bin"


async def test_cli_import_with_a_bad_row_writes_nothing(
        db: Database, database_url: str, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(database_url=database_url, devices={
        "broker_password_file": tmp_path / "passwords", "broker_acl_file": tmp_path / "acl"})
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(HEADER + good_rows(unique) + f"{unique}-x,frog,-2.6,51.45,,12,\n")
    out = tmp_path / "out"
    args = parse("import", str(csv_file), "--out", str(out))
    with pytest.raises(ImportRejected):
        await args.handler(args, settings)
    assert "row 5, bin_depth_mm: only a bin has a bin_depth_mm" in capsys.readouterr().err
    assert list(out.iterdir()) == [] and not (tmp_path / "acl").exists()
    assert await db.fetchval("SELECT count(*) FROM devices WHERE device_id LIKE $1", f"{unique}%") == 0
