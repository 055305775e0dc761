"""The alert rules (pure): raise and clear thresholds, holds, and what is not evaluated."""

from datetime import UTC, datetime, timedelta

from alerts.model import Signal
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


def test_road_segment_freeze_and_route_treatment() -> None:
    segments = [SegmentFact("s1", "Bridge St", "r1", "treat", -1.5, NOW + timedelta(hours=5), "wet", 7),
                SegmentFact("s2", "High St", "r1", "monitor", 0.6, None, None, 7),
                SegmentFact("s3", "Hill Rd", "r2", "none", 4.0, None, None, 7),
                SegmentFact("s4", "No data", "r2", "none", None, None, None, 7)]
    routes = [RouteFact("r1", "North", True, "2 segments", 2, 812.0, NOW - timedelta(minutes=5), 7),
              RouteFact("r2", "South", False, "dry", 0, 0.0, None, 7)]
    signals = by_cause(Facts(NOW, segments=segments, routes=routes))
    assert [signals[f"road_freeze:{s}"].status for s in ("s1", "s2", "s3", "s4")] == \
        ["firing", "hold", "clear", "hold"]
    assert signals["road_freeze:s1"].route_id == "r1" and "-1.5 °C" in signals["road_freeze:s1"].detail
    assert signals["route_treatment:r1"].status == "firing"
    assert signals["route_treatment:r1"].severity == "critical"  # its latest start has passed
    assert signals["route_treatment:r2"].status == "clear"


def test_bins_overflow_band_and_events_only_inside_the_window() -> None:
    priorities = [BinPriorityFact("b1", "ok", 0.9, 0.8, 3.0), BinPriorityFact("b2", "ok", 0.5, 0.4, 20.0),
                  BinPriorityFact("b3", "ok", 0.1, 0.05, 90.0), BinPriorityFact("b4", "unknown", None, None, None)]
    events = [BinEventFact("b1", "fire", NOW - timedelta(hours=1), 71.0, "possible fire: 71 °C"),
              BinEventFact("b2", "tilt", NOW - timedelta(hours=7), 80.0, "knocked over"),   # too old
              BinEventFact("b3", "tilt", NOW - timedelta(hours=2), 85.0, "knocked over: tilted 85°")]
    signals = by_cause(Facts(NOW, bin_priorities=priorities, bin_events=events))
    assert [signals[f"bin_overflow:b{i}"].status for i in range(1, 5)] == ["firing", "hold", "clear", "hold"]
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
