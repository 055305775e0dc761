"""The alert rules: pure functions from facts (loaded by alerts/facts.py) to signals.

Each rule gives one `Signal` per cause it has an opinion on. A cause a rule was evaluated
for but says nothing about (a retired device, a bin event that aged out) counts as clear;
a rule whose facts could not be loaded (`None`, e.g. no gritting tables yet) is not
evaluated at all, so its open alerts stay as they are.

    damp_risk          latest damp assessment per frog box: high/severe opens, low/none clears
    road_freeze        a segment's predicted minimum road surface temperature (latest gritting run)
    route_treatment    a route the latest gritting run says to send a gritter on
    bin_overflow       a bin's overflow risk before the next pass (bin_priorities)
    bin_fire, bin_tilt a fire or tilt event in the last `bin_event_window`
    device_offline     last_seen older than N sampling intervals of the device's kind
    battery_low        devices.battery_v below the raise voltage; clear above the clear voltage
    sensor_stuck       the last K readings identical, spanning at least `stuck_after`
    dead_letter_spike  ingest dead letters in the last window against a threshold
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.model import RULES, Severity, Signal, Status
from cityops.settings import AlertsSettings

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
class SegmentFact:
    segment_id: str
    name: str | None
    route_id: str | None
    action: str                     # treat|monitor|none
    rst_min_c: float | None
    rst_min_at: datetime | None
    reason: str | None
    run_id: int


@dataclass(frozen=True)
class RouteFact:
    route_id: str
    name: str | None
    send: bool
    reason: str | None
    treat_segments: int | None
    salt_kg: float | None
    latest_start: datetime | None
    run_id: int


@dataclass(frozen=True)
class BinPriorityFact:
    device_id: str
    status: str                     # ok|learning|unknown
    fill: float | None
    overflow_risk: float | None
    hours_to_threshold: float | None


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


@dataclass(frozen=True)
class Evaluation:
    signals: list[Signal]
    evaluated: frozenset[str]        # the rules that ran: causes they did not mention are clear
    notes: tuple[str, ...] = field(default_factory=tuple)


def band(value: float, raise_at: float, clear_at: float, *, rising: bool = True) -> Status:
    """firing past the raise threshold, clear past the clear threshold, hold between them.

    `rising`: the condition fires when the value goes UP (dead letters); otherwise when it
    goes DOWN (battery volts, road temperature)."""
    if rising:
        return "firing" if value >= raise_at else "clear" if value <= clear_at else "hold"
    return "firing" if value <= raise_at else "clear" if value >= clear_at else "hold"


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


def road_signals(segments: Sequence[SegmentFact], s: AlertsSettings) -> Iterator[Signal]:
    for f in segments:
        status: Status = "hold" if f.rst_min_c is None else band(f.rst_min_c, s.road_freeze_c, s.road_clear_c,
                                                                  rising=False)
        when = f" at {f.rst_min_at:%H:%M} UTC" if f.rst_min_at else ""
        rst = "unknown" if f.rst_min_c is None else f"{f.rst_min_c:.1f} °C"
        yield Signal("road_freeze", f"road_freeze:{f.segment_id}", status, "warning",
                     f"Road {f.name or f.segment_id} predicted to freeze",
                     f"minimum surface temperature {rst}{when}; action {f.action}"
                     + (f": {f.reason}" if f.reason else "") + f" (gritting run {f.run_id})",
                     f.rst_min_c, route_id=f.route_id)


def route_signals(routes: Sequence[RouteFact], now: datetime) -> Iterator[Signal]:
    for f in routes:
        late = f.latest_start is not None and f.latest_start <= now
        severity: Severity = "critical" if f.send and late else "warning"
        start = f"; leave by {f.latest_start:%H:%M} UTC" if f.latest_start else ""
        yield Signal("route_treatment", f"route_treatment:{f.route_id}", "firing" if f.send else "clear", severity,
                     f"Gritting route {f.name or f.route_id} needs treatment",
                     f"{f.treat_segments or 0} segments, {f.salt_kg or 0:.0f} kg salt{start}"
                     + (f"; {f.reason}" if f.reason else "") + f" (gritting run {f.run_id})",
                     f.salt_kg, route_id=f.route_id)


def bin_overflow_signals(facts: Sequence[BinPriorityFact], s: AlertsSettings) -> Iterator[Signal]:
    for f in facts:
        status: Status = "hold" if f.overflow_risk is None else band(f.overflow_risk, s.bin_overflow_raise,
                                                                      s.bin_overflow_clear)
        fill = "" if f.fill is None else f"{f.fill:.0%} full, "
        risk = "unknown" if f.overflow_risk is None else f"{f.overflow_risk:.0%}"
        yield Signal("bin_overflow", f"bin_overflow:{f.device_id}", status, "warning",
                     f"Bin {f.device_id} predicted to overflow",
                     f"{fill}overflow risk {risk} before the next collection", f.overflow_risk, f.device_id)


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
        who = {"device_id": d.device_id, "household_id": d.household_id, "area": d.area}
        interval = timedelta(seconds=s.sample_interval_s.get(d.kind, 600))
        if d.last_seen is not None:
            silent = now - d.last_seen
            status: Status = ("firing" if silent > interval * s.offline_after_intervals
                              else "clear" if silent <= interval * s.online_within_intervals else "hold")
            severity: Severity = "critical" if silent >= s.offline_critical_after else "warning"
            yield Signal("device_offline", f"device_offline:{d.device_id}", status, severity,
                         f"Device {d.device_id} offline", f"nothing received for {_ago(silent)} "
                         f"(a {d.kind} sensor reports every {interval.total_seconds() / 60:g} min)",
                         silent.total_seconds() / 3600, **who)
        if d.battery_v is not None:
            severity = "critical" if d.battery_v <= s.battery_critical_v else "warning"
            yield Signal("battery_low", f"battery_low:{d.device_id}",
                         band(d.battery_v, s.battery_low_v, s.battery_clear_v, rising=False), severity,
                         f"Battery low on {d.device_id}", f"{d.battery_v:.2f} V; replace or recharge it",
                         d.battery_v, **who)
        stuck = stuck_status(d.recent, s.stuck_readings, s.stuck_after)
        if stuck is not None:
            status, span = stuck
            yield Signal("sensor_stuck", f"sensor_stuck:{d.device_id}", status, "warning",
                         f"Sensor stuck on {d.device_id}",
                         f"the last {s.stuck_readings} readings are identical over {_ago(span)}",
                         span.total_seconds() / 3600, **who)


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


def evaluate(facts: Facts, settings: AlertsSettings) -> Evaluation:
    """Every rule whose facts are there, over those facts at `facts.now`."""
    signals: list[Signal] = []
    evaluated: set[str] = set()
    if facts.damp is not None:
        signals += damp_signals(facts.damp, settings)
        evaluated.add("damp_risk")
    if facts.segments is not None:
        signals += road_signals(facts.segments, settings)
        evaluated.add("road_freeze")
    if facts.routes is not None:
        signals += route_signals(facts.routes, facts.now)
        evaluated.add("route_treatment")
    if facts.bin_priorities is not None:
        signals += bin_overflow_signals(facts.bin_priorities, settings)
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
    assert evaluated <= set(RULES)
    return Evaluation(signals, frozenset(evaluated), facts.notes)
