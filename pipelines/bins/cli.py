"""`cityops bins ...`: bin priorities from files, without a database.

    cityops bins assess --readings FILE.csv --now ISO [--bins FILE.csv] [--shift-start HH:MM] [--json]
        what the bins runner would say (rules.bins.assess.assess_fleet, the same code) about a
        CSV of readings: per bin fill_now, hours_to_threshold, priority, mandatory, reasons

A file that cannot be read exits 2 with `error:` naming the file, line and field, like
`cityops roads decide`; the columns are in rules/bins/files.py and docs/bins.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, time
from pathlib import Path
from typing import Any

from cityops.settings import Settings
from cityops.times import utc_argument
from rules.bins.assess import DEFAULT_SHIFT_START, BinVerdict, assess_fleet
from rules.bins.files import parse_bins, parse_readings
from rules.errors import InvalidBinsFile

BAD_FILE_EXIT = 2
COLUMNS = ("device_id", "fill_now", "hours_to_threshold", "priority", "mandatory", "reasons")


def register(commands: argparse._SubParsersAction[Any]) -> None:
    bins = commands.add_parser("bins", help="bins: fill, time to threshold and priority from CSV files",
                               description="Bins from files (docs/bins.md).")
    which = bins.add_subparsers(dest="bins_command", metavar="ACTION", required=True)
    assess = which.add_parser(
        "assess", help="assess bins from a CSV of readings, as the bins runner does",
        description="Per bin: the fill now, hours to the threshold (80 %%), the priority (0..100), whether it must "
                    "be emptied on the next shift, and why. Exit 2 when a file cannot be read.")
    assess.add_argument("--readings", type=Path, required=True, metavar="FILE.csv",
                        help="device_id,ts and fill_fraction and/or distance_mm; optional temp_c, tilt_deg")
    assess.add_argument("--bins", type=Path, metavar="FILE.csv",
                        help="device_id and optional bin_depth_mm, sensor_height_mm (above the empty bin's bottom), "
                             "sensor_type, bin_type, place, complaints, collection_weekdays")
    assess.add_argument("--now", type=utc_argument, required=True, metavar="ISO",
                        help="assess as of this time (ISO 8601, UTC if no offset)")
    assess.add_argument("--shift-start", type=_clock, default=DEFAULT_SHIFT_START, metavar="HH:MM",
                        help="the collection shift's start, UTC (default 06:00); the pass to beat is the one after "
                             "the next shift")
    assess.add_argument("--json", action="store_true", help="print a JSON list, one object per bin")
    assess.set_defaults(handler=run_assess)


async def run_assess(args: argparse.Namespace, settings: Settings) -> int:
    try:
        bins = parse_bins(_read(args.bins), str(args.bins)) if args.bins else {}
        inputs = parse_readings(_read(args.readings), str(args.readings), bins)
    except InvalidBinsFile as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"hint: {exc.hint}", file=sys.stderr)
        return BAD_FILE_EXIT
    fleet = assess_fleet(inputs, args.now, args.shift_start)
    verdicts = fleet.verdicts()
    if args.json:
        print(json.dumps([as_json(v) for v in verdicts], indent=2, ensure_ascii=False))
        return 0
    print(_table([_cells(v) for v in verdicts]))
    mandatory = sum(v.mandatory for v in verdicts)
    print(f"{len(verdicts)} bin(s) as of {args.now.astimezone(UTC):%Y-%m-%d %H:%M} UTC, pass to beat "
          f"{fleet.pass_to_beat:%Y-%m-%d %H:%M} UTC: {mandatory} mandatory")
    return 0


def as_json(v: BinVerdict) -> dict[str, Any]:
    """The keys of COLUMNS; null fill_now: unknown; null hours_to_threshold: unknown or not filling."""
    return {"device_id": v.device_id,
            "fill_now": round(v.fill_now, 3) if math.isfinite(v.fill_now) else None,
            "hours_to_threshold": round(v.hours_to_threshold, 1) if math.isfinite(v.hours_to_threshold) else None,
            "priority": round(v.priority, 1), "mandatory": v.mandatory, "reasons": v.reasons}


def _cells(v: BinVerdict) -> list[str]:
    hours = v.hours_to_threshold
    return [v.device_id, f"{v.fill_now:.0%}" if math.isfinite(v.fill_now) else "unknown",
            "unknown" if math.isnan(hours) else "not filling" if math.isinf(hours) else f"{hours:.1f}",
            f"{v.priority:.0f}", "yes" if v.mandatory else "no", v.reasons]


def _table(rows: list[list[str]]) -> str:
    widths = [max([len(name), *(len(r[i]) for r in rows)]) for i, name in enumerate(COLUMNS[:-1])]
    lines = [[*COLUMNS], *rows]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)), line[-1]])
                     for line in lines)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidBinsFile(f"cannot read it: {exc}", source=str(path)) from None


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day, e.g. 06:00") from None
