"""The time the platform runs on: the real UTC clock, or a clock another program keeps in a file.

In production `CITYOPS_API__CLOCK_FILE` is unset and the platform's time is the real UTC time.
A program that runs its own clock (the demo town replays a week, then catches up with the
real clock) keeps it in that file as an anchor, which the API reads on each request:

    {"at": "2026-12-06T18:00:00+00:00", "real": "2026-12-07T20:00:00+00:00", "rate": 60.0}

The clock read `at` at the real instant `real` and has run `rate` seconds per real second
since (0: it stands still), never past the real clock. A missing or unreadable file means the
real clock, with a warning in the log. Standard library only.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cityops.times import parse_utc

log = logging.getLogger("cityops.clock")


@dataclass(frozen=True)
class ClockAnchor:
    """A clock that read `at` at the real instant `real`, running `rate` times real time."""

    at: datetime
    real: datetime
    rate: float = 1.0

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.real.tzinfo is None:
            raise ValueError("a clock anchor's times need a UTC offset")
        if not self.rate >= 0:
            raise ValueError(f"a clock's rate cannot be {self.rate}")

    def now(self, real_now: datetime) -> datetime:
        """Its time at the real instant `real_now`: never past the real clock."""
        ran = max(real_now - self.real, timedelta(0)) * self.rate
        return min(self.at + ran, real_now).astimezone(UTC)

    def as_json(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "real": self.real.isoformat(), "rate": self.rate}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ClockAnchor:
        rate = data.get("rate", 1.0)
        if not isinstance(rate, int | float):
            raise ValueError(f"rate {rate!r} is not a number")
        return cls(parse_utc(data["at"]), parse_utc(data["real"]), float(rate))


def write_anchor(path: Path, anchor: ClockAnchor) -> None:
    """Replace the file in one step, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(anchor.as_json()))
    partial.replace(path)


def read_anchor(path: Path) -> ClockAnchor:
    """The anchor in the file; OSError or ValueError saying what is wrong."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        return ClockAnchor.from_json(data)
    except KeyError as exc:
        raise ValueError(f"no {exc.args[0]!r}") from None


def platform_now(clock_file: Path | None, real_now: datetime | None = None) -> datetime:
    """The platform's time now: the file's clock when there is one, otherwise the real UTC time."""
    real = real_now if real_now is not None else datetime.now(UTC)
    if clock_file is None:
        return real
    try:
        return read_anchor(clock_file).now(real)
    except (OSError, ValueError) as exc:
        log.warning("clock file %s unreadable (%s): using the real clock", clock_file, exc)
        return real
