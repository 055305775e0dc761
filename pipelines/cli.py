"""`cityops rules ...`: dew point by hand, and the pipelines run once or every N minutes.

    cityops rules dewpoint T RH          dew point and frost point for one reading
    cityops rules run --damp             assess every frog box once (--every N: every N minutes)
    cityops rules run --bins             bin priorities, fire/tilt events and tomorrow's collection plans
    cityops rules run --gritting         road temperatures, treat/monitor per segment, routes to send and plans
    cityops rules report --household H   the landlord evidence page (HTML) for a household
    cityops rules diary add|advice ...   log an activity; spikes it explains and advice
    cityops rules areas                  the latest published weekly damp statistics by area (CSV)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import logging
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from cityops.csv_safe import safe_row
from cityops.errors import StorageError
from cityops.periodic import Periodic, Task, stop_event_on_signals
from cityops.services import database_for
from cityops.settings import Settings
from cityops.times import utc_argument
from pipelines.bins.pipeline import BinsRunSettings, run_bins
from pipelines.damp.pipeline import (
    DampRunSettings,
    add_diary_entry,
    diary_analysis,
    load_evidence,
    run_damp,
)
from pipelines.errors import InvalidRunRequest, NothingPublished
from pipelines.gritting.pipeline import run_gritting
from pipelines.open_data.pipeline import COLUMNS, publish_snapshots
from pipelines.open_data.store import load_snapshot
from rules import psychro
from rules.damp import report
from rules.damp.diary import Activity, DiaryEntry, as_utc_minute

log = logging.getLogger("pipelines.cli")


def register(commands: argparse._SubParsersAction[Any]) -> None:
    rules = commands.add_parser("rules", help="run the rules engine: damp risk, gritting, bin priorities",
                                description="Rules: pure decisions from readings.")
    which = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    dew = which.add_parser("dewpoint", help="dew point and frost point of one reading",
                           description="Dew point (over water) and frost point (over ice) for air "
                                       "temperature T (degC) and relative humidity RH (percent).")
    dew.add_argument("temp_c", type=float, metavar="T", help="air temperature, degC")
    dew.add_argument("rh_pct", type=float, metavar="RH", help="relative humidity, percent (0..100)")
    dew.set_defaults(handler=run_dewpoint)

    run = which.add_parser("run", help="run rules against the database and store the results",
                           description="Run the chosen rules once (or every N minutes with --every).")
    run.add_argument("--damp", action="store_true", help="damp and mould risk for every frog box")
    run.add_argument("--bins", action="store_true",
                     help="bin fill forecasts, priorities, fire/tilt events and the next shift's plan per depot")
    run.add_argument("--plan-seconds", type=float, default=BinsRunSettings.time_limit_s,
                     help="time limit for each depot's collection plan (default 30)")
    run.add_argument("--gritting", action="store_true",
                     help="road surface temperature per segment, treat/monitor decisions, routes to send and their "
                          "plans (docs/gritting.md; settings CITYOPS_GRITTING__*)")
    run.add_argument("--at", type=utc_argument, metavar="ISO",
                     help="run as of this time (ISO 8601, UTC if no offset), e.g. a simulated night; with --every "
                          "it advances with the clock")
    run.add_argument("--every", type=float, metavar="MINUTES", help="repeat every MINUTES until Ctrl-C")
    run.add_argument("--recompute", action="store_true",
                     help="ignore the stored mould state and replay the look-back window")
    run.add_argument("--outdoor-max-distance-m", type=float, default=DampRunSettings.outdoor_max_distance_m,
                     help="use an outdoor sensor only within this distance of a home (default 5000)")
    run.add_argument("--outdoor-fallback-c", type=float, default=DampRunSettings.outdoor_fallback_c,
                     help="outdoor temperature to assume without a sensor, degC (default 5)")
    run.set_defaults(handler=run_rules)

    evidence = which.add_parser("report", help="landlord evidence report (printable HTML) for a household",
                                description="Write the damp and mould evidence page for one household.")
    evidence.add_argument("--household", required=True, help="the household id (devices.household_id)")
    evidence.add_argument("--days", type=int, default=30, help="the period: this many days to now (default 30)")
    evidence.add_argument("--reported-on", type=date.fromisoformat, metavar="YYYY-MM-DD",
                          help="when the damp was reported to the landlord: adds Awaab's Law dates")
    evidence.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    evidence.set_defaults(handler=run_report)

    notes = which.add_parser("diary", help="the householder's activity diary: log an entry, get advice",
                             description="Log activities and see how they explain humidity spikes.")
    diary_action = notes.add_subparsers(dest="diary_command", metavar="ACTION", required=True)
    add = diary_action.add_parser("add", help="log an activity")
    add.add_argument("--household", required=True)
    add.add_argument("--activity", required=True, choices=[a.value for a in Activity])
    add.add_argument("--at", type=utc_argument, help="when (ISO 8601, UTC if no offset; default now)")
    add.add_argument("--minutes", type=int, help="how long it lasted")
    add.set_defaults(handler=run_diary_add)
    advice = diary_action.add_parser("advice", help="spikes, what explains them, and advice")
    advice.add_argument("--household", required=True)
    advice.add_argument("--days", type=int, default=7, help="look back this many days (default 7)")
    advice.set_defaults(handler=run_diary_advice)

    areas = which.add_parser("areas", help="the latest published damp statistics by area (CSV on stdout)",
                             description="The latest weekly open-data snapshot (rules.disclosure), as published.")
    areas.set_defaults(handler=run_areas)


async def run_dewpoint(args: argparse.Namespace, settings: Settings) -> int:
    dew = float(psychro.dew_point(args.temp_c, args.rh_pct))
    frost = float(psychro.frost_point(args.temp_c, args.rh_pct))
    absolute = float(psychro.absolute_humidity(args.temp_c, args.rh_pct))
    print(f"air {args.temp_c:.2f} °C, relative humidity {args.rh_pct:.1f} %")
    if not np.isfinite(dew):
        print("dew point:   none (dry air)")
        return 0
    print(f"dew point:   {dew:.2f} °C")
    note = ("below 0 °C hoar frost forms here, before the dew point" if frost < 0
            else "above 0 °C: dew, not frost, forms; the dew point applies")
    print(f"frost point: {frost:.2f} °C  ({note})")
    print(f"absolute humidity: {absolute:.2f} g/m³")
    return 0


def last_days(days: int) -> tuple[datetime, datetime]:
    """The period from `days` days ago to now."""
    if days <= 0:
        raise InvalidRunRequest("--days must be positive")
    end = datetime.now(UTC)
    return end - timedelta(days=days), end


async def run_report(args: argparse.Namespace, settings: Settings) -> int:
    start, end = last_days(args.days)
    async with database_for(settings) as db:
        evidence = await load_evidence(db, args.household, start, end, reported_on=args.reported_on)
    args.out.write_text(report.evidence_report(evidence), encoding="utf-8")
    print(f"wrote {args.out} ({len(evidence.hours)} hours, {len(evidence.daily_levels)} days)")
    return 0


async def run_diary_add(args: argparse.Namespace, settings: Settings) -> int:
    entry = DiaryEntry(as_utc_minute(args.at or datetime.now(UTC)), Activity(args.activity), args.minutes)
    async with database_for(settings) as db:
        await add_diary_entry(db, args.household, entry)
    print(f"logged {entry.activity.value} at {str(entry.at).replace('T', ' ')} UTC for {args.household}")
    return 0


async def run_diary_advice(args: argparse.Namespace, settings: Settings) -> int:
    start, end = last_days(args.days)
    async with database_for(settings) as db:
        result = await diary_analysis(db, args.household, start, end)
    explained = sum(1 for s in result.spikes if s.explained_by)
    print(f"{len(result.spikes)} rises in humidity over {args.days} days, {explained} explained by the diary")
    for line in result.advice or ["Nothing to change: no pattern stands out."]:
        print(f"- {line}")
    return 0


async def run_areas(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        snapshot = await load_snapshot(db)
    if snapshot is None:
        raise NothingPublished("no damp statistics published yet")
    print(f"# week of {snapshot.period_start.date()}, computed {snapshot.computed_at:%Y-%m-%d %H:%M} UTC",
          file=sys.stderr)
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS)
    writer.writeheader()
    # text a spreadsheet would run as a formula is quoted, as in the open-data CSV (cityops.csv_safe)
    writer.writerows(safe_row(row, COLUMNS) for row in snapshot.rows)
    return 0


async def run_rules(args: argparse.Namespace, settings: Settings) -> int:
    if not (args.damp or args.bins or args.gritting):
        raise InvalidRunRequest("say which rules to run",
                                hint="cityops rules run --damp, --bins, --gritting, or several")
    if args.every is not None and args.every <= 0:
        raise InvalidRunRequest("--every must be a positive number of minutes")
    damp_settings = DampRunSettings(outdoor_max_distance_m=args.outdoor_max_distance_m,
                                    outdoor_fallback_c=args.outdoor_fallback_c, recompute=args.recompute)
    bins_settings = BinsRunSettings(time_limit_s=args.plan_seconds, roads=settings.bins)
    started = datetime.now(UTC)

    def as_of() -> datetime | None:
        return None if args.at is None else args.at + (datetime.now(UTC) - started)

    async with database_for(settings) as db:
        async def damp() -> None:
            nonlocal damp_settings
            print((await run_damp(db, now=as_of(), settings=damp_settings)).summary())
            for week in await publish_snapshots(db, now=as_of()):
                print(f"open damp statistics published for the week of {week.period_start.date()}")
            damp_settings = replace(damp_settings, recompute=False)  # --recompute: the first run only

        async def bins() -> None:
            print((await run_bins(db, now=as_of(), settings=bins_settings)).summary())

        async def gritting() -> None:
            print((await run_gritting(db, now=as_of(), settings=settings.gritting)).summary())

        tasks = [Task(name, run) for name, run, wanted in
                 (("damp", damp, args.damp), ("bins", bins, args.bins), ("gritting", gritting, args.gritting))
                 if wanted]
        try:  # the first run as a one-off: a database that cannot work stops the command with a hint
            for task in tasks:
                await task.run()
        except StorageError as exc:
            if exc.sqlstate == "42P01":  # undefined table: not migrated yet
                raise StorageError(str(exc), hint="run `cityops db migrate` first", sqlstate=exc.sqlstate) from None
            raise
        if args.every is None:
            return 0
        # then every N minutes: one rule's failure does not skip another's, each retried with a backoff
        periodic = Periodic(tasks, every_s=timedelta(minutes=args.every).total_seconds())
        stop = stop_event_on_signals()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), periodic.every_s)
        await periodic.run(stop)
    return 0
