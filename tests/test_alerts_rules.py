"""The alert rules (pure): raise and clear thresholds, holds, and what is not evaluated."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from alerts.groups import Candidate, regroup, segment_cause
from alerts.model import Member, Signal
from alerts.rules import (
    BinEventFact,
    BinPriorityFact,
    DampFact,
    DeviceFact,
    Facts,
    RouteFact,
    SegmentFact,
    band,
    evaluate,
    stuck_status,
)
from cityops.settings import AlertsSettings
from rules.gritting.decide import DRY, ICE, SNOW_LIGHT, SNOW_NONE, TREAT, Conditions, DecisionSettings, decide_segments
from rules.gritting.decide import WET as WET_STATE

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
S = AlertsSettings()


def by_cause(facts: Facts) -> dict[str, Signal]:
    return {s.cause: s for s in evaluate(facts, S).signals}


def test_band_has_a_hold_zone_between_raise_and_clear() -> None:
    assert [band(v, 100, 20) for v in (150, 100, 60, 20, 0)] == ["firing", "firing", "hold", "clear", "clear"]
    assert [band(v, 3.45, 3.6, rising=False) for v in (3.2, 3.45, 3.5, 3.6, 4.0)] == \
        ["firing", "firing", "hold", "clear", "clear"]


def test_damp_high_and_severe_fire_medium_holds_low_clears_unknown_holds() -> None:
    levels = {"a1": "severe", "a2": "high", "a3": "medium", "a4": "low", "a5": "unknown"}
    signals = by_cause(Facts(NOW, damp=[DampFact(d, f"h-{d}", "Easton", lvl, NOW) for d, lvl in levels.items()]))
    assert {c.split(":")[1]: (s.status, s.severity) for c, s in signals.items()} == {
        "a1": ("firing", "critical"), "a2": ("firing", "warning"), "a3": ("hold", "warning"),
        "a4": ("clear", "warning"), "a5": ("hold", "warning")}
    assert signals["damp_risk:a1"].household_id == "h-a1" and signals["damp_risk:a1"].area == "Easton"


WET = "wet road and lowest RST {:+.1f} °C at 03:00, at or below the trigger +1.0 °C; spread 16 g/m²"
HOAR = "hoar frost: RST -1.0 °C at 04:00 at or below the frost point -0.5 °C; spread 8 g/m²"
SNOW = "light snow forecast at 23:00; wet road, lowest RST -0.5 °C at 04:00; spread 20 g/m²"


def segment(segment_id: str, route_id: str | None, action: str, rst: float | None, reason: str = "",
            hazard_h: float | None = None, priority: int = 2) -> SegmentFact:
    return SegmentFact(segment_id, f"{segment_id.title()} Road", route_id, action, rst,
                       NOW + timedelta(hours=6) if rst is not None else None, reason, 7,
                       route_name=f"{route_id} gritting route" if route_id else None, priority=priority,
                       hazard_at=NOW + timedelta(hours=hazard_h) if hazard_h is not None else None)


def route(route_id: str, decision: str, *, late: bool = False) -> RouteFact:
    start = NOW - timedelta(minutes=5) if late else NOW + timedelta(hours=2)
    return RouteFact(route_id, f"{route_id.title()} gritting route", decision == "send", f"{decision}: because", 2,
                     812.0, start if decision == "send" else None, 7, decision)


def members(signals: dict[str, Signal]) -> dict[str, list[str]]:
    return {c: [m.id for m in s.members] for c, s in signals.items()}


def test_roads_give_one_alert_per_route_and_cause_with_the_segments_inside() -> None:
    segments = [segment("s1", "north", "treat", -1.5, WET.format(-1.5), hazard_h=9.5, priority=1),
                segment("s2", "north", "treat", 0.4, WET.format(0.4), hazard_h=10),
                segment("s3", "north", "treat", -1.0, HOAR, hazard_h=16),
                segment("s4", "north", "monitor", 1.6),      # to monitor, in no group before: in none
                segment("s5", "north", "none", 4.0),
                segment("s6", None, "treat", -0.5, SNOW, hazard_h=11),
                segment("s7", "south", "none", 3.0)]
    signals = by_cause(Facts(NOW, segments=segments, routes=[route("north", "send", late=True),
                                                             route("south", "not_needed")]))
    assert members(signals) == {"route_treatment:north:wet_road": ["s1", "s2"],   # the first hazard first
                                "route_treatment:north:hoar_frost": ["s3"], "road_freeze:off-route:snow": ["s6"]}
    wet = signals["route_treatment:north:wet_road"]
    assert wet.title == "North gritting route needs treatment (wet or damp roads freezing): 2 segments, from 21:30 UTC"
    assert (wet.status, wet.severity, wet.route_id, wet.value) == ("firing", "critical", "north", -1.5)
    assert wet.members[0].note == "priority 1, lowest -1.5 °C at 18:00 UTC, treat from 21:30 UTC"
    assert "- S1 Road (s1): priority 1, lowest -1.5 °C" in wet.detail
    assert "Route decision: send: because" in wet.detail and "Late: it should have left by 11:55 UTC" in wet.detail
    off = signals["road_freeze:off-route:snow"]
    assert off.title == ("Roads off the gritting routes need treatment (snow or freezing rain): 1 segment, "
                         "from 23:00 UTC")
    assert (off.severity, off.route_id) == ("warning", None)
    # the route to send with time to spare: a warning
    on_time = by_cause(Facts(NOW, segments=segments, routes=[route("north", "send")]))
    assert on_time["route_treatment:north:wet_road"].severity == "warning"
    assert "Leave by 14:00 UTC." in on_time["route_treatment:north:wet_road"].detail


def test_a_route_with_no_usable_temperature_is_critical_decide_by_patrol() -> None:
    segments = [segment("s1", "south", "monitor", None, "no road surface temperature: check by patrol", priority=1),
                segment("s0", "south", "monitor", None, "no road surface temperature", priority=3),
                segment("s2", "south", "none", 3.0, priority=1)]
    unknown = RouteFact("south", "South gritting route", False, "UNKNOWN: 1 priority-1 segment(s) have no usable "
                        "road temperature", 0, 0.0, None, 7, "unknown")
    evaluation = evaluate(Facts(NOW, segments=segments, routes=[unknown]), S)
    (signal,) = evaluation.signals
    assert signal.cause == "route_treatment:south:no_data"
    assert signal.title == "South gritting route: no usable road temperature, decide by patrol"
    assert (signal.severity, signal.status, signal.route_id) == ("critical", "firing", "south")
    assert [m.id for m in signal.members] == ["s1", "s0"]  # priority 1 first
    assert "Route decision: UNKNOWN: 1 priority-1" in signal.detail
    assert evaluation.evaluated >= {"road_freeze", "route_treatment"}
    # no decision column (before migration 0015): `send` says it, and nothing is unknown
    legacy = replace(unknown, decision=None)
    assert legacy.outcome == "not_needed"
    assert evaluate(Facts(NOW, segments=segments, routes=[legacy]), S).signals == []


def test_road_members_hold_while_monitored_and_stay_in_their_most_demanding_cause() -> None:
    routes = [route("north", "send")]
    first = by_cause(Facts(NOW, segments=[segment("s1", "north", "treat", -2.0, HOAR),
                                          segment("s2", "north", "treat", 0.5, WET.format(0.5))], routes=routes))
    previous = {c: frozenset(m.id for m in s.members) for c, s in first.items()}
    assert previous == {"route_treatment:north:hoar_frost": {"s1"}, "route_treatment:north:wet_road": {"s2"}}
    # s1 now reads as a wet road (which ranks above hoar frost): it moves; s2 is only to monitor: it stays;
    # s3 to monitor was in no group: it stays out
    later = [segment("s1", "north", "treat", -2.0, WET.format(-2.0)), segment("s2", "north", "monitor", 1.5),
             segment("s3", "north", "monitor", 1.5)]
    signals = {s.cause: s for s in evaluate(Facts(NOW, segments=later, routes=routes), S, previous).signals}
    assert members(signals) == {"route_treatment:north:wet_road": ["s1", "s2"]}
    assert signals["route_treatment:north:wet_road"].members[1].note == \
        "priority 2, lowest +1.5 °C at 18:00 UTC, monitor now"
    # and back to hoar frost: s1 stays with the wet roads (the heavier treatment)
    moved = {c: frozenset(m.id for m in s.members) for c, s in signals.items()}
    back = [segment("s1", "north", "treat", -2.0, HOAR)]
    assert [s.cause for s in evaluate(Facts(NOW, segments=back, routes=routes), S, moved).signals] == \
        ["route_treatment:north:wet_road"]
    # nothing to treat or monitor: no group left, so every alert clears
    assert evaluate(Facts(NOW, segments=[segment("s1", "north", "none", 3.0)], routes=routes), S, moved).signals == []


@pytest.mark.parametrize(("reason", "surface", "cause"), [
    (WET.format(0.2), "wet", "wet_road"),
    (HOAR, "dry", "hoar_frost"),
    ("hoar frost: RST -1.0 °C at 14:00 at or below the frost point -0.5 °C; damp (dew or frost forms at 14:00: RST "
     "at or below the dew point; dry now) road, lowest RST -2.0 °C at 15:00; spread 8 g/m²", "damp", "hoar_frost"),
    ("damp road and lowest RST +0.5 °C at 03:00, at or below the trigger +1.0 °C; spread 8 g/m²", "damp",
     "wet_road"),
    ("dew freezing: RST -0.5 °C at 02:00 below 0 °C and the dew point +0.5 °C; spread 8 g/m²", "dry", "hoar_frost"),
    ("hoar frost: RST -1.0 °C at 02:00 at or below the frost point -0.8 °C; wet road, lowest RST -1.0 °C at 02:00; "
     "spread 16 g/m²", "wet", "wet_road"),
    ("ice on the road now; spread 16 g/m²", "ice", "ice"),
    ("ice on the road now (road temperature unknown); spread 16 g/m²", "unknown", "ice"),
    (SNOW, "wet", "snow"),
    ("medium/heavy snow or freezing rain forecast at 01:00; spread 2 x 20 g/m²", "dry", "snow"),
])
def test_a_segments_cause_is_its_most_demanding_reason(reason: str, surface: str, cause: str) -> None:
    assert segment_cause(reason, surface) == cause


def test_the_gritting_rules_reasons_map_to_the_causes_they_name() -> None:
    """Contract with rules/gritting/decide.py: its words for each hazard give that cause."""
    times = [NOW + timedelta(hours=h) for h in range(4)]
    rst = np.array([[2.0, 1.0, 0.5, 0.3],        # a wet road at the trigger
                    [2.0, 0.0, -1.0, -2.0],      # a dry road below the frost point: hoar frost
                    [-1.0, -1.0, -1.0, -1.0],    # ice on the road now
                    [3.0, 3.0, 3.0, 3.0]])       # warm, but snow forecast
    frost_point = np.array([[-5.0] * 4, [-0.5] * 4, [-5.0] * 4, [-5.0] * 4])
    n, m = rst.shape
    conditions = Conditions(times=times, rst_c=rst, frost_point_c=frost_point,
                            state=np.array([WET_STATE, DRY, ICE, DRY]), rain_from=np.full(n, m),
                            snow=np.array([SNOW_NONE, SNOW_NONE, SNOW_NONE, SNOW_LIGHT]),
                            snow_from=np.array([m, m, m, 2]), length_m=np.full(n, 100.0), width_m=np.full(n, 7.0))
    decisions = decide_segments(conditions, DecisionSettings())
    assert list(decisions.action) == [TREAT] * 4, decisions.reason
    assert [segment_cause(r, s) for r, s in zip(decisions.reason, decisions.surface, strict=True)] == \
        ["wet_road", "hoar_frost", "ice", "snow"], decisions.reason


def bin_(device_id: str, risk: float | None, weekdays: tuple[int, ...] = (0,), depot: str | None = "east",
         truck: int | None = None) -> BinPriorityFact:
    return BinPriorityFact(device_id, "ok" if risk is not None else "unknown", 0.9, risk, 5.0, depot, weekdays,
                           truck, NOW + timedelta(hours=18) if truck else None)


def test_bins_give_one_alert_per_round_with_the_bins_inside() -> None:
    facts = [bin_("b1", 0.8, truck=2), bin_("b2", 0.6), bin_("b3", 0.4), bin_("b4", 0.1), bin_("b5", 0.9, (3, 1)),
             bin_("b6", 0.7, (), depot=None), bin_("b7", None)]
    signals = by_cause(Facts(NOW, bin_priorities=facts))
    assert members(signals) == {"bin_overflow:east:mon": ["b1", "b2"], "bin_overflow:east:tue-thu": ["b5"],
                                "bin_overflow:no-depot:no-round": ["b6"]}
    monday = signals["bin_overflow:east:mon"]
    assert monday.title == "Bins round Mon, depot east: 2 bins predicted to overflow"
    assert (monday.value, monday.severity, monday.device_id) == (0.8, "warning", None)
    assert monday.members[0].note == \
        "90% full, overflow risk 80%, at the threshold in 5 h; truck 2 of the Tue 06:00 UTC plan"
    assert monday.members[1].note.endswith("not on the current plan")
    assert "1 of them on the current plan" in monday.detail
    assert signals["bin_overflow:east:tue-thu"].title == "Bins round Tue+Thu, depot east: 1 bin predicted to overflow"
    assert signals["bin_overflow:no-depot:no-round"].title.startswith("Bins without a round, depot no-depot")


def test_a_bin_stays_in_its_round_while_it_holds_and_leaves_when_clear() -> None:
    # b1 falls into the hold zone (stays), b2 clears (leaves), b3 in the hold zone was never in (stays out),
    # b7's risk is unknown now (stays); b8 is in the Monday group but now on Tuesdays: it leaves
    previous = {"bin_overflow:east:mon": frozenset({"b1", "b2", "b7", "b8"})}
    later = [bin_("b1", 0.4), bin_("b2", 0.2), bin_("b3", 0.45), bin_("b7", None), bin_("b8", 0.4, (1,))]
    (signal,) = evaluate(Facts(NOW, bin_priorities=later), S, previous).signals
    assert (signal.cause, [m.id for m in signal.members]) == ("bin_overflow:east:mon", ["b1", "b7"])
    assert evaluate(Facts(NOW, bin_priorities=[bin_("b1", 0.3)]), S, previous).signals == []


def test_regroup_keeps_a_holding_member_only_in_its_own_group() -> None:
    def c(member: str, status: str, key: str | None = "a", scope: str = "r:x") -> Candidate:
        return Candidate(scope, key, status, Member(member))  # type: ignore[arg-type]

    previous = {"r:x:a": frozenset({"m1", "m2"}), "r:x:b": frozenset({"m3"}), "r:y:a": frozenset({"m4"})}
    groups = regroup([c("m1", "hold"), c("m2", "clear"), c("m3", "hold", key="a"), c("m4", "hold", None),
                      c("m5", "hold"), c("m6", "firing", "b")], previous)
    assert {k: [m.id for m in v] for k, v in groups.items()} == {"r:x:a": ["m1"], "r:x:b": ["m6"]}


def test_bin_events_only_inside_the_window() -> None:
    events = [BinEventFact("b1", "fire", NOW - timedelta(hours=1), 71.0, "possible fire: 71 °C"),
              BinEventFact("b2", "tilt", NOW - timedelta(hours=7), 80.0, "knocked over"),   # too old
              BinEventFact("b3", "tilt", NOW - timedelta(hours=2), 85.0, "knocked over: tilted 85°")]
    signals = by_cause(Facts(NOW, bin_events=events))
    assert signals["bin_fire:b1"].severity == "critical" and signals["bin_tilt:b3"].status == "firing"
    assert "bin_tilt:b2" not in signals  # not mentioned: the lifecycle counts it as clear
    assert evaluate(Facts(NOW, bin_events=events), S).evaluated == {"bin_fire", "bin_tilt"}


def test_device_offline_uses_the_kinds_interval_with_a_hold_zone() -> None:
    def seen(minutes: float, kind: str = "frog") -> DeviceFact:
        return DeviceFact(f"d{minutes:g}{kind}", kind, last_seen=NOW - timedelta(minutes=minutes))

    # frog: every 5 min -> offline past 30 min (6 intervals), clear within 10 min (2 intervals)
    signals = by_cause(Facts(NOW, devices=[seen(31), seen(20), seen(9), seen(31, "bin"), seen(25 * 60)]))
    assert signals["device_offline:d31frog"].status == "firing"
    assert signals["device_offline:d20frog"].status == "hold"
    assert signals["device_offline:d9frog"].status == "clear"
    assert signals["device_offline:d31bin"].status == "clear"        # bins report every 30 min
    assert signals["device_offline:d1500frog"].severity == "critical"  # a day silent
    never = by_cause(Facts(NOW, devices=[DeviceFact("quiet", "frog")]))
    assert "device_offline:quiet" not in never  # never heard from: not deployed yet, no alert


def test_battery_low_and_critical() -> None:
    devices = [DeviceFact("b1", "bin", battery_v=3.25), DeviceFact("b2", "bin", battery_v=3.4),
               DeviceFact("b3", "bin", battery_v=3.5), DeviceFact("b4", "bin", battery_v=3.9)]
    signals = by_cause(Facts(NOW, devices=devices))
    assert [(signals[f"battery_low:b{i}"].status, signals[f"battery_low:b{i}"].severity) for i in range(1, 5)] == [
        ("firing", "critical"), ("firing", "warning"), ("hold", "warning"), ("clear", "warning")]


def test_stuck_sensor_needs_k_identical_readings_over_the_time() -> None:
    k, after = 4, timedelta(hours=3)
    same = [(NOW - timedelta(hours=h), (20.5, 60.0)) for h in (4, 3, 2, 0)]
    assert stuck_status(same, k, after) == ("firing", timedelta(hours=4))
    assert stuck_status(same[:3], k, after) is None                      # too few
    short = [(NOW - timedelta(minutes=m), (20.5, 60.0)) for m in (30, 20, 10, 0)]
    assert stuck_status(short, k, after) == ("hold", timedelta(minutes=30))
    varied = [*same[:3], (NOW, (20.6, 60.0))]
    assert stuck_status(varied, k, after)[0] == "clear"  # type: ignore[index]
    empty = [(t, (None, None)) for t, _ in same]
    assert stuck_status(empty, k, after)[0] == "clear"  # type: ignore[index]


def test_dead_letter_spike_and_rules_without_facts_are_not_evaluated() -> None:
    evaluation = evaluate(Facts(NOW, dead_letters=150, notes=("no gritting tables",)), S)
    assert evaluation.evaluated == {"dead_letter_spike"}
    (signal,) = evaluation.signals
    assert (signal.cause, signal.status, signal.value) == ("dead_letter_spike:ingest", "firing", 150.0)
    assert evaluation.notes == ("no gritting tables",)
    assert by_cause(Facts(NOW, dead_letters=1500))["dead_letter_spike:ingest"].severity == "critical"
    assert by_cause(Facts(NOW, dead_letters=50))["dead_letter_spike:ingest"].status == "hold"
