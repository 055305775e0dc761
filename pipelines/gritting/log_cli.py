"""`cityops roads log` and `cityops roads ack`: the gritting decision log (docs/gritting.md).

    cityops roads log --from DATE --to DATE [--route R] [--csv]
        per run and route: the decision and why, the duty officer's acknowledgement or
        override, when a crew was sent, started and finished; --csv: one line per run and route
    cityops roads ack [--run N|latest] --route R --by NAME [--override send|not_needed] [--reason TEXT]
        acknowledge a run's route decision, or override it (a reason is required)
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from cityops.services import database_for
from cityops.settings import Settings
from pipelines.gritting.log import OVERRIDES, RouteLog, RunLog, parse_period, read_log, record_entry, resolve_run, words


def register(which: argparse._SubParsersAction[Any]) -> None:
    """Add `log` and `ack` to the `cityops roads` actions."""
    log = which.add_parser("log", help="the gritting decision log for a period (text or CSV)",
                           description="Each gritting run in the period (by its as-of time, UTC): inputs, each "
                                       "route's decision and why, the duty officer's acknowledgement or override, "
                                       "and when the crew was sent, started and finished.")
    log.add_argument("--from", dest="start", required=True, metavar="DATE",
                     help="ISO date or time, UTC unless it has an offset (2026-01-06, 2026-01-06T18:00Z)")
    log.add_argument("--to", dest="end", required=True, metavar="DATE",
                     help="the end, not included; a date includes that whole day")
    log.add_argument("--route", help="only this route")
    log.add_argument("--csv", action="store_true", help="one line per run and route, for the council's records")
    log.set_defaults(handler=run_log)

    ack = which.add_parser("ack", help="acknowledge or override a run's decision for a route",
                           description="The duty officer's acknowledgement of a route decision, or an override "
                                       "to send or not_needed with the reason. Appended to the decision log; "
                                       "nothing there is ever changed or deleted.")
    ack.add_argument("--run", default="latest", metavar="N|latest", help="the run (default: the latest)")
    ack.add_argument("--route", required=True, help="the gritting route")
    ack.add_argument("--by", required=True, metavar="NAME", help="the duty officer's name")
    ack.add_argument("--override", choices=OVERRIDES, help="decide this instead of the run's decision")
    ack.add_argument("--reason", metavar="TEXT",
                     help="why: required to override, and to acknowledge an UNKNOWN decision")
    ack.set_defaults(handler=run_ack)


def _utc(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime(fmt)


def _iso(moment: datetime | None) -> str:
    return _utc(moment, "%Y-%m-%dT%H:%M:%SZ")


async def run_log(args: argparse.Namespace, settings: Settings) -> int:
    start, end = parse_period(args.start, args.end)
    async with database_for(settings) as db:
        runs = await read_log(db, start, end, args.route)
    if args.csv:
        write_csv(runs)
    else:
        print_log(runs, start, end)
    return 0


async def run_ack(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        run_id = await resolve_run(db, args.run)
        entry = await record_entry(db, run_id, args.route, officer=args.by, reason=args.reason,
                                   override=args.override)
    change = f"{words(entry.decision_before)} overridden to {words(entry.decision_after)}" \
        if entry.action == "override" else f"{words(entry.decision_before)} acknowledged"
    print(f"run {entry.run_id}, route {entry.route_id}: {change} by {entry.officer} at {_utc(entry.at)} UTC "
          f"(log entry {entry.entry_id})" + (f": {entry.reason}" if entry.reason else ""))
    return 0


# --- text ----------------------------------------------------------------------------------

def _status(route: RouteLog) -> str:
    """The decision in force, and the officer's last entry about it."""
    if not route.entries:
        return f"in force {words(route.final_decision)} (no officer entry)"
    last = route.entries[-1]
    return f"in force {words(route.final_decision)} (last officer entry: {last.action} by {last.officer})"


def print_log(runs: list[RunLog], start: datetime, end: datetime) -> None:
    routes = [r for run in runs for r in run.routes]
    entries, jobs = sum(len(r.entries) for r in routes), sum(len(r.jobs) for r in routes)
    print(f"gritting decision log {_utc(start, '%Y-%m-%d %H:%M')} to {_utc(end, '%Y-%m-%d %H:%M')} UTC: "
          f"{len(runs)} run(s), {len(routes)} route decision(s), {entries} officer "
          f"entr{'y' if entries == 1 else 'ies'}, {jobs} job(s)")
    for run in runs:
        print(f"\nrun {run.run_id} as of {_utc(run.as_of, '%Y-%m-%d %H:%M')} UTC (computed {_utc(run.computed_at)}), "
              f"window {_utc(run.window_start, '%H:%M')} to {_utc(run.window_end, '%H:%M')}")
        forecast = ", ".join(run.forecast_sources) or "(none bought)"
        print(f"  inputs: forecast {forecast}; {run.sensors_used} sensor(s) used, {run.sensors_left_out} left out; "
              f"{run.warnings} warning(s)")
        if not run.routes:
            print("  no route decisions")
        for route in run.routes:
            hazard = f", first hazard {_utc(route.freeze_at, '%Y-%m-%d %H:%M')}" if route.freeze_at else ""
            start_by = f", latest start {_utc(route.latest_start, '%Y-%m-%d %H:%M')}" if route.latest_start else ""
            print(f"  {route.route_id} {route.name}: run decided {words(route.decision)}, {_status(route)}")
            print(f"    {route.treat_segments} segment(s) to treat, {route.salt_kg:,.1f} kg salt{hazard}{start_by}")
            print(f"    why: {route.reason}")
            for event in route.events():
                by = f" by {event.by}" if event.by else ""
                note = f': "{event.note}"' if event.note else ""
                print(f"    {_utc(event.at)}  {event.what:<12} {event.detail}{by}{note}")


# --- CSV -----------------------------------------------------------------------------------

CSV_COLUMNS = ("run_id", "as_of", "computed_at", "window_start", "window_end", "forecast_sources", "sensors_used",
               "sensors_left_out", "warnings", "route_id", "route_name", "decision", "reason", "treat_segments",
               "salt_kg", "freeze_at", "latest_start", "officer_entries", "last_action", "final_decision",
               "officer", "officer_at", "officer_reason", "job_ids", "sent_at", "assigned_to", "assigned_by",
               "started_at", "completed_at", "completed_by", "salt_spread_kg", "crew_note")


def csv_rows(runs: list[RunLog]) -> Iterator[dict[str, Any]]:
    """One row per run and route: the last officer entry and the first job (all job ids listed)."""
    for run in runs:
        for r in run.routes:
            row: dict[str, Any] = {
                "run_id": run.run_id, "as_of": _iso(run.as_of), "computed_at": _iso(run.computed_at),
                "window_start": _iso(run.window_start), "window_end": _iso(run.window_end),
                "forecast_sources": ";".join(run.forecast_sources), "sensors_used": run.sensors_used,
                "sensors_left_out": run.sensors_left_out, "warnings": run.warnings,
                "route_id": r.route_id, "route_name": r.name, "decision": r.decision, "reason": r.reason,
                "treat_segments": r.treat_segments, "salt_kg": f"{r.salt_kg:.1f}", "freeze_at": _iso(r.freeze_at),
                "latest_start": _iso(r.latest_start), "officer_entries": len(r.entries),
                "final_decision": r.final_decision, "job_ids": ";".join(str(j.job_id) for j in r.jobs)}
            if r.entries:
                last = r.entries[-1]
                row.update(last_action=last.action, officer=last.officer, officer_at=_iso(last.at),
                           officer_reason=last.reason)
            if r.jobs:
                job = r.jobs[0]
                row.update(sent_at=_iso(job.sent_at), assigned_to=job.assigned_to, assigned_by=job.assigned_by,
                           started_at=_iso(job.started_at), completed_at=_iso(job.completed_at),
                           completed_by=job.completed_by, crew_note=job.note,
                           salt_spread_kg=None if job.salt_kg is None else f"{job.salt_kg:.1f}")
            yield row


def write_csv(runs: list[RunLog]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(runs))
