"""`cityops cases suggest`: the sensors' damp and mould case suggestions, from the command line.

Run it after the damp rules (a timer or cron line after `cityops rules`): each home whose damp
level was high or severe on each of the last CITYOPS_CASES__SUGGEST_AFTER_DAYS days, with no
case, gets a *suggested* case for an officer to triage (GET /cases?state=suggested). No clock
runs on a suggestion unless CITYOPS_CASES__SENSOR_ALERT_IS_AWARENESS=true. Idempotent: running
it again suggests nothing new.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from cases import lifecycle
from cityops.services import database_for
from cityops.settings import Settings


def register(commands: argparse._SubParsersAction[Any]) -> None:
    cases = commands.add_parser("cases", help="damp and mould cases: the sensors' suggestions",
                                description="Damp and mould cases for landlords (docs/api.md, 'Cases').")
    actions = cases.add_subparsers(dest="cases_command", metavar="ACTION", required=True)
    suggest = actions.add_parser("suggest", help="suggest a case for each persistently damp home without one",
                                 description="Suggest a damp and mould case for each home whose damp level was "
                                             "high or severe on each of the last N days and that has no case.")
    suggest.add_argument("--days", type=int, help="N (default CITYOPS_CASES__SUGGEST_AFTER_DAYS)")
    suggest.add_argument("--json", action="store_true", help="print JSON instead of text")
    suggest.set_defaults(handler=run_suggest)


async def run_suggest(args: argparse.Namespace, settings: Settings) -> int:
    days = args.days if args.days is not None else settings.cases.suggest_after_days
    if days < 1:
        raise SystemExit("cityops cases suggest: --days must be 1 or more")
    async with database_for(settings) as db:
        created = await lifecycle.suggest_from_sensors(
            db, datetime.now(UTC), days=days, sensor_is_awareness=settings.cases.sensor_alert_is_awareness)
    if args.json:
        print(json.dumps({"suggested": created, "days": days}))
    else:
        print(f"{len(created)} case(s) suggested for triage (damp high or severe on each of the last {days} days)"
              + (f": {', '.join(str(c) for c in created)}" if created else ""))
    return 0
