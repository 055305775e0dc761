"""Registering LoRaWAN devices: the spec's rules, the CLI, CSV import and the admin API (issue 22, part 3).

A LoRaWAN device carries its DevEUI (16 hex digits: the LoRaWAN specification's EUI-64, printed
on labels with separators), the codec that reads it and, optionally, its network server; its keys
live on the network server, so it gets no broker secret (docs/lorawan.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityops.settings import DevicesSettings, Settings, load_settings
from cityops.storage import Database
from devices import registry
from devices.bulk import import_devices, plan_import
from devices.errors import ImportRejected, InvalidField
from devices.spec import parse_spec
from ops_api.app import create_app
from ops_api.deps import Role
from tests.api_helpers import api_client, login_as
from tests.broker_helpers import AREA, parse

BIN = {"kind": "bin", "lon": "-2.59", "lat": "51.45", "bin_depth_mm": "1100"}


def test_a_label_s_dev_eui_is_kept_as_16_lower_case_digits_with_its_codec() -> None:
    spec = parse_spec({"device_id": "lw-bin-1", **BIN, "lorawan_dev_eui": "A8-40-41-00-01-81-C0-61",
                       "codec": "dragino-ldds75", "network_server": "chirpstack", "sample_interval_s": "900"}, AREA)
    assert (spec.lorawan_dev_eui, spec.codec, spec.network_server, spec.sample_interval_s) == \
        ("a84041000181c061", "dragino-ldds75", "chirpstack", 900)
    assert spec.is_lorawan
    mapped = parse_spec({"device_id": "lw-bin-2", **BIN, "lorawan_dev_eui": "a84041000181c062",
                         "codec": "map:ACME fill sensor"}, AREA)
    assert mapped.codec == "map:ACME fill sensor" and mapped.network_server is None


@pytest.mark.parametrize(("fields", "field", "says"), [
    ({"lorawan_dev_eui": "a8404100018"}, "lorawan_dev_eui", "is not a DevEUI"),           # 11 digits
    ({"lorawan_dev_eui": "a84041000181c0zz", "codec": "dragino-ldds75"}, "lorawan_dev_eui", "is not a DevEUI"),
    ({"lorawan_dev_eui": "a84041000181c061"}, "codec", "needs a codec"),
    ({"lorawan_dev_eui": "a84041000181c061", "codec": "acme-9000"}, "codec", "unknown codec"),
    ({"lorawan_dev_eui": "a84041000181c061", "codec": "milesight-em300-th"}, "codec", "reads a frog sensor"),
    ({"codec": "dragino-ldds75"}, "codec", "only a LoRaWAN device"),
    ({"network_server": "chirpstack"}, "network_server", "only a LoRaWAN device"),
    ({"lorawan_dev_eui": "a84041000181c061", "codec": "dragino-ldds75", "network_server": "Chirp Stack!"},
     "network_server", "is not a network server name"),
    ({"sample_interval_s": "5"}, "sample_interval_s", "not within 10 s"),
])
def test_what_a_lorawan_spec_may_not_be(fields: dict[str, str], field: str, says: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_spec({"device_id": "lw-bin-1", **BIN, **fields}, AREA)
    assert caught.value.field == field and says in caught.value.reason


async def test_the_cli_registers_a_lorawan_device_with_no_secret_and_no_agent_config(
        db: Database, database_url: str, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(database_url=database_url, devices={
        "broker_password_file": tmp_path / "passwords", "broker_acl_file": tmp_path / "acl"})
    dev_eui = f"{abs(hash(unique)):016x}"[-16:]
    args = parse("add", f"{unique}-lw", "--kind", "bin", "--lon", "-2.59", "--lat", "51.45", "--bin-depth-mm", "1100",
                 "--lorawan-dev-eui", dev_eui.upper(), "--codec", "dragino-ldds75", "--out", str(tmp_path / "cfg"))
    assert await args.handler(args, settings) == 0
    out = capsys.readouterr().out
    assert f"added LoRaWAN device {unique}-lw: DevEUI {dev_eui}" in out
    assert not any(line.startswith("secret:") for line in out.splitlines())  # no secret printed: there is none
    assert not (tmp_path / "cfg" / f"{unique}-lw.toml").exists()
    assert await db.fetchval("SELECT count(*) FROM device_secrets WHERE device_id = $1", f"{unique}-lw") == 0
    record = await registry.get_device(db, f"{unique}-lw")
    assert (record.spec.lorawan_dev_eui, record.spec.codec, record.has_secret) == (dev_eui, "dragino-ldds75", False)
    # its keys live on the network server: nothing to rotate, and it stays LoRaWAN
    with pytest.raises(InvalidField, match="LoRaWAN device: it has no broker secret"):
        await registry.rotate_secret(db, f"{unique}-lw")
    with pytest.raises(InvalidField, match="cannot change between native and LoRaWAN"):
        await registry.update_device(db, f"{unique}-lw", {"lorawan_dev_eui": None}, AREA)
    # another device may not take its DevEUI
    again = parse("add", f"{unique}-lw2", "--kind", "bin", "--lon", "-2.59", "--lat", "51.45", "--bin-depth-mm",
                  "1100", "--lorawan-dev-eui", dev_eui, "--codec", "dragino-ldds75")
    with pytest.raises(InvalidField, match=f"DevEUI {dev_eui} is registered to {unique}-lw"):
        await again.handler(again, settings)
    assert await db.fetchval("SELECT count(*) FROM devices WHERE device_id = $1", f"{unique}-lw2") == 0


async def test_a_csv_import_refuses_a_dev_eui_twice_and_registers_the_rest_without_secrets(
        db: Database, unique: str) -> None:
    header = "device_id,kind,lon,lat,bin_depth_mm,lorawan_dev_eui,codec\n"
    eui = f"{abs(hash(unique + 'csv')):016x}"[-16:]
    twice = header + (f"{unique}-a,bin,-2.59,51.45,1100,{eui},dragino-ldds75\n"
                      f"{unique}-b,bin,-2.59,51.45,1100,{eui.upper()},dragino-ldds75\n")
    plan = plan_import(twice, AREA, registered=set())
    assert [(p.row, p.field) for p in plan.problems] == [(3, "lorawan_dev_eui")]
    with pytest.raises(ImportRejected):
        await import_devices(db, twice, AREA)
    good = header + (f"{unique}-a,bin,-2.59,51.45,1100,{eui},dragino-ldds75\n"
                     f"{unique}-n,frog,-2.59,51.45,,,\n")
    imported, issued = await import_devices(db, good, AREA)
    assert [s.device_id for s in imported] == [f"{unique}-a", f"{unique}-n"]
    assert [i.name for i in issued] == [f"{unique}-n"]  # only the native device has a secret


async def test_the_admin_api_registers_a_lorawan_device_and_answers_no_secret(
        db: Database, database_url: str, unique: str, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=database_url,  # type: ignore[arg-type]
                              devices=DevicesSettings(broker_password_file=tmp_path / "passwords",
                                                      broker_acl_file=tmp_path / "acl")), db=db)
    eui = f"{abs(hash(unique + 'api')):016x}"[-16:]
    async with api_client(app) as client:
        await login_as(client, db, Role.ADMIN)
        made = await client.post("/admin/devices", json={
            "device_id": f"{unique}-api", "kind": "frog", "lon": -2.59, "lat": 51.45, "household_id": "h-9",
            "lorawan_dev_eui": eui, "codec": "milesight-em300-th", "network_server": "ttn"})
        assert made.status_code == 201, made.text
        assert made.json()["secret"] is None and made.json()["broker_status"] == "unchanged"
        wrong = await client.post("/admin/devices", json={
            "device_id": f"{unique}-api2", "kind": "bin", "lon": -2.59, "lat": 51.45, "bin_depth_mm": 1000,
            "lorawan_dev_eui": "0000000000000001", "codec": "milesight-em300-th"})
        assert wrong.status_code == 422 and "reads a frog sensor" in wrong.json()["error"]
        changed = await client.patch(f"/admin/devices/{unique}-api", json={"sample_interval_s": 1800})
        assert changed.status_code == 200 and changed.json()["device"]["sample_interval_s"] == 1800
    history = await registry.device_events(db, f"{unique}-api")
    assert [e["action"] for e in history] == ["added", "updated"]
    assert json.dumps(history[1]["detail"]) == '{"sample_interval_s": 1800}'
