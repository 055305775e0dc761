"""An alert's life: open -> (acknowledged) -> resolved, as pure functions of (alert, signal, now).

    firing       no alert: open one. An open one: keep it, note the time; a higher severity
                 is a `worsened` transition (a lower one is not: the alert keeps its worst).
                 A group whose members changed keeps its alert: the members are replaced and
                 an `updated` transition says who joined and who left (history, not notified).
    hold         between the raise and clear thresholds: nothing changes, and a clear spell
                 that had begun is forgotten.
    clear        the clear spell starts (clear_since); the alert resolves once the condition
                 has stayed clear for `clear_hold`. With the threshold gap this is the
                 hysteresis: a value hovering at a threshold keeps one alert open.
    escalation   an alert still `open` (not acknowledged) `escalate_after` after it opened (or
                 after its last escalation) goes up one level, up to `max_level`; `info`
                 alerts, and alerts whose condition is clearing, do not escalate.

One alert per cause: a new alert opens only when the cause has none open (the database's
unique partial index enforces the same).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from alerts.errors import InvalidTransition
from alerts.model import SEVERITY_RANK, Alert, Member, Signal, Transition


@dataclass(frozen=True)
class LifecyclePolicy:
    clear_hold: timedelta = timedelta(minutes=30)
    escalate_after: timedelta = timedelta(minutes=30)
    max_level: int = 3


@dataclass(frozen=True)
class Step:
    """The alert after one step (None: there is none) and the transitions taken to get there."""

    alert: Alert | None
    transitions: tuple[Transition, ...] = ()
    changed: bool = False


def open_alert(signal: Signal, now: datetime) -> Alert:
    return Alert(None, signal.rule, signal.cause, signal.severity, "open", signal.title, signal.detail,
                 opened_at=now, last_firing_at=now, device_id=signal.device_id, household_id=signal.household_id,
                 area=signal.area, route_id=signal.route_id, value=signal.value, members=signal.members,
                 landlord_id=signal.landlord_id)


def membership_change(before: tuple[Member, ...], after: tuple[Member, ...], shown: int = 10) -> str | None:
    """'3 -> 5 members: joined a, b; left c' or None when the same ids are in."""
    old, new = [m.id for m in before], [m.id for m in after]
    joined, left = [i for i in new if i not in set(old)], [i for i in old if i not in set(new)]
    if not joined and not left:
        return None

    def some(ids: list[str]) -> str:
        return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")

    parts = []
    if joined:
        parts.append(f"joined {some(joined)}")
    if left:
        parts.append(f"left {some(left)}")
    return f"{len(old)} -> {len(new)} members: {'; '.join(parts)}"


def step(alert: Alert | None, signal: Signal | None, now: datetime, policy: LifecyclePolicy) -> Step:
    """One evaluation of one cause. `signal` None means the rule ran and did not mention it: clear."""
    if alert is None or alert.state == "resolved":
        if signal is not None and signal.status == "firing":
            return Step(open_alert(signal, now), (Transition("opened", now, signal.detail),), True)
        return Step(None)
    status = signal.status if signal is not None else "clear"
    transitions: list[Transition] = []
    updated = alert
    if status == "firing" and signal is not None:
        updated = replace(updated, clear_since=None, last_firing_at=now, title=signal.title, detail=signal.detail,
                          value=signal.value, members=signal.members)
        change = membership_change(alert.members, signal.members)
        if change is not None:
            transitions.append(Transition("updated", now, change))
        if SEVERITY_RANK[signal.severity] > SEVERITY_RANK[alert.severity]:
            updated = replace(updated, severity=signal.severity)
            transitions.append(Transition("worsened", now, f"{alert.severity} -> {signal.severity}: {signal.detail}"))
    elif status == "hold":
        updated = replace(updated, clear_since=None)
    else:
        clear_since = alert.clear_since or now
        updated = replace(updated, clear_since=clear_since)
        if now - clear_since >= policy.clear_hold:
            detail = signal.detail if signal is not None else "no longer reported"
            resolved = replace(updated, state="resolved", resolved_at=now)
            return Step(resolved, (Transition("resolved", now, detail),), True)
    escalated = escalate(updated, now, policy)
    if escalated is not None:
        updated = escalated
        transitions.append(Transition("escalated", now, f"not acknowledged: level {escalated.escalation_level}"))
    # last_firing_at alone is not worth a write each cycle: it is saved with any other change
    return Step(updated, tuple(transitions), replace(updated, last_firing_at=alert.last_firing_at) != alert)


def escalation_due(alert: Alert, policy: LifecyclePolicy) -> datetime | None:
    """When this alert escalates next, if it can."""
    if (alert.state != "open" or alert.severity == "info" or alert.escalation_level >= policy.max_level
            or alert.clear_since is not None):  # clearing: it may resolve, no need to wake anyone
        return None
    return (alert.escalated_at or alert.opened_at) + policy.escalate_after


def escalate(alert: Alert, now: datetime, policy: LifecyclePolicy) -> Alert | None:
    due = escalation_due(alert, policy)
    if due is None or now < due:
        return None
    return replace(alert, escalation_level=alert.escalation_level + 1, escalated_at=now)


def acknowledge(alert: Alert, by: str, now: datetime) -> Step:
    """Someone has it in hand: escalation stops. Acknowledging twice changes nothing."""
    if not by.strip():
        raise InvalidTransition("say who acknowledges the alert", hint="--by NAME")
    if alert.state == "resolved":
        raise InvalidTransition(f"alert {alert.alert_id} is already resolved")
    if alert.state == "acknowledged":
        return Step(alert)
    acked = replace(alert, state="acknowledged", acknowledged_at=now, acknowledged_by=by)
    return Step(acked, (Transition("acknowledged", now, "", actor=by),), True)
