"""`cityops damp ...`: the Awaab's Law clocks worked out from the command line.

    cityops damp deadlines --aware ISO --category significant|emergency [--investigated ISO] [--json]

Every due time for a case whose landlord became aware at --aware, from the same code the cases
use (rules/cases/clocks.py): England's working days and bank holidays, London days. Times
without an offset are London local time (what an officer reads off a letter or a call log).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from cityops.settings import Settings
from rules.cases import clocks


def register(commands: argparse._SubParsersAction[Any]) -> None:
    damp = commands.add_parser("damp", help="damp and mould cases: Awaab's Law due times",
                               description="Damp and mould cases for landlords (docs/cases.md).")
    which = damp.add_subparsers(dest="damp_command", metavar="ACTION", required=True)
    deadlines = which.add_parser(
        "deadlines", help="every Awaab's Law due time for a case the landlord became aware of then",
        description="Print every Awaab's Law clock for a case: when it falls due (London time with its UTC "
                    "offset, and in plain words) and the regulation it comes from. Working days skip weekends "
                    "and bank holidays in England.")
    deadlines.add_argument("--aware", type=london_argument, required=True, metavar="ISO",
                           help="when the landlord became aware (ISO 8601; London time if no offset)")
    deadlines.add_argument("--category", choices=clocks.CATEGORIES, required=True,
                           help="emergency (24-hour clocks) or significant (working-day clocks)")
    deadlines.add_argument("--investigated", type=london_argument, metavar="ISO",
                           help="when the investigation concluded: the clocks that run from it get a due time")
    deadlines.add_argument("--json", action="store_true", help="one JSON document instead of text")
    deadlines.set_defaults(handler=run_deadlines)


def london_argument(text: str) -> datetime:
    """An argparse `type=`: ISO 8601, Europe/London when no offset is given, returned in UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clocks.LONDON)
    return moment.astimezone(UTC)


def deadlines(category: clocks.Category, aware: datetime, investigated: datetime | None,
              now: datetime) -> dict[str, Any]:
    """The clocks as a JSON-ready document (what --json prints)."""
    calendar = clocks.WorkingDays.england()
    found = clocks.case_clocks(category, {"aware": aware, "investigated": investigated}, now, calendar=calendar)
    return {
        "category": category,
        "as_of": now.isoformat(),       # the time the states are for
        "aware": clocks.local_time(aware, calendar),
        "investigated": None if investigated is None else clocks.local_time(investigated, calendar),
        "working_days": calendar.name,
        "clocks": [{
            "key": clock.key, "label": clock.label, "starts_from": clock.starts_from,
            "due": None if clock.due is None else clock.due.isoformat(),
            "due_local": None if clock.due is None else clocks.local_time(clock.due, calendar),
            "due_in_words": None if clock.due is None else clocks.due_in_words(clock.due, calendar),
            "state": clock.state, "source": clock.source,
        } for clock in found],
        "alternative_accommodation": clocks.ALTERNATIVE_ACCOMMODATION,
    }


async def run_deadlines(args: argparse.Namespace, settings: Settings) -> int:
    doc = deadlines(args.category, args.aware, args.investigated, datetime.now(UTC))
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{doc['category']} hazard, landlord aware {doc['aware']}"
          + (f", investigation concluded {doc['investigated']}" if doc["investigated"] else ""))
    print(f"working days: {doc['working_days']}")
    for clock in doc["clocks"]:
        if clock["due"] is None:
            print(f"- {clock['label']}: runs once the case is {clock['starts_from']} "
                  f"(give --{clock['starts_from']})")
        else:
            print(f"- {clock['label']}: {clock['due_in_words']} ({clock['due_local']})")
        print(f"    {clock['source']}")
    print(f"- Suitable alternative accommodation: not a clock. {doc['alternative_accommodation']}")
    return 0
