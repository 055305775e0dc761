"""What a consumer's metrics say about its health: pure, for `cityops ingest --check` and the
ingest_stalled alert (alerts/ingest_stall.py) alike.

Unhealthy: not running; not connected to the broker (with how long it has been
reconnecting); or stalled: messages waiting (in its batches, delivered and not taken, or
held by the broker for its subscribers) and no commit for `stall_after_s`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Condition = Literal["connected", "reconnecting", "stalled", "stopped"]


@dataclass(frozen=True)
class Health:
    problems: list[str]  # what --check reports (not connected counts at once)
    alarms: list[str]    # what has lasted more than stall_after_s: the ingest_stalled alert
    state: str  # connected or reconnecting, the broker's backlog, the newest reading's age
    condition: Condition = "connected"  # in one word, for the heartbeat row (ingest/heartbeat.py)


def metric_values(samples: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Samples by name; a labelled metric's samples summed (messages_total over its channels)."""
    values: dict[str, float] = {}
    for name, value in samples:
        values[name] = values.get(name, 0.0) + value
    return values


def judge(values: dict[str, float], now: float, stall_after_s: float) -> Health:
    """What a consumer's metrics say (pure: the alert rule reads the same numbers)."""
    problems, alarms = [], []
    condition: Condition = "connected"
    if values.get("cityops_ingest_up") != 1:
        problems.append("not running")
        condition = "stopped"
    connected = values.get("cityops_ingest_broker_connected") == 1
    since = values.get("cityops_ingest_reconnecting_since_timestamp_seconds", 0.0)
    if connected:
        confirmed = values.get("cityops_ingest_subscribed") == 1
        state = "connected" + ("" if confirmed else ", subscription not yet confirmed")
    else:
        condition = "reconnecting" if condition != "stopped" else condition
        state = f"reconnecting for {now - since:.0f} s" if since else "not connected"
        problems.append("not connected to the broker" + (f" (reconnecting for {now - since:.0f} s)" if since else ""))
        if since and now - since > stall_after_s:
            alarms.append(f"reconnecting to the broker for {now - since:.0f} s")
    backlog = values.get("cityops_ingest_broker_backlog_messages", -1.0)
    state += f"; broker backlog {backlog:.0f} messages" if backlog >= 0 else "; broker backlog not reported"
    if values.get("cityops_ingest_telemetry_paused") == 1:
        state += " (telemetry paused: above the high-water mark, devices keep their readings)"
    newest = values.get("cityops_ingest_newest_reading_timestamp_seconds", 0.0)
    state += f"; newest stored reading {now - newest:.0f} s old" if newest else "; nothing stored yet"
    last = values.get("cityops_ingest_last_commit_timestamp_seconds", 0.0)
    waiting = (values.get("cityops_ingest_in_flight_messages", 0.0) + values.get("cityops_ingest_waiting_messages", 0.0)
               + max(0.0, backlog))
    if connected and waiting and last and now - last > stall_after_s:
        problems.append(f"stalled: {waiting:.0f} messages waiting and no commit for {now - last:.0f} s")
        alarms.append(problems[-1])
        condition = "stalled"
    state += f"; {values.get('cityops_ingest_messages_total', 0):.0f} messages so far"
    return Health(problems, alarms, state, condition)
