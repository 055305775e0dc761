"""`cityops roads ...`: the road network, bought forecasts, and the latest gritting decisions.

    cityops roads import FILE.geojson [--routes ROUTES.json] [--prune] [--dry-run]
        check and import (upsert) segments, depots and routes, all or nothing
    cityops roads forecast import FILE [--source NAME] [--format csv|json] [--dry-run]
        check and store a road-weather forecast per sensor or per segment
    cityops roads show [--route R] [--segments] [--plan]
        the latest run's decision per route (why sent), optionally segments and the job sheet
    cityops roads decide --scenario FILE.json [--json]
        the same decision on a file (network, sensor readings, forecasts, settings), no database
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import shapely

from cityops.services import database_for
from cityops.settings import Settings
from pipelines.gritting import log_cli, store
from pipelines.gritting.pipeline import rate_matrix, save_forecast, save_network
from rules.errors import GrittingError, InvalidForecast, InvalidRoadNetwork, InvalidScenario
from rules.gritting.assess import assess
from rules.gritting.forecast import parse_forecast
from rules.gritting.network import parse_network
from rules.gritting.scenario import load_scenario, summary


def register(commands: argparse._SubParsersAction[Any]) -> None:
    roads = commands.add_parser("roads", help="road network, road-weather forecasts, latest gritting decisions",
                                description="The road network for gritting (docs/gritting.md).")
    which = roads.add_subparsers(dest="roads_command", metavar="ACTION", required=True)

    imp = which.add_parser("import", help="import a road network GeoJSON (segments, depots, routes)",
                           description="Check a road network FeatureCollection and import it in one transaction. "
                                       "Re-importing updates segments in place.")
    imp.add_argument("file", type=Path, metavar="FILE.geojson")
    imp.add_argument("--routes", type=Path, metavar="ROUTES.json",
                     help='depots and routes in a separate file: {"depots": [...], "routes": [...]}')
    imp.add_argument("--prune", action="store_true", help="delete stored segments that are not in the file")
    imp.add_argument("--dry-run", action="store_true", help="check only; store nothing")
    imp.set_defaults(handler=run_import)

    forecast = which.add_parser("forecast", help="road-weather forecasts")
    fc = forecast.add_subparsers(dest="forecast_command", metavar="ACTION", required=True)
    fimp = fc.add_parser("import", help="import a forecast (CSV or JSON) per sensor or per segment",
                         description="Check a bought road-weather forecast and store it; the gritting rules use it "
                                     "over the times it covers in preference to extrapolating readings.")
    fimp.add_argument("file", type=Path, metavar="FILE")
    fimp.add_argument("--source", help="the forecast's name (default: the file name)")
    fimp.add_argument("--format", choices=("csv", "json"), help="default: from the content")
    fimp.add_argument("--dry-run", action="store_true", help="check only; store nothing")
    fimp.set_defaults(handler=run_forecast_import)

    show = which.add_parser("show", help="the latest gritting decision per route, and why",
                            description="The latest gritting run: per route send or not with the reason, salt and "
                                        "latest start; optionally the segments and the crew's instructions.")
    show.add_argument("--route", help="only this route")
    show.add_argument("--segments", action="store_true", help="list the segments to treat or monitor")
    show.add_argument("--plan", action="store_true", help="print the driving instructions of routes sent")
    show.set_defaults(handler=run_show)

    decide_ = which.add_parser("decide", help="decide one night from a scenario file, no database",
                               description="Run the gritting decision the runner makes on a scenario file: the "
                                           "network, sensor readings, forecasts and settings inline "
                                           "(docs/gritting.md, Deciding on a file). Exit 2 on a bad file.")
    decide_.add_argument("--scenario", type=Path, required=True, metavar="FILE.json")
    decide_.add_argument("--json", action="store_true", help="print the decisions as JSON")
    decide_.set_defaults(handler=run_decide)
    log_cli.register(which)


def _read(path: Path, what: type[GrittingError]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if what is InvalidForecast:
            raise InvalidForecast(f"cannot read {path}: {exc}", source=str(path)) from None
        raise InvalidRoadNetwork(f"cannot read {path}: {exc}", source=str(path)) from None


def _json(path: Path) -> Any:
    try:
        return json.loads(_read(path, InvalidRoadNetwork))
    except json.JSONDecodeError as exc:
        raise InvalidRoadNetwork(f"{path}: not valid JSON: {exc}", source=str(path)) from None


async def run_import(args: argparse.Namespace, settings: Settings) -> int:
    extra = _json(args.routes) if args.routes else None
    network = parse_network(_json(args.file), str(args.file), extra=extra,
                            area=shapely.from_wkt(settings.devices.area_wkt))
    if args.dry_run:
        print(f"{args.file}: {len(network.segments)} segments, {len(network.depots)} depots, "
              f"{len(network.routes)} routes: all valid (dry run, nothing stored)")
        for note in network.notes:
            print(f"note: {note}")
        return 0
    async with database_for(settings) as db:
        report = await save_network(db, network, prune=args.prune)
    print(report.summary())
    return 0


async def run_forecast_import(args: argparse.Namespace, settings: Settings) -> int:
    rows = parse_forecast(_read(args.file, InvalidForecast), str(args.file), args.format)
    source = args.source or args.file.name
    targets = len({(r.target_kind, r.target_id) for r in rows})
    span = f"{min(r.valid_at for r in rows):%Y-%m-%d %H:%M} to {max(r.valid_at for r in rows):%Y-%m-%d %H:%M} UTC"
    if args.dry_run:
        print(f"{args.file}: {len(rows)} rows for {targets} targets, {span}: all valid (dry run)")
        return 0
    async with database_for(settings) as db:
        stored = await save_forecast(db, rows, source)
    print(f"stored {stored} forecast rows for {targets} targets, {span}, as {source!r}")
    return 0


async def run_show(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        run = await store.latest_run(db)
        if run is None:
            print("no gritting run yet: cityops rules run --gritting")
            return 0
        routes = [r for r in await store.route_decisions(db, run["run_id"]) if args.route in (None, r["route_id"])]
        segments = await store.segment_decisions(db, run["run_id"], args.route) if args.segments else []
    print(f"gritting run {run['run_id']} as of {run['as_of']:%Y-%m-%d %H:%M} UTC (computed "
          f"{run['computed_at']:%Y-%m-%d %H:%M}), window to {run['window_end']:%H:%M}")
    for warning in json.loads(run["warnings"]):
        print(f"warning: {warning}")
    for r in routes:
        start = f", start by {r['latest_start']:%H:%M} UTC" if r["send"] and r["latest_start"] else ""
        outcome = {"send": "SEND", "unknown": "UNKNOWN (decide by patrol)"}.get(r["decision"], "not sent")
        print(f"\n{r['route_id']} {r['name'] or ''}: {outcome}, {r['treat_segments']} "
              f"segment(s) to treat, {r['salt_kg']:,.0f} kg salt{start}")
        print(f"  why: {r['reason']}")
        if r["distance_m"] is not None:
            print(f"  plan: {r['trips']} trip(s), {r['distance_m'] / 1000:.1f} km"
                  f"{'' if r['feasible'] else ' (NOT feasible)'}")
            for note in json.loads(r["notes"] or "[]"):
                print(f"  note: {note}")
        if args.plan and r["instructions"]:
            for step in json.loads(r["instructions"]):
                print(f"    {step['trip']}.{step['step']:<3} {step['text']}")
    for s in segments:
        print(f"  {s['action']:<7} {s['segment_id']} {s['name'] or ''} (priority {s['priority']}): {s['reason']}")
    return 0


async def run_decide(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 with the decisions; 2 (with `error:` naming the field) when the file cannot be run."""
    try:
        try:
            data = json.loads(args.scenario.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidScenario(f"cannot read it: {exc}", field=str(args.scenario)) from None
        except json.JSONDecodeError as exc:
            raise InvalidScenario(f"not valid JSON: {exc}", field=str(args.scenario)) from None
        scenario = load_scenario(data, settings.gritting)
        matrix = rate_matrix(scenario.settings)
    except GrittingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    result = assess(scenario.network, scenario.sensors, scenario.mobile, scenario.forecasts, scenario.now,
                    scenario.settings, matrix=matrix)
    answer = summary(result)
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
        return 0
    print(f"gritting decision as of {result.now:%Y-%m-%d %H:%M} UTC ({scenario.settings.rate_matrix} rates)")
    for warning in result.warnings:
        print(f"warning: {warning}")
    for route in answer["routes"]:
        print(f"\n{route['route_id']}: {route['decision'].upper().replace('_', ' ')}\n  why: {route['reasons'][0]}")
    for seg in answer["segments"]:
        if seg["action"] != "none":
            print(f"  {seg['action']:<7} {seg['segment_id']}: {seg['reasons'][0]}")
    return 0
