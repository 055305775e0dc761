"""ingest_stalled: a consumer that has been reconnecting or stalled for more than a minute, or
has not written its heartbeat for that long while devices are registered to publish.

The facts are the consumers' own heartbeat rows (migration 0025, written by ingest/heartbeat.py
every few seconds with what ingest/health.py judges of the consumer's metrics: the same
judgement as `cityops ingest --check`). One alert per consumer (cause
`ingest_stalled:<client id>`):

    firing  its row names alarms (reconnecting, or messages waiting and no commit, for longer
            than its stall_after_s), or the row is older than stall_after_s (the process was
            killed, its host is gone, or it cannot reach the database) while active devices
            exist;
    clear   a fresh row without alarms, or "stopped" (a clean stop, SIGTERM: someone meant it);
    hold    a silent consumer while no device is active (nothing is waiting on it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from alerts.model import Severity, Signal, Status
from cityops.storage import Database

RULE = "ingest_stalled"

_BEATS = """
SELECT client_id, share_group, condition, alarms, state, stall_after_s, beat_at
FROM ingest_heartbeats WHERE beat_at <= $1::timestamptz + interval '5 seconds' ORDER BY client_id
"""


@dataclass(frozen=True)
class IngestBeat:
    client_id: str
    share_group: str
    condition: str            # connected | reconnecting | stalled | stopped
    alarms: tuple[str, ...]
    state: str
    stall_after_s: float
    beat_at: datetime


async def load_beats(db: Database, now: datetime) -> tuple[list[IngestBeat] | None, int, str | None]:
    """The heartbeat rows as of `now` and the number of active devices; None (and a note) without the
    table (before migration 0025)."""
    if await db.fetchval("SELECT to_regclass('ingest_heartbeats')") is None:
        return None, 0, "ingest_stalled not evaluated: no table ingest_heartbeats (migration 0025)"
    beats = [IngestBeat(**{**dict(r), "alarms": tuple(r["alarms"])}) for r in await db.fetch(_BEATS, now)]
    active = int(await db.fetchval("SELECT count(*) FROM devices WHERE status = 'active'"))
    return beats, active, None


def ingest_signals(beats: Sequence[IngestBeat], now: datetime, active_devices: int) -> Iterator[Signal]:
    for b in beats:
        silent = (now - b.beat_at).total_seconds()
        status: Status
        if b.condition == "stopped":
            status, title = "clear", f"Ingest consumer {b.client_id} stopped"
            detail = f"stopped cleanly (last heartbeat {b.beat_at:%H:%M:%S} UTC)"
        elif silent > b.stall_after_s:
            status = "firing" if active_devices else "hold"
            title = f"Ingest consumer {b.client_id} silent: readings are not being stored"
            detail = (f"no heartbeat for {silent:.0f} s (killed, host down, or no database); last said "
                      f"{b.condition}: {b.state}")
        elif b.alarms:
            status, title = "firing", f"Ingest consumer {b.client_id} {b.condition}: readings are not being stored"
            detail = "; ".join(b.alarms) + f" | {b.state}"
        else:
            status, title = "clear", f"Ingest consumer {b.client_id} {b.condition}"
            detail = b.state
        severity: Severity = "critical"
        yield Signal(RULE, f"{RULE}:{b.client_id}", status, severity, title,
                     detail + f" (group {b.share_group}; see `cityops ingest --check`, docs/ingest.md)",
                     silent)
