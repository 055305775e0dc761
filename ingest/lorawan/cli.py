"""`cityops lorawan run|codecs|mapping|status`: the LoRaWAN integration (docs/lorawan.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from prometheus_client import start_http_server

from cityops.errors import ConfigError
from cityops.periodic import stop_event_on_signals
from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import Database
from ingest.cli import require_migrated
from ingest.lorawan import store
from ingest.lorawan.replay import replay
from ingest.lorawan.service import LorawanService, run_servers
from ingest.metrics import IngestMetrics
from lorawan.codecs import CODECS
from lorawan.frames import health_of


def register(commands: argparse._SubParsersAction[Any]) -> None:
    lorawan = commands.add_parser(
        "lorawan", help="LoRaWAN sensors through ChirpStack or The Things Stack: run the integration, codecs, mappings",
        description="Bring LoRaWAN uplinks from network servers' MQTT integrations into the readings, exactly once "
                    "(docs/lorawan.md). The servers are CITYOPS_LORAWAN__SERVERS, a JSON list.")
    actions = lorawan.add_subparsers(dest="lorawan_command", metavar="ACTION", required=True)

    run = actions.add_parser("run", help="run the integration for every configured network server (or --server)")
    run.add_argument("--server", action="append", metavar="NAME", help="only this network server (repeatable)")
    run.set_defaults(handler=run_integration)

    again = actions.add_parser(
        "replay", help="close a gap: The Things Stack's Storage Integration uplinks, stored exactly once",
        description="Read uplinks saved from The Things Stack's Storage Integration (newline-delimited JSON, "
                    "`curl -H 'Accept: text/event-stream' .../packages/storage/uplink_message?after=...`) and store "
                    "them through the integration's own judge and writer: those already stored are duplicates, so "
                    "an overlapping window is safe (docs/lorawan.md, \"Gaps\").")
    again.add_argument("file", type=Path, help="the saved response; - for standard input")
    again.add_argument("--server", required=True, metavar="NAME", help="the network server (a tts one) it came from")
    again.set_defaults(handler=replay_file)

    codecs = actions.add_parser("codecs", help="the codecs a device may name (--codec), and what each reads")
    codecs.add_argument("--json", action="store_true")
    codecs.set_defaults(handler=list_codecs)

    mapping = actions.add_parser("mapping", help="field mappings of network-server decoded JSON, per device profile")
    mapping_actions = mapping.add_subparsers(dest="mapping_command", metavar="ACTION", required=True)
    put = mapping_actions.add_parser("set", help="store a mapping for a device profile (JSON from a file or -)")
    put.add_argument("profile", help="ChirpStack's device profile name, or a name devices use as codec map:<name>")
    put.add_argument("file", type=Path, help="the mapping as JSON; - for standard input")
    put.set_defaults(handler=set_mapping)
    listing = mapping_actions.add_parser("list", help="the stored mappings")
    listing.set_defaults(handler=list_mappings)
    delete = mapping_actions.add_parser("delete", help="remove a profile's mapping")
    delete.add_argument("profile")
    delete.set_defaults(handler=delete_mapping)

    state = actions.add_parser("status", help="each LoRaWAN device: last uplink, session, frames lost, battery")
    state.add_argument("--json", action="store_true")
    state.add_argument("--hours", type=float, default=24.0, help="the window for uplinks and frames lost")
    state.set_defaults(handler=show_status)


async def run_integration(args: argparse.Namespace, settings: Settings) -> int:
    servers = settings.lorawan.servers
    if args.server:
        unknown = sorted(set(args.server) - {s.name for s in servers})
        if unknown:
            raise ConfigError(f"no network server named {', '.join(unknown)} in CITYOPS_LORAWAN__SERVERS",
                              hint=f"configured: {', '.join(s.name for s in servers) or 'none'}")
        servers = [s for s in servers if s.name in args.server]
    if not servers:
        raise ConfigError("no LoRaWAN network servers configured",
                          hint='set CITYOPS_LORAWAN__SERVERS=\'[{"name": "chirpstack", "kind": "chirpstack", '
                               '"url": "mqtt://host:1883"}]\' (docs/lorawan.md)')
    stop = stop_event_on_signals()
    metrics = [IngestMetrics() for _ in servers]
    async with database_for(settings) as db:
        await require_migrated(db)
        endpoints = []
        port = settings.lorawan.metrics_port
        for index, (server, m) in enumerate(zip(servers, metrics, strict=True)):
            if port:
                endpoints.append(start_http_server(port + index, settings.ingest.metrics_host, registry=m.registry)[0])
            print(f"lorawan: {server.name} ({server.kind}) {redact_url(server.connection_url())} -> "
                  f"{redact_url(db.url)} as {server.mqtt_client_id}"
                  + (f"; metrics on :{port + index}" if port else ""), flush=True)
        try:
            await run_servers(db, servers, settings.lorawan, settings.ingest, stop, metrics)
        finally:
            for endpoint in endpoints:
                endpoint.shutdown()
    return 0


async def replay_file(args: argparse.Namespace, settings: Settings) -> int:
    server = next((s for s in settings.lorawan.servers if s.name == args.server), None)
    if server is None:
        raise ConfigError(f"no network server named {args.server} in CITYOPS_LORAWAN__SERVERS",
                          hint=f"configured: {', '.join(s.name for s in settings.lorawan.servers) or 'none'}")
    if server.kind != "tts":
        raise ConfigError(f"{server.name} is a {server.kind} server: replay reads The Things Stack's Storage "
                          "Integration", hint="ChirpStack redelivers what it published at QoS 1 itself")
    async with database_for(settings) as db:
        service = LorawanService(db, server, settings.lorawan, settings.ingest, IngestMetrics())
        if str(args.file) == "-":
            done = await replay(service, sys.stdin)
        else:
            with args.file.open() as lines:
                done = await replay(service, lines)
    print(f"replayed {done.lines} stored uplinks from {args.file}: {done.readings_new} new readings, "
          f"{done.duplicates} already stored, {done.dead_letters} dead letters")
    return 0


async def list_codecs(args: argparse.Namespace, settings: Settings) -> int:
    rows = [{"codec": c.name, "kind": c.kind, "interval_downlink": _supports_interval(c.name), "source": c.source}
            for c in sorted(CODECS.values(), key=lambda c: c.name)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['codec']:22} {row['kind']:5} interval downlink: {'yes' if row['interval_downlink'] else 'no'}\n"
              f"{'':22} {str(row['source'])[:200]}")
    print("map:<profile>          any   a council's field mapping of the server's decoded JSON (`lorawan mapping`)")
    return 0


def _supports_interval(name: str) -> bool:
    try:
        return CODECS[name].interval_downlink(600) is not None
    except Exception:  # a codec that refuses 600 s still has the command
        return True


async def set_mapping(args: argparse.Namespace, settings: Settings) -> int:
    text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the mapping is not JSON: {exc}") from None
    async with database_for(settings) as db:
        mapping = await store.set_mapping(db, args.profile, raw)
    print(f"mapping for {args.profile!r} stored: {mapping.kind}, fields {', '.join(sorted(mapping.fields))}")
    return 0


async def list_mappings(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        print(json.dumps(await store.list_mappings(db), indent=2))
    return 0


async def delete_mapping(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        found = await store.delete_mapping(db, args.profile)
    print(f"deleted the mapping for {args.profile!r}" if found else f"no mapping for {args.profile!r}")
    return 0 if found else 1


async def show_status(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        rows = await device_status(db, args.hours)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{'DEVICE':24} {'DEVEUI':16} {'VIA':12} {'LAST UPLINK':16} {'UPLINKS':>7} {'LOST':>5} {'DELIVERY':>8} "
          f"{'BATTERY':>7}")
    for r in rows:
        last = r["last_uplink_at"].strftime("%Y-%m-%d %H:%M") if r["last_uplink_at"] else "-"
        delivery = f"{r['delivery']:.1%}" if r["delivery"] is not None else "-"
        battery = f"{r['battery_pct']:.0f} %" if r["battery_pct"] is not None else "-"
        print(f"{r['device_id']:24} {r['dev_eui']:16} {r['heard_via'] or '-':12} {last:16} {r['uplinks']:>7} "
              f"{r['frames_lost']:>5} {delivery:>8} {battery:>7}")
    print(f"{len(rows)} LoRaWAN device(s); uplinks and frames lost in the last {args.hours:g} h")
    return 0


async def device_status(db: Database, hours: float) -> list[dict[str, Any]]:
    """Per LoRaWAN device: its latest uplink (its session) and, over the window, uplinks logged and
    frames lost (the sum of the log's gaps: a late frame that filled one counts -1)."""
    rows = await db.fetch(
        "SELECT l.device_id, l.dev_eui, l.codec, l.network_server, l.heard_via, l.battery_pct, l.external_power, "
        "d.status, last.received_at AS last_uplink_at, last.f_cnt AS last_f_cnt, last.dev_addr, "
        "w.uplinks, w.frames_lost "
        "FROM lorawan_devices l JOIN devices d ON d.device_id = l.device_id "
        "LEFT JOIN LATERAL (SELECT u.received_at, u.f_cnt, u.dev_addr FROM lorawan_uplinks u "
        "  WHERE u.device_id = l.device_id ORDER BY u.received_at DESC LIMIT 1) last ON true "
        "CROSS JOIN LATERAL (SELECT count(*) AS uplinks, coalesce(sum(u.gap), 0) AS frames_lost "
        "  FROM lorawan_uplinks u WHERE u.device_id = l.device_id "
        "  AND u.received_at >= now() - make_interval(secs => $1)) w "
        "ORDER BY l.device_id", hours * 3600)
    return [{**dict(r), "uplinks": int(r["uplinks"]), "frames_lost": max(0, int(r["frames_lost"])),
             "delivery": health_of(int(r["uplinks"]), max(0, int(r["frames_lost"])))} for r in rows]
