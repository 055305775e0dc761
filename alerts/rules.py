"""The alert rules: pure functions from facts (loaded by alerts/facts.py) to signals.

Each rule gives one `Signal` per cause it has an opinion on. A cause a rule was evaluated
for but says nothing about (a retired device, a bin event that aged out, a group left
empty) counts as clear; a rule whose facts could not be loaded (`None`, e.g. no gritting
tables yet) is not evaluated at all, so its open alerts stay as they are.

    damp_risk          latest damp assessment per frog box: high/severe opens, low/none clears
    route_treatment    per gritting route and cause: the segments the latest run says to treat,
                       with the route's decision; or the route's decision is unknown (no data)
    road_freeze        per cause: segments on no gritting route that need treatment
    bin_overflow       per bins round: the bins predicted to overflow before the next pass
    bin_fire, bin_tilt a fire or tilt event in the last `bin_event_window`
    device_offline     last_seen older than N sampling intervals of the device's kind
    battery_low        devices.battery_v below the raise voltage; clear above the clear voltage
    sensor_stuck       the last K readings identical, spanning at least `stuck_after`
    dead_letter_spike  ingest dead letters in the last window against a threshold
    ingest_stalled     per ingest consumer: reconnecting or stalled for more than a minute, or its
                       heartbeat that old while devices are active (alerts/ingest_stall.py)
    ingest_down        no ingest consumer running at all (every heartbeat stopped or stale) for more
                       than a minute while devices are active (alerts/ingest_stall.py)
    case_overdue       per open damp case: its Awaab's Law clocks past due and not met (alerts/case_clocks.py)
    case_due_soon      per open damp case: its clocks due within two days (alerts/case_clocks.py)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.case_clocks import CaseFact, case_signals
from alerts.groups import BinPriorityFact, RouteFact, SegmentFact, bin_round_signals, road_signals
from alerts.ingest_stall import IngestBeat, ingest_down_signal, ingest_signals
from alerts.model import RULES, Severity, Signal, Status, band
from cityops.settings import AlertsSettings

__all__ = ["BinEventFact", "BinPriorityFact", "CaseFact", "DampFact", "DeviceFact", "Evaluation", "Facts", "IngestBeat",
           "RouteFact", "SegmentFact", "band", "evaluate", "stuck_status"]

DAMP_LEVELS = ("none", "low", "medium", "high", "severe")
Values = tuple[float | None, ...]


@dataclass(frozen=True)
class DampFact:
    device_id: str
    household_id: str | None
    area: str | None
    level: str                      # none|low|medium|high|severe|unknown
    data_until: datetime


@dataclass(frozen=True)
class BinEventFact:
    device_id: str
    kind: str                       # fire|tilt
    ts: datetime
    value: float
    message: str


@dataclass(frozen=True)
class DeviceFact:
    device_id: str
    kind: str
    household_id: str | None = None
    area: str | None = None
    last_seen: datetime | None = None
    battery_v: float | None = None
    recent: Sequence[tuple[datetime, Values]] = ()   # the latest readings, any order


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at; `None` means "could not be loaded": not evaluated."""

    now: datetime
    damp: Sequence[DampFact] | None = None
    segments: Sequence[SegmentFact] | None = None
    routes: Sequence[RouteFact] | None = None
    bin_priorities: Sequence[BinPriorityFact] | None = None
    bin_events: Sequence[BinEventFact] | None = None
    devices: Sequence[DeviceFact] | None = None
    dead_letters: int | None = None
    notes: tuple[str, ...] = ()      # why some facts are missing
    ingest: Sequence[IngestBeat] | None = None   # the consumers' heartbeats (migration 0025)
    active_devices: int = 0
    cases: Sequence[CaseFact] | None = None      # the open damp cases and their milestones (migration 0029)


@dataclass(frozen=True)
class Evaluation:
    signals: list[Signal]
    evaluated: frozenset[str]        # the rules that ran: causes they did not mention are clear
    notes: tuple[str, ...] = field(default_factory=tuple)


def _ago(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def damp_signals(facts: Sequence[DampFact], s: AlertsSettings) -> Iterator[Signal]:
    raise_rank, clear_rank = DAMP_LEVELS.index(s.damp_raise_level), DAMP_LEVELS.index(s.damp_clear_level)
    for f in facts:
        if f.level not in DAMP_LEVELS:  # unknown: no data to judge by, keep the alert as it is
            status: Status = "hold"
        else:
            rank = DAMP_LEVELS.index(f.level)
            status = "firing" if rank >= raise_rank else "clear" if rank <= clear_rank else "hold"
        severity: Severity = "critical" if f.level == "severe" else "warning"
        where = f"home {f.household_id}" if f.household_id else f"frog box {f.device_id}"
        yield Signal("damp_risk", f"damp_risk:{f.device_id}", status, severity,
                     f"Damp and mould risk {f.level} in {where}",
                     f"assessed to {f.data_until:%Y-%m-%d %H:%M} UTC; see the home's page for advice",
                     None, f.device_id, f.household_id, f.area)


def bin_event_signals(events: Sequence[BinEventFact], now: datetime, s: AlertsSettings) -> Iterator[Signal]:
    """Only events inside the window give a signal; an older one is no longer mentioned: clear."""
    latest: dict[tuple[str, str], BinEventFact] = {}
    for e in events:
        if now - s.bin_event_window < e.ts <= now and e.kind in ("fire", "tilt"):
            key = (e.device_id, e.kind)
            if key not in latest or e.ts > latest[key].ts:
                latest[key] = e
    for (device_id, kind), e in sorted(latest.items()):
        rule = f"bin_{kind}"
        title = f"Possible fire in bin {device_id}" if kind == "fire" else f"Bin {device_id} knocked over"
        yield Signal(rule, f"{rule}:{device_id}", "firing", "critical" if kind == "fire" else "warning", title,
                     f"{e.message} at {e.ts:%Y-%m-%d %H:%M} UTC", e.value, device_id)


def device_signals(devices: Sequence[DeviceFact], now: datetime, s: AlertsSettings) -> Iterator[Signal]:
    for d in devices:
        who = (d.device_id, d.household_id, d.area)
        interval = timedelta(seconds=s.sample_interval_s.get(d.kind, 600))
        if d.last_seen is not None:
            silent = now - d.last_seen
            status: Status = ("firing" if silent > interval * s.offline_after_intervals
                              else "clear" if silent <= interval * s.online_within_intervals else "hold")
            severity: Severity = "critical" if silent >= s.offline_critical_after else "warning"
            yield Signal("device_offline", f"device_offline:{d.device_id}", status, severity,
                         f"Device {d.device_id} offline", f"nothing received for {_ago(silent)} "
                         f"(a {d.kind} sensor reports every {interval.total_seconds() / 60:g} min)",
                         silent.total_seconds() / 3600, *who)
        if d.battery_v is not None:
            severity = "critical" if d.battery_v <= s.battery_critical_v else "warning"
            yield Signal("battery_low", f"battery_low:{d.device_id}",
                         band(d.battery_v, s.battery_low_v, s.battery_clear_v, rising=False), severity,
                         f"Battery low on {d.device_id}", f"{d.battery_v:.2f} V; replace or recharge it",
                         d.battery_v, *who)
        stuck = stuck_status(d.recent, s.stuck_readings, s.stuck_after)
        if stuck is not None:
            status, span = stuck
            yield Signal("sensor_stuck", f"sensor_stuck:{d.device_id}", status, "warning",
                         f"Sensor stuck on {d.device_id}",
                         f"the last {s.stuck_readings} readings are identical over {_ago(span)}",
                         span.total_seconds() / 3600, *who)


def stuck_status(readings: Sequence[tuple[datetime, Values]], k: int, after: timedelta
                 ) -> tuple[Status, timedelta] | None:
    """firing when the latest k readings are identical (and not empty) over at least `after`;
    clear when they differ; hold when they are identical but span less; None with too few."""
    latest = sorted(readings, key=lambda r: r[0])[-k:]
    if len(latest) < k:
        return None
    span = latest[-1][0] - latest[0][0]
    values = {v for _, v in latest}
    if len(values) > 1 or all(x is None for x in latest[-1][1]):
        return "clear", span
    return ("firing" if span >= after else "hold"), span


def dead_letter_signal(count: int, s: AlertsSettings) -> Signal:
    severity: Severity = "critical" if count >= 10 * s.dead_letter_raise else "warning"
    minutes = s.dead_letter_window.total_seconds() / 60
    return Signal("dead_letter_spike", "dead_letter_spike:ingest",
                  band(count, s.dead_letter_raise, s.dead_letter_clear), severity,
                  "Spike in rejected readings (dead letters)",
                  f"{count} dead letters in the last {minutes:g} min (alert at {s.dead_letter_raise}); "
                  "see `dead_letters` for the reasons", float(count))


def evaluate(facts: Facts, settings: AlertsSettings, previous: Mapping[str, frozenset[str]] | None = None
             ) -> Evaluation:
    """Every rule whose facts are there, over those facts at `facts.now`. `previous`: the open
    alerts' member ids by cause, for the grouped rules' membership hysteresis."""
    signals: list[Signal] = []
    evaluated: set[str] = set()
    previous = previous or {}
    if facts.damp is not None:
        signals += damp_signals(facts.damp, settings)
        evaluated.add("damp_risk")
    if facts.segments is not None:  # the segments and routes of one gritting run
        signals += road_signals(facts.segments, facts.routes or (), facts.now, previous)
        evaluated |= {"road_freeze", "route_treatment"}
    if facts.bin_priorities is not None:
        signals += bin_round_signals(facts.bin_priorities, settings, previous)
        evaluated.add("bin_overflow")
    if facts.bin_events is not None:
        signals += bin_event_signals(facts.bin_events, facts.now, settings)
        evaluated |= {"bin_fire", "bin_tilt"}
    if facts.devices is not None:
        signals += device_signals(facts.devices, facts.now, settings)
        evaluated |= {"device_offline", "battery_low", "sensor_stuck"}
    if facts.dead_letters is not None:
        signals.append(dead_letter_signal(facts.dead_letters, settings))
        evaluated.add("dead_letter_spike")
    if facts.ingest is not None:
        signals += ingest_signals(facts.ingest, facts.now, facts.active_devices)
        signals.append(ingest_down_signal(facts.ingest, facts.now, facts.active_devices))
        evaluated |= {"ingest_stalled", "ingest_down"}
    if facts.cases is not None:
        signals += case_signals(facts.cases, facts.now)
        evaluated |= {"case_overdue", "case_due_soon"}
    assert evaluated <= set(RULES)
    return Evaluation(signals, frozenset(evaluated), facts.notes)
