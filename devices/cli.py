"""`cityops device add|list|show|update|move|retire|rotate|import|health|sync-broker|broker-config`.

Every change is one transaction, then the broker is brought in line with the registry:
with dynamic security (CITYOPS_DEVICES__BROKER_ADMIN_URL) over its control API and read
back, otherwise by rewriting the password and ACL files and SIGHUP. A change that did not
reach the broker exits 1 and says so in capitals. A secret is printed once and never
stored in clear.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityops.services import database_for
from cityops.settings import Settings
from devices import broker_config, dynsec, registry
from devices.agent_config import render_agent_config
from devices.area import CouncilArea
from devices.broker_auth import service_username
from devices.broker_sync import apply_to_broker
from devices.bulk import import_devices, plan_import, registered_ids
from devices.errors import ImportRejected, InvalidField
from devices.health import Health
from devices.health_query import device_health
from devices.registry import DeviceRecord, Provisioned
from devices.spec import DeviceSpec, parse_calibration, parse_spec

ATTRIBUTES = (  # option, spec field, help
    ("--household", "household_id", "frog: the household it is in"),
    ("--segment", "road_segment_id", "road: the road segment it watches"),
    ("--bin-depth-mm", "bin_depth_mm", "bin: the depth it holds, from the full line (rim) to the bottom, mm"),
    ("--sensor-height-mm", "sensor_height_mm", "bin: the sensor's height above the bottom of the empty bin, mm "
                                               "(at least the depth)"),
    ("--sensor-type", "sensor_type", "e.g. sht31, ds18b20, jsn-sr04t"),
    ("--calibration", "calibration", "offsets, e.g. 'air_temp_c=-0.3;rh_pct=1.5'"),
    ("--sample-interval-s", "sample_interval_s", "the reporting interval asked of the device, seconds (a LoRaWAN "
                                                 "device gets it as a downlink)"),
    ("--lorawan-dev-eui", "lorawan_dev_eui", "LoRaWAN: the device's DevEUI, 16 hex digits (docs/lorawan.md)"),
    ("--codec", "codec", "LoRaWAN: how its bytes are read, e.g. milesight-em300-th (`cityops lorawan codecs`), "
                         "or map:<profile>"),
    ("--network-server", "network_server", "LoRaWAN: the network server (CITYOPS_LORAWAN__SERVERS name) its "
                                           "uplinks come through; unset: any"),
)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    device = commands.add_parser("device", help="manage the device registry: add, list, show, move, retire, rotate",
                                 description="Device registry, broker credentials and health.")
    actions = device.add_subparsers(dest="device_command", metavar="ACTION", required=True)

    def action(name: str, handler: Any, text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=text, description=text + ".")
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")
        sub.set_defaults(handler=handler)
        return sub

    add = action("add", run_add, "register a device, print its secret once, write its agent config")
    add.add_argument("device_id")
    add.add_argument("--kind", required=True, help="frog, road or bin")
    add.add_argument("--lon", help="longitude (WGS84)")
    add.add_argument("--lat", help="latitude (WGS84)")
    add.add_argument("--mobile", action="store_true", help="road: a sensor on a gritter (no fixed location)")
    for option, _, text in ATTRIBUTES:
        add.add_argument(option, help=text)
    add.add_argument("--out", type=Path, help="folder for the agent config (default CITYOPS_DEVICES__AGENT_CONFIG_DIR)")

    listing = action("list", run_list, "list devices")
    listing.add_argument("--kind")
    listing.add_argument("--all", action="store_true", help="include retired devices")

    show = action("show", run_show, "one device: attributes, health, history")
    show.add_argument("device_id")

    update = action("update", run_update, "change a device's attributes (not its id, kind or location)")
    update.add_argument("device_id")
    for option, _, text in ATTRIBUTES:
        update.add_argument(option, help=text)

    move = action("move", run_move, "change a device's location")
    move.add_argument("device_id")
    move.add_argument("--lon", type=float, required=True)
    move.add_argument("--lat", type=float, required=True)

    retire = action("retire", run_retire, "retire a device: broker access revoked at once, ingest refuses it")
    retire.add_argument("device_id")
    retire.add_argument("--reason", default="")

    rotate = action("rotate", run_rotate, "new secret for a device (or --service NAME, a service); printed once")
    target = rotate.add_mutually_exclusive_group(required=True)
    target.add_argument("device_id", nargs="?")
    target.add_argument("--service", choices=registry.SERVICE_ACCOUNTS)

    bulk = action("import", run_import, "register devices from a CSV, all or nothing")
    bulk.add_argument("csv_file", type=Path)
    bulk.add_argument("--dry-run", action="store_true", help="check every row, change nothing")
    bulk.add_argument("--out", type=Path, help="folder for agent configs and secrets.csv")

    health = action("health", run_health, "health of devices: state and reasons")
    health.add_argument("device_ids", nargs="*", metavar="DEVICE_ID")

    sync = action("sync-broker", run_sync, "bring the broker's accounts in line with the registry (dynamic "
                  "security: its file and the running broker; otherwise the password and ACL files and a reload)")
    sync.add_argument("--file-only", action="store_true",
                      help="dynamic security: write the plugin's file for a broker about to start; exit 0 "
                           "without an admin URL")
    broker_config.add_command(actions)


# --- output -------------------------------------------------------------------------------

def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _json(value: object) -> None:
    print(json.dumps(value, indent=2, default=lambda v: v.isoformat() if isinstance(v, datetime)
                     else v.total_seconds() if isinstance(v, timedelta) else str(v)))


def _health_json(health: Health) -> dict[str, Any]:
    return asdict(health)


# --- handlers -----------------------------------------------------------------------------

def _area(settings: Settings) -> CouncilArea:
    return CouncilArea.from_wkt(settings.devices.area_wkt)


def _attribute_values(args: argparse.Namespace) -> dict[str, str | None]:
    return {field: getattr(args, option[2:].replace("-", "_")) for option, field, _ in ATTRIBUTES}


def _print_secret(issued: Provisioned, extra: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _json({"name": issued.name, "secret": issued.secret, **extra})
        return
    for key, value in extra.items():
        print(f"{key}: {value}")
    print(f"secret: {issued.secret}")
    print("(shown once, not stored: put it in the agent's password file now)")


async def run_add(args: argparse.Namespace, settings: Settings) -> int:
    raw = {"device_id": args.device_id, "kind": args.kind, "lon": args.lon, "lat": args.lat,
           "mobile": "true" if args.mobile else "false", **_attribute_values(args)}
    spec = parse_spec(raw, _area(settings))
    folder = args.out or settings.devices.agent_config_dir
    folder.mkdir(parents=True, exist_ok=True)  # fail before registering, not after
    async with database_for(settings) as db:
        issued = await registry.add_device(db, spec)
        if issued is None:  # a LoRaWAN device: no secret, no agent config, no broker account
            _print_lorawan(spec, args.json)
            return 0
        config = folder / f"{spec.device_id}.toml"
        config.write_text(render_agent_config(spec, settings.devices.agent_mqtt_url))
        synced, broker = await apply_to_broker(db, settings, [(issued.name, issued.secret, False)])
    _print_secret(issued, {"device": spec.device_id, "agent_config": str(config), "broker": broker}, args.json)
    return 0 if synced else 1


def _print_lorawan(spec: DeviceSpec, as_json: bool) -> None:
    via = spec.network_server or "any configured network server"
    if as_json:
        _json({"name": spec.device_id, "lorawan_dev_eui": spec.lorawan_dev_eui, "codec": spec.codec,
               "network_server": spec.network_server})
        return
    print(f"added LoRaWAN device {spec.device_id}: DevEUI {spec.lorawan_dev_eui}, codec {spec.codec}, via {via}")
    print("(no secret: its keys live on the network server; `cityops lorawan run` brings its uplinks in)")


def _row(record: DeviceRecord) -> list[object]:
    s = record.spec
    where = "mobile" if s.mobile else (f"{s.lon:.5f},{s.lat:.5f}" if s.lon is not None and s.lat is not None
                                       else None)
    online = None if record.online is None else ("online" if record.online else "offline")
    return [s.device_id, s.kind, record.status, where, s.household_id or s.road_segment_id or s.bin_depth_mm,
            record.last_seen, online, record.battery_v, record.firmware_version]


LIST_HEADERS = ("device", "kind", "status", "location", "attached", "last seen", "online", "battery", "firmware")


async def run_list(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        records = await registry.list_devices(db, kind=args.kind, include_retired=args.all)
    if args.json:
        _json([r.as_json() for r in records])
    else:
        print(table(LIST_HEADERS, [_row(r) for r in records]))
        print(f"{len(records)} device(s)")
    return 0


async def run_show(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        record = await registry.get_device(db, args.device_id)
        [health] = await device_health(db, datetime.now(UTC), device_ids=[args.device_id])
        events = await registry.device_events(db, args.device_id)
    if args.json:
        _json({**record.as_json(), "health": _health_json(health), "events": events})
        return 0
    for key, value in record.as_json().items():
        print(f"{key:18} {_cell(value)}")
    print(f"{'health':18} {health.state}" + (f": {'; '.join(health.reasons)}" if health.reasons else ""))
    for event in events:
        detail = json.dumps(event["detail"]) if event["detail"] else ""
        print(f"{'':18} {event['at'][:16]} {event['action']} {detail}".rstrip())
    return 0


async def run_update(args: argparse.Namespace, settings: Settings) -> int:
    changes: dict[str, Any] = {k: v for k, v in _attribute_values(args).items() if v is not None}
    for key in ("bin_depth_mm", "sensor_height_mm", "sample_interval_s"):
        if key in changes:
            changes[key] = _int(key, changes[key])
    if "calibration" in changes:
        changes["calibration"] = parse_calibration(changes["calibration"])
    async with database_for(settings) as db:
        spec = await registry.update_device(db, args.device_id, changes, _area(settings))
    _json(asdict(spec)) if args.json else print(f"updated {spec.device_id}: {', '.join(changes) or 'nothing'}")
    return 0


def _int(field: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidField(field, f"{text!r} is not an integer") from None


async def run_move(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        spec = await registry.move_device(db, args.device_id, args.lon, args.lat, _area(settings))
    _json(asdict(spec)) if args.json else print(f"moved {spec.device_id} to {spec.lon}, {spec.lat}")
    return 0


async def run_retire(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        await registry.retire_device(db, args.device_id, args.reason)
        synced, broker = await apply_to_broker(db, settings)
    if args.json:
        _json({"device": args.device_id, "status": "retired", "broker": broker})
    else:
        print(f"retired {args.device_id}\n{broker}")
    return 0 if synced else 1


async def run_rotate(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        if args.service:
            issued = await registry.rotate_service_account(db, args.service)
        else:
            issued = await registry.rotate_secret(db, args.device_id)
        synced, broker = await apply_to_broker(db, settings, [(issued.name, issued.secret, bool(args.service))])
    _print_secret(issued, {**_usernames(issued.name, bool(args.service), settings), "broker": broker}, args.json)
    return 0 if synced else 1


def _usernames(name: str, service: bool, settings: Settings) -> dict[str, str]:
    """Who connects with a rotated secret: with dynamic security each username under its one client id."""
    s = settings.devices
    if not service:
        return {"username": name, "client_id": name}
    if s.broker_dynsec_file is None and s.broker_admin_url is None:
        return {"username": service_username(name)}
    pairs = dynsec.service_clients(name, s.ingest_consumers)
    return {"username": ", ".join(f"{u} (client id {c})" for u, c in pairs)}


async def run_import(args: argparse.Namespace, settings: Settings) -> int:
    text = args.csv_file.read_text()
    area = _area(settings)
    async with database_for(settings) as db:
        if args.dry_run:
            plan = plan_import(text, area, await registered_ids(db))
            return _report_plan([s.device_id for s in plan.specs], [str(p) for p in plan.problems], args.json)
        out = args.out or settings.devices.agent_config_dir
        out.mkdir(parents=True, exist_ok=True)
        # created (never overwritten) before the import, so the secrets cannot be lost after it
        secrets_file = out / f"secrets-{datetime.now(UTC):%Y%m%dT%H%M%S}.csv"
        with os.fdopen(os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as secrets:
            try:
                imported, issued = await import_devices(db, text, area)
            except ImportRejected as exc:
                secrets_file.unlink()
                _report_plan([], [str(p) for p in exc.problems], args.json)
                raise
            secrets.write("device_id,secret\n" + "".join(f"{i.name},{i.secret}\n" for i in issued))
        for record in await registry.list_devices(db, device_ids=[i.name for i in issued]):
            (out / f"{record.spec.device_id}.toml").write_text(
                render_agent_config(record.spec, settings.devices.agent_mqtt_url))
        synced, broker = await apply_to_broker(db, settings, [(i.name, i.secret, False) for i in issued])
    lorawan = len(imported) - len(issued)
    summary = {"imported": len(imported), "lorawan": lorawan, "agent_configs": str(out), "secrets": str(secrets_file),
               "broker": broker}
    if args.json:
        _json(summary)
    else:
        print(f"imported {len(imported)} devices ({lorawan} LoRaWAN, which have no secret); agent configs in {out}/, "
              f"secrets (shown nowhere else) in {secrets_file} (mode 0600): hand them to the installers, then delete "
              f"it\n{broker}")
    return 0 if synced else 1


def _report_plan(valid: list[str], problems: list[str], as_json: bool) -> int:
    if as_json:
        _json({"valid": valid, "problems": problems})
    else:
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print(f"{len(valid)} row(s) valid, {len(problems)} problem(s)")
    return 1 if problems else 0


HEALTH_HEADERS = ("device", "state", "last seen", "battery", "days left", "firmware", "drift s", "reasons")


async def run_health(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        found = await device_health(db, datetime.now(UTC), device_ids=args.device_ids or None)
    if args.json:
        _json([_health_json(h) for h in found])
    else:
        print(table(HEALTH_HEADERS, [[h.device_id, h.state, h.last_seen, h.battery_v, h.battery_days_left,
                                      h.firmware_version, h.clock_drift_s, "; ".join(h.reasons)] for h in found]))
    return 0


async def run_sync(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        synced, message = await apply_to_broker(db, settings, file_only=args.file_only)
    _json({"broker": message}) if args.json else print(message)
    return 0 if synced else 1
