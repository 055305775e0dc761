"""The registry: validation names the field, nothing is half-created, changes are audited;
the generated agent config is one the agent accepts; the CLI's tables and JSON."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from cityops.errors import ConfigError
from cityops.settings import load_settings
from cityops.storage import Database
from cityops_cli.main import main
from devices.agent_config import render_agent_config
from devices.area import CouncilArea
from devices.bulk import plan_import
from devices.errors import DeviceRetired, DuplicateDevice, InvalidField, UnknownDevice
from devices.registry import (
    add_device,
    device_events,
    get_device,
    move_device,
    retire_device,
    rotate_secret,
    rotate_secrets,
    secret_hash,
    update_device,
)
from devices.secrets import verify_secret
from devices.spec import DeviceSpec, parse_spec
from firmware.config import load_agent_config
from rules.bins.fill import BinCalibration, fill_fraction
from tests.broker_helpers import AREA, frog, parse

INSIDE = {"lon": "-2.6", "lat": "51.45"}


def raw(**values: str) -> dict[str, str | None]:
    return {**INSIDE, **values}


# --- pure validation ------------------------------------------------------------------

@pytest.mark.parametrize(("values", "field", "words"), [
    (raw(device_id="Frog 1", kind="frog"), "device_id", "lower-case"),
    (raw(device_id="f1", kind="toaster"), "kind", "unknown kind 'toaster'"),
    (raw(device_id="f1", kind="frog", lon="0.1"), "lon", "outside the council's area"),
    (raw(device_id="f1", kind="frog", lat="55.0"), "lat", "outside the council's area"),
    (raw(device_id="f1", kind="frog", lon="abc"), "lon", "not a number"),
    ({"device_id": "f1", "kind": "frog"}, "lon", "needs its location"),
    (raw(device_id="f1", kind="frog", bin_depth_mm="900"), "bin_depth_mm", "only a bin"),
    (raw(device_id="b1", kind="bin"), "bin_depth_mm", "needs its depth"),
    # the old meaning (height above the rim, below the depth) is what the bins rules cannot read
    (raw(device_id="b1", kind="bin", bin_depth_mm="1100", sensor_height_mm="40"), "sensor_height_mm",
     "sensor height 40 mm is less than the bin depth 1100 mm"),
    # full 100 mm from the sensor: inside an unknown sensor's 250 mm blind zone (rules.bins.fill)
    (raw(device_id="b1", kind="bin", bin_depth_mm="1000", sensor_height_mm="1100"), "sensor_height_mm",
     "blind zone"),
    (raw(device_id="b1", kind="bin", bin_depth_mm="0", sensor_height_mm="1100"), "bin_depth_mm", "needs its depth"),
    (raw(device_id="f1", kind="frog", mobile="true"), "mobile", "only a road sensor"),
    (raw(device_id="f1", kind="frog", calibration="distance_mm=3"), "calibration", "not a frog reading"),
    (raw(device_id="f1", kind="frog", calibration="rh_pct=500"), "calibration", "within"),
    (raw(device_id="f1", kind="frog", calibration="rh_pct"), "calibration", "name=offset"),
    (raw(device_id="f1", kind="frog", colour="red"), "colour", "unknown column"),
])
def test_bad_input_names_the_field(values: dict[str, str | None], field: str, words: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_spec(values, AREA)
    assert caught.value.field == field and words in str(caught.value)


def test_good_input_of_each_kind() -> None:
    road = parse_spec({"device_id": "grit-1", "kind": "road", "mobile": "yes"}, AREA)
    assert road.mobile and road.lon is None
    bin_ = parse_spec(raw(device_id="bin-1", kind="bin", bin_depth_mm="1000", sensor_height_mm="1300",
                          calibration="distance_mm=-12; temp_c=0.5"), AREA)
    assert bin_.bin_depth_mm == 1000 and bin_.calibration == {"distance_mm": -12.0, "temp_c": 0.5}


@pytest.mark.parametrize(("height", "sensor_type"), [(1300, None), (1000 + 250, "jsn-sr04t"), (1020, "hc-sr04")])
def test_a_bin_the_registry_takes_is_one_the_bins_rules_read(height: int, sensor_type: str | None) -> None:
    values = raw(device_id="bin-1", kind="bin", bin_depth_mm="1000", sensor_height_mm=str(height))
    spec = parse_spec({**values, "sensor_type": sensor_type}, AREA)
    assert spec.sensor_height_mm is not None and spec.bin_depth_mm is not None
    calibration = BinCalibration.for_sensor(spec.sensor_height_mm, spec.bin_depth_mm, spec.sensor_type)
    # fill = (H_empty - d) / depth: an echo from the bottom is empty, one from the full line is full
    assert fill_fraction(height, calibration.sensor_height_mm, calibration.depth_mm) == 0.0
    assert fill_fraction(height - 1000, calibration.sensor_height_mm, calibration.depth_mm) == 1.0


def test_device_add_refuses_the_old_meaning_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["device", "add", "bin-1", "--kind", "bin", "--lon", "-2.6", "--lat", "51.45",
                   "--bin-depth-mm", "1100", "--sensor-height-mm", "40"])
    err = capsys.readouterr().err
    assert status == 1
    assert "error: sensor_height_mm: sensor height 40 mm is less than the bin depth 1100 mm" in err
    assert "height above the bottom of the empty bin" in err


def test_csv_import_refuses_the_old_meaning_naming_row_and_field() -> None:
    text = ("device_id,kind,lon,lat,bin_depth_mm,sensor_height_mm,sensor_type\n"
            "bin-1,bin,-2.60,51.45,1000,1300,jsn-sr04t\n"
            "bin-2,bin,-2.60,51.45,1100,40,hc-sr04\n")
    plan = plan_import(text, AREA, registered=set())
    assert [s.device_id for s in plan.specs] == ["bin-1"]
    assert [(p.row, p.field) for p in plan.problems] == [(3, "sensor_height_mm")]
    assert str(plan.problems[0]).startswith("row 3, sensor_height_mm: sensor height 40 mm is less than")


def test_the_area_setting_must_be_a_polygon() -> None:
    with pytest.raises(ConfigError, match="AREA_WKT"):
        CouncilArea.from_wkt("POINT (1 2)")
    with pytest.raises(ConfigError, match="AREA_WKT"):
        CouncilArea.from_wkt("POLYGON ((1 2")


@pytest.mark.parametrize("spec", [
    frog("frog-9"),
    DeviceSpec("bin-9", "bin", -2.6, 51.45, bin_depth_mm=1000, sensor_type="hc-sr04"),
    DeviceSpec("grit-9", "road", mobile=True),
])
def test_the_agent_config_is_one_the_agent_loads(spec: DeviceSpec, tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(render_agent_config(spec, "mqtts://broker.example:8883"))
    config = load_agent_config(path)
    assert (config.device_id, config.kind, config.mqtt.username) == (spec.device_id, spec.kind, spec.device_id)
    assert config.mqtt.password_file == "/etc/cityops-agent/mqtt-password"
    if spec.kind == "bin":
        assert config.sensors["distance"].driver == "hc-sr04"
    if spec.mobile:
        assert "gps" in config.sensors


# --- the database -----------------------------------------------------------------------

async def test_add_stores_only_a_hash_and_refuses_a_duplicate_without_a_trace(db: Database, unique: str) -> None:
    issued = await add_device(db, frog(f"{unique}-f"))
    stored = await db.fetchval("SELECT secret_hash FROM device_secrets WHERE device_id = $1", issued.name)
    assert verify_secret(issued.secret, stored) and issued.secret not in stored
    events_before = await device_events(db, issued.name)
    with pytest.raises(DuplicateDevice) as caught:
        await add_device(db, frog(f"{unique}-f"))
    assert caught.value.device_id == issued.name and "device_id" in str(caught.value)
    assert await device_events(db, issued.name) == events_before
    assert await db.fetchval("SELECT secret_hash FROM device_secrets WHERE device_id = $1", issued.name) == stored


async def test_update_move_rotate_retire_are_validated_and_audited(db: Database, unique: str) -> None:
    device = f"{unique}-b"
    first = await add_device(db, DeviceSpec(device, "bin", -2.6, 51.45, bin_depth_mm=1000))
    with pytest.raises(InvalidField, match="sensor_height_mm"):
        await update_device(db, device, {"sensor_height_mm": 40}, AREA)     # the old meaning: above the rim
    assert (await update_device(db, device, {"sensor_height_mm": 1300}, AREA)).sensor_height_mm == 1300
    with pytest.raises(InvalidField, match="kind"):
        await update_device(db, device, {"kind": "frog"}, AREA)
    with pytest.raises(InvalidField, match="outside"):
        await move_device(db, device, 10.0, 51.45, AREA)
    await move_device(db, device, -2.55, 51.5, AREA)
    second = await rotate_secret(db, device)
    stored = await db.fetchval("SELECT secret_hash FROM device_secrets WHERE device_id = $1", device)
    assert verify_secret(second.secret, stored) and not verify_secret(first.secret, stored)
    await retire_device(db, device, "stolen")
    record = await get_device(db, device)
    assert (record.status, record.has_secret, record.spec.lon, record.spec.sensor_height_mm) == \
        ("retired", False, -2.55, 1300)
    with pytest.raises(DeviceRetired):
        await rotate_secret(db, device)
    with pytest.raises(UnknownDevice):
        await move_device(db, f"{unique}-nobody", -2.6, 51.45, AREA)
    assert [e["action"] for e in await device_events(db, device)] == \
        ["added", "updated", "moved", "rotated", "retired"]


async def test_a_fleet_rotated_at_once_gets_new_secrets_or_none_of_them(db: Database, unique: str) -> None:
    ids = [f"{unique}-r{n}" for n in range(3)]
    first = {d: (await add_device(db, DeviceSpec(d, "frog", -2.6, 51.45, household_id="h1"))).secret for d in ids}
    await retire_device(db, ids[2])
    with pytest.raises(UnknownDevice, match=ids[2]):     # a retired one among them: nothing changes
        await rotate_secrets(db, ids)
    assert [verify_secret(first[d], await secret_hash(db, d) or "") for d in ids[:2]] == [True, True]
    issued = {p.name: p.secret for p in await rotate_secrets(db, ids[:2])}
    for device in ids[:2]:
        stored = await secret_hash(db, device) or ""
        assert verify_secret(issued[device], stored) and not verify_secret(first[device], stored)
        assert [e["action"] for e in await device_events(db, device)] == ["added", "rotated"]


# --- the CLI ----------------------------------------------------------------------------

async def test_cli_add_prints_the_secret_once_and_writes_the_agent_config(
        database_url: str, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(database_url=database_url, devices={
        "broker_password_file": tmp_path / "passwords", "broker_acl_file": tmp_path / "acl",
        "agent_config_dir": tmp_path / "agents"})
    device = f"{unique}-f"
    args = parse("add", device, "--kind", "frog", "--lon", "-2.6", "--lat", "51.45", "--household", "h-7",
                 "--json")
    # no pid file: the files are written but no running broker was told: said loudly, exit 1
    assert await args.handler(args, settings) == 1
    out = json.loads(capsys.readouterr().out)
    assert "BROKER NOT RELOADED" in out["broker"]
    assert out["name"] == device and len(out["secret"]) >= 40
    assert load_agent_config(Path(out["agent_config"])).device_id == device
    assert f"user {device}" in (tmp_path / "acl").read_text()
    assert (tmp_path / "passwords").read_text().count(f"{device}:$7$") == 1
    assert out["secret"] not in (tmp_path / "passwords").read_text()

    args = parse("list")
    assert await args.handler(args, settings) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["DEVICE", "KIND", "STATUS"] and device in table

    args = parse("show", device, "--json")
    assert await args.handler(args, settings) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["household_id"] == "h-7" and shown["health"]["state"] == "unknown"

    args = parse("retire", device)
    assert await args.handler(args, settings) == 1
    assert f"user {device}" not in (tmp_path / "acl").read_text()
    assert "BROKER NOT RELOADED" in capsys.readouterr().out


async def test_cli_add_refuses_bad_input_before_touching_anything(
        database_url: str, unique: str, tmp_path: Path) -> None:
    settings = load_settings(database_url=database_url, devices={"agent_config_dir": tmp_path / "agents",
                                                                 "broker_acl_file": tmp_path / "acl"})
    args = parse("add", f"{unique}-f", "--kind", "frog", "--lon", "5.0", "--lat", "51.45")
    with pytest.raises(InvalidField, match="lon"):
        await args.handler(args, settings)
    assert not (tmp_path / "agents").exists() and not (tmp_path / "acl").exists()
    with pytest.raises(SystemExit):
        parse("rotate")  # a device id or --service is required


def test_the_toml_quotes_what_it_must(tmp_path: Path) -> None:
    text = render_agent_config(frog("frog-1"), 'mqtt://host:1883/"x"')
    assert tomllib.loads(text)["mqtt"]["url"] == 'mqtt://host:1883/"x"'
