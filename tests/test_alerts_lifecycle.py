"""Alert lifecycle (pure): one open alert per cause, no flapping, escalation, acknowledging."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.errors import InvalidTransition
from alerts.lifecycle import LifecyclePolicy, acknowledge, step
from alerts.model import Alert, Member, Signal
from alerts.rules import band

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
POLICY = LifecyclePolicy(clear_hold=timedelta(minutes=30), escalate_after=timedelta(minutes=30), max_level=2)
RAISE_V, CLEAR_V = 3.45, 3.6


def battery(volts: float, severity: str = "warning") -> Signal:
    return Signal("battery_low", "battery_low:frog-1", band(volts, RAISE_V, CLEAR_V, rising=False),
                  severity, "Battery low on frog-1", f"{volts:.2f} V", volts, "frog-1")  # type: ignore[arg-type]


def run(values: list[float], minutes: int = 5, policy: LifecyclePolicy = POLICY,
        ack_after: int | None = None) -> tuple[list[Alert], list[str]]:
    """Feed the values one step apart; give every alert that existed and every transition."""
    current: Alert | None = None
    alerts: list[Alert] = []
    kinds: list[str] = []
    for i, v in enumerate(values):
        now = T0 + timedelta(minutes=minutes * i)
        if ack_after is not None and i == ack_after and current is not None and current.state == "open":
            current = acknowledge(current, "duty officer", now).alert
        result = step(current, battery(v), now, policy)
        kinds += [t.kind for t in result.transitions]
        if result.alert is not None and result.alert.alert_id is None:  # a new one: give it an id
            result = replace(result, alert=replace(result.alert, alert_id=len(alerts) + 1))
            alerts.append(result.alert)  # type: ignore[arg-type]
        current = result.alert if result.alert is None or result.alert.state != "resolved" else None
        if result.alert is not None and result.alert.alert_id is not None:
            alerts[result.alert.alert_id - 1] = result.alert
    return alerts, kinds


def test_open_then_resolve_after_the_clear_hold() -> None:
    alerts, kinds = run([3.4, 3.4, 3.7, 3.7, 3.7, 3.7, 3.7, 3.7, 3.7])
    assert kinds == ["opened", "resolved"]
    (alert,) = alerts
    assert alert.state == "resolved"
    assert alert.resolved_at == T0 + timedelta(minutes=40)  # clear from 10 min, held 30 min


def test_a_value_back_in_the_hold_zone_restarts_the_clear_spell() -> None:
    alerts, kinds = run([3.4, 3.7, 3.7, 3.5, 3.7, 3.7, 3.7, 3.7, 3.7, 3.7, 3.7])
    assert kinds == ["opened", "resolved"]  # and no escalation while it was clearing
    assert alerts[0].resolved_at == T0 + timedelta(minutes=50)


# a value hovering around the raise threshold, inside the clear threshold: never resolves
@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=RAISE_V - 0.1, max_value=CLEAR_V - 0.01), min_size=1, max_size=60))
def test_hovering_at_the_threshold_opens_at_most_one_alert(values: list[float]) -> None:
    alerts, kinds = run(values)
    assert len(alerts) <= 1
    assert kinds.count("opened") <= 1 and "resolved" not in kinds
    assert (len(alerts) == 1) == any(v <= RAISE_V for v in values)


# even a value swinging across both thresholds opens at most one alert per clear hold
@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([3.3, 3.5, 3.7]), min_size=1, max_size=80))
def test_flapping_across_both_thresholds_is_bounded_by_the_clear_hold(values: list[float]) -> None:
    minutes = 5
    alerts, kinds = run(values, minutes=minutes)
    duration = timedelta(minutes=minutes * len(values))
    assert len(alerts) <= 1 + duration // POLICY.clear_hold
    assert sum(1 for a in alerts if a.state != "resolved") <= 1   # never two open at once
    # every alert but the last is resolved, and each stayed clear for the whole hold first
    assert all(a.state == "resolved" for a in alerts[:-1])
    assert kinds.count("opened") == len(alerts)


def test_escalates_every_interval_until_acknowledged_or_the_max_level() -> None:
    alerts, kinds = run([3.4] * 30, minutes=10)  # open 5 h, never acknowledged
    (alert,) = alerts
    assert kinds == ["opened", "escalated", "escalated"]  # max_level 2
    assert alert.escalation_level == 2
    assert alert.escalated_at == T0 + timedelta(minutes=60)


def test_escalation_is_exactly_at_the_set_time() -> None:
    opened = step(None, battery(3.4), T0, POLICY).alert
    assert opened is not None
    early = step(opened, battery(3.4), T0 + timedelta(minutes=29, seconds=59), POLICY)
    assert [t.kind for t in early.transitions] == []
    due = step(opened, battery(3.4), T0 + timedelta(minutes=30), POLICY)
    assert [t.kind for t in due.transitions] == ["escalated"]
    assert due.alert is not None and due.alert.escalation_level == 1


def test_acknowledged_alerts_do_not_escalate() -> None:
    alerts, kinds = run([3.4] * 30, minutes=10, ack_after=2)
    assert kinds == ["opened"] and alerts[0].state == "acknowledged" and alerts[0].escalation_level == 0


def test_info_alerts_never_escalate_and_severity_only_worsens() -> None:
    opened = step(None, battery(3.4, "info"), T0, POLICY).alert
    assert opened is not None
    later = step(opened, battery(3.4, "info"), T0 + timedelta(hours=5), POLICY)
    assert later.transitions == ()
    worse = step(opened, battery(3.2, "critical"), T0 + timedelta(minutes=1), POLICY)
    assert [t.kind for t in worse.transitions] == ["worsened"] and worse.alert.severity == "critical"  # type: ignore[union-attr]
    better = step(worse.alert, battery(3.4, "warning"), T0 + timedelta(minutes=2), POLICY)
    assert better.alert.severity == "critical" and better.transitions == ()  # type: ignore[union-attr]


def test_acknowledge_is_idempotent_and_refused_when_resolved() -> None:
    opened = step(None, battery(3.4), T0, POLICY).alert
    assert opened is not None
    acked = acknowledge(opened, "amy", T0 + timedelta(minutes=3))
    assert [t.kind for t in acked.transitions] == ["acknowledged"] and acked.alert.acknowledged_by == "amy"  # type: ignore[union-attr]
    again = acknowledge(acked.alert, "bob", T0 + timedelta(minutes=4))  # type: ignore[arg-type]
    assert not again.changed and again.alert.acknowledged_by == "amy"  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition):
        acknowledge(replace(opened, state="resolved"), "amy", T0)
    with pytest.raises(InvalidTransition):
        acknowledge(opened, "  ", T0)


def test_a_missing_signal_counts_as_clear() -> None:
    opened = step(None, battery(3.4), T0, POLICY).alert
    first = step(opened, None, T0 + timedelta(minutes=5), POLICY)
    assert first.alert is not None and first.alert.clear_since == T0 + timedelta(minutes=5)
    done = step(first.alert, None, T0 + timedelta(minutes=35), POLICY)
    assert [t.kind for t in done.transitions] == ["resolved"] and done.transitions[0].detail == "no longer reported"


def group(*ids: str, coldest: float = -1.0) -> Signal:
    """A route's group of segments to treat; not mentioned (None) when it is empty."""
    return Signal("route_treatment", "route_treatment:north:wet_road", "firing", "warning",
                  f"North route needs treatment: {len(ids)} segments", "", coldest, route_id="north",
                  members=tuple(Member(i, value=coldest) for i in ids))


def test_a_group_keeps_its_alert_while_its_members_change_and_says_who_joined_and_left() -> None:
    opened = step(None, group("s1", "s2"), T0, POLICY).alert
    assert opened is not None and opened.member_ids == {"s1", "s2"}
    grown = step(opened, group("s1", "s2", "s3", "s4"), T0 + timedelta(minutes=1), POLICY)
    assert [(t.kind, t.detail) for t in grown.transitions] == [("updated", "2 -> 4 members: joined s3, s4")]
    assert grown.alert is not None and grown.alert.alert_id is None and grown.alert.title.endswith("4 segments")
    swapped = step(grown.alert, group("s1", "s5", coldest=-2.0), T0 + timedelta(minutes=2), POLICY)
    assert swapped.transitions[0].detail == "4 -> 2 members: joined s5; left s2, s3, s4"
    # the same segments, colder: the alert is rewritten (saved) but there is nothing to tell
    colder = step(swapped.alert, group("s1", "s5", coldest=-3.0), T0 + timedelta(minutes=3), POLICY)
    assert colder.changed and colder.transitions == () and colder.alert.value == -3.0  # type: ignore[union-attr]
    # the group empties: the rule no longer mentions it, and it resolves after the clear hold
    emptied = step(colder.alert, None, T0 + timedelta(minutes=4), POLICY)
    done = step(emptied.alert, None, T0 + timedelta(minutes=34), POLICY)
    assert [t.kind for t in done.transitions] == ["resolved"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sets(st.sampled_from(["s1", "s2", "s3", "s4"])), min_size=1, max_size=80))
def test_a_group_whose_members_keep_changing_opens_a_new_alert_only_after_a_clear_hold_empty(
        memberships: list[set[str]]) -> None:
    current: Alert | None = None
    kinds: list[str] = []
    empty_for = 0   # minutes the group has been empty
    for i, ids in enumerate(memberships):
        result = step(current, group(*sorted(ids)) if ids else None, T0 + timedelta(minutes=i), POLICY)
        kinds += [t.kind for t in result.transitions]
        if any(t.kind == "resolved" for t in result.transitions):
            assert empty_for >= POLICY.clear_hold // timedelta(minutes=1)
        current = result.alert if result.alert is None or result.alert.state != "resolved" else None
        empty_for = 0 if ids else empty_for + 1
        if current is not None and ids:
            assert current.member_ids == ids
    assert kinds.count("opened") == kinds.count("resolved") + (current is not None)
    assert (kinds.count("opened") >= 1) == any(memberships)
