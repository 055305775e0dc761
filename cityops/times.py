"""Reading times the one way the platform reads them: ISO 8601, in UTC.

Data (forecast files, scenarios, CSV readings) must say its offset (`...Z` or `+00:00`):
a time without one could be local, and an hour's error on an ice night is a wrong decision.
Command-line arguments may leave it out and mean UTC. Standard library only.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def parse_utc(text: object, *, naive_is_utc: bool = False) -> datetime:
    """`text` as an aware UTC datetime; ValueError saying what is wrong with it."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"{text!r} has no UTC offset (write ...Z or +00:00)")
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_argument(text: str) -> datetime:
    """An argparse `type=`: ISO 8601, UTC when no offset is given."""
    try:
        return parse_utc(text, naive_is_utc=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
