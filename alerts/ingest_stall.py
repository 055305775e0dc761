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

ingest_down: no consumer runs at all. A consumer stopped cleanly raises no ingest_stalled (someone
meant it), so an operator who stops every consumer and forgets to start one would hear nothing
while the broker's queues fill. One alert for the platform (cause `ingest_down:ingest`):

    firing  no consumer has a live heartbeat (every row says "stopped" or is older than its
            stall_after_s) and none has had one for longer than the stall period, while active
            devices exist;
    clear   a consumer has a live heartbeat: a fresh row that is not "stopped" (one that is
            reconnecting or stalled is running: ingest_stalled speaks for it);
    hold    within the stall period of the last one going, while no device is active, or with no
            heartbeat row at all (no consumer has run against this database: a new install).

A live consumer goes when it stops ("stopped": its beat_at) or when its row goes stale (beat_at +
stall_after_s), and the period is the stall_after_s of the last consumer to go: a consumer stopped
at 07:00 with the default 60 s raises ingest_down after 07:01; one killed at 07:00 raises its own
ingest_stalled after 07:01, and ingest_down after 07:02 when none has come back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.model import Severity, Signal, Status
from cityops.storage import Database

RULE = "ingest_stalled"
DOWN_RULE = "ingest_down"
DOWN_CAUSE = f"{DOWN_RULE}:ingest"

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


def _gone_at(b: IngestBeat) -> datetime:
    """When this consumer stopped having a live heartbeat: its clean stop, or its row going stale."""
    return b.beat_at if b.condition == "stopped" else b.beat_at + timedelta(seconds=b.stall_after_s)


def _live(b: IngestBeat, now: datetime) -> bool:
    return b.condition != "stopped" and (now - b.beat_at).total_seconds() <= b.stall_after_s


def ingest_down_signal(beats: Sequence[IngestBeat], now: datetime, active_devices: int) -> Signal:
    """One signal for the whole platform: is any consumer running at all (module docstring)."""
    severity: Severity = "critical"
    see = " (see `cityops ingest --check`, docs/ingest.md)"
    live = [b for b in beats if _live(b, now)]
    if live:
        names = ", ".join(b.client_id for b in live)
        return Signal(DOWN_RULE, DOWN_CAUSE, "clear", severity, f"Ingest running: {len(live)} consumer(s)",
                      f"live heartbeat from {names}" + see, 0.0)
    if not beats:
        return Signal(DOWN_RULE, DOWN_CAUSE, "hold", severity, "No ingest consumer has ever run here",
                      "no row in ingest_heartbeats: no consumer has written a heartbeat to this database" + see)
    last = max(beats, key=_gone_at)
    down_s = (now - _gone_at(last)).total_seconds()
    gone = "; ".join(
        f"{b.client_id} stopped at {b.beat_at:%Y-%m-%d %H:%M:%S} UTC" if b.condition == "stopped" else
        f"{b.client_id} silent since {b.beat_at:%Y-%m-%d %H:%M:%S} UTC (last said {b.condition})"
        for b in sorted(beats, key=_gone_at, reverse=True))
    status: Status = "firing" if down_s > last.stall_after_s and active_devices else "hold"
    return Signal(DOWN_RULE, DOWN_CAUSE, status, severity,
                  "No ingest consumer is running: readings are not being stored",
                  f"no live consumer for {max(down_s, 0.0):.0f} s, {active_devices} active devices waiting: {gone}. "
                  f"Start one (`cityops ingest`, or its systemd unit); the broker holds what the devices "
                  f"send until its queue limit" + see, down_s)
