"""A device's health from what the platform has seen of it (pure: no I/O).

`assess(inputs, policy)` gives one state (ok < warning < critical; `unknown` for a device
never heard from, `retired`) and the reasons behind it:
- silence: nothing received for `silent_warning` / `silent_critical`;
- offline: its Last Will says offline;
- battery: at or below `battery_empty_v` is dead; otherwise a least-squares line through
  recent samples gives the trend (volts/day) and days left until empty;
- stuck sensor: the latest readings identical for `stuck_after` or longer (real sensors
  have noise in the last digit);
- out-of-range rate: dead letters / (dead letters + readings) in the window;
- clock drift: the smallest (received_at - device ts) in the window. Transport only adds
  delay and a spool replay adds a lot, so the minimum is the best estimate of the clock's
  offset: negative means the device clock runs ahead;
- LoRaWAN (docs/lorawan.md): frames lost on the air, from the gaps in the frame counter
  over the last day (lost / (received + lost)); the battery as a percentage, from the
  network server's status events or the device's own battery channel. A device with a
  reporting interval set is called silent only after several intervals without a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

State = Literal["ok", "warning", "critical", "unknown", "retired"]
SEVERITY: dict[State, int] = {"retired": 0, "ok": 1, "unknown": 2, "warning": 3, "critical": 4}
Values = tuple[float | None, ...]


@dataclass(frozen=True)
class HealthPolicy:
    silent_warning: timedelta = timedelta(hours=1)
    silent_critical: timedelta = timedelta(hours=6)
    battery_empty_v: float = 3.3
    battery_warning_days: float = 14.0
    battery_critical_days: float = 3.0
    battery_min_samples: int = 6
    battery_min_span: timedelta = timedelta(hours=6)
    stuck_after: timedelta = timedelta(hours=3)
    stuck_min_readings: int = 3
    out_of_range_warning: float = 0.05
    out_of_range_critical: float = 0.5
    drift_warning_s: float = 120.0
    silent_intervals_warning: float = 3.0    # with a reporting interval: silent after this many intervals
    silent_intervals_critical: float = 12.0
    frames_lost_warning: float = 0.1         # LoRaWAN: a tenth of the frames lost on the air
    frames_lost_critical: float = 0.5
    frames_lost_min: int = 10                # ... judged over at least this many frames
    battery_pct_warning: float = 20.0
    battery_pct_critical: float = 5.0


DEFAULT_POLICY = HealthPolicy()


@dataclass(frozen=True)
class HealthInputs:
    device_id: str
    now: datetime
    retired: bool = False
    last_seen: datetime | None = None
    online: bool | None = None
    online_changed_at: datetime | None = None
    firmware_version: str | None = None
    battery: Sequence[tuple[datetime, float]] = ()  # (time, volts), any order
    readings: Sequence[tuple[datetime, Values]] = ()  # (device ts, the reading's values)
    lags_s: Sequence[float] = ()  # received_at - device ts, per reading (the device's own clock only)
    dead_letters: int = 0
    sample_interval_s: int | None = None  # the reporting interval asked of it, when set
    uplinks: int = 0  # LoRaWAN: frames received over the last day
    frames_lost: int = 0  # LoRaWAN: frames missing from the counter over the last day
    battery_pct: float | None = None  # LoRaWAN: from status events or the device's battery channel


@dataclass(frozen=True)
class Health:
    device_id: str
    state: State
    reasons: list[str] = field(default_factory=list)
    last_seen: datetime | None = None
    online: bool | None = None
    firmware_version: str | None = None
    battery_v: float | None = None
    battery_trend_v_per_day: float | None = None
    battery_days_left: float | None = None
    stuck_for: timedelta | None = None
    out_of_range_rate: float | None = None
    clock_drift_s: float | None = None
    frames_lost_rate: float | None = None
    battery_pct: float | None = None


@dataclass(frozen=True)
class BatteryOutlook:
    volts: float
    trend_v_per_day: float | None
    days_left: float | None


def battery_outlook(samples: Sequence[tuple[datetime, float]], policy: HealthPolicy) -> BatteryOutlook | None:
    """The latest voltage, and the trend and days left when there are enough samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    latest = ordered[-1][1]
    if len(ordered) < policy.battery_min_samples or ordered[-1][0] - ordered[0][0] < policy.battery_min_span:
        return BatteryOutlook(latest, None, None)
    days = np.array([(ts - ordered[0][0]).total_seconds() / 86_400 for ts, _ in ordered])
    volts = np.array([v for _, v in ordered])
    slope, intercept = np.polyfit(days, volts, 1)
    fitted_now = slope * days[-1] + intercept
    days_left = None
    if slope < 0:
        days_left = max(0.0, float((fitted_now - policy.battery_empty_v) / -slope))
    return BatteryOutlook(latest, float(slope), days_left)


def stuck_for(readings: Sequence[tuple[datetime, Values]], min_readings: int) -> timedelta | None:
    """How long the latest value has repeated exactly, if at least `min_readings` times."""
    ordered = sorted(readings, key=lambda r: r[0])
    if len(ordered) < min_readings:
        return None
    last_ts, last_values = ordered[-1]
    if all(v is None for v in last_values):
        return None
    run_start, count = last_ts, 0
    for ts, values in reversed(ordered):
        if values != last_values:
            break
        run_start, count = ts, count + 1
    return last_ts - run_start if count >= min_readings else None


def _ago(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def assess(inputs: HealthInputs, policy: HealthPolicy = DEFAULT_POLICY) -> Health:
    def health(state: State, reasons: list[str], **measured: object) -> Health:
        return Health(inputs.device_id, state, reasons, inputs.last_seen, inputs.online, inputs.firmware_version,
                      **measured)  # type: ignore[arg-type]

    if inputs.retired:
        return health("retired", ["retired"])
    if inputs.last_seen is None:
        return health("unknown", ["never heard from"])
    findings: list[tuple[State, str]] = []

    silent = inputs.now - inputs.last_seen
    silent_warning, silent_critical = policy.silent_warning, policy.silent_critical
    if inputs.sample_interval_s:
        interval = timedelta(seconds=inputs.sample_interval_s)
        silent_warning = max(silent_warning, interval * policy.silent_intervals_warning)
        silent_critical = max(silent_critical, interval * policy.silent_intervals_critical)
    if silent >= silent_critical:
        findings.append(("critical", f"silent for {_ago(silent)}"))
    elif silent >= silent_warning:
        findings.append(("warning", f"silent for {_ago(silent)}"))
    if inputs.online is False:
        since = f" since {inputs.online_changed_at:%Y-%m-%d %H:%M}" if inputs.online_changed_at else ""
        findings.append(("warning", f"offline (Last Will){since}"))

    battery = battery_outlook(inputs.battery, policy)
    if battery is not None:
        if battery.volts <= policy.battery_empty_v:
            findings.append(("critical", f"battery dead ({battery.volts:.2f} V)"))
        elif battery.days_left is not None and battery.days_left <= policy.battery_critical_days:
            findings.append(("critical", f"battery empty in {battery.days_left:.1f} days"))
        elif battery.days_left is not None and battery.days_left <= policy.battery_warning_days:
            findings.append(("warning", f"battery empty in {battery.days_left:.1f} days"))

    stuck = stuck_for(inputs.readings, policy.stuck_min_readings)
    if stuck is not None and stuck >= policy.stuck_after:
        findings.append(("critical", f"sensor stuck: identical values for {_ago(stuck)}"))

    total = inputs.dead_letters + len(inputs.readings)
    rate = inputs.dead_letters / total if total else None
    if rate is not None and rate >= policy.out_of_range_critical:
        findings.append(("critical", f"{rate:.0%} of readings rejected"))
    elif rate is not None and rate >= policy.out_of_range_warning:
        findings.append(("warning", f"{rate:.0%} of readings rejected"))

    drift = -min(inputs.lags_s) if inputs.lags_s else None  # > 0: device clock ahead
    if drift is not None and abs(drift) >= policy.drift_warning_s:
        findings.append(("warning", f"clock {'ahead' if drift > 0 else 'behind'} by {abs(drift):.0f} s"))

    frames = inputs.uplinks + inputs.frames_lost
    lost = inputs.frames_lost / frames if frames >= policy.frames_lost_min else None
    if lost is not None and lost >= policy.frames_lost_critical:
        findings.append(("critical", f"{lost:.0%} of LoRaWAN frames lost on the air in the last day "
                                     f"({inputs.frames_lost} of {frames})"))
    elif lost is not None and lost >= policy.frames_lost_warning:
        findings.append(("warning", f"{lost:.0%} of LoRaWAN frames lost on the air in the last day "
                                    f"({inputs.frames_lost} of {frames})"))
    if inputs.battery_pct is not None and inputs.battery_pct <= policy.battery_pct_critical:
        findings.append(("critical", f"battery at {inputs.battery_pct:.0f} %"))
    elif inputs.battery_pct is not None and inputs.battery_pct <= policy.battery_pct_warning:
        findings.append(("warning", f"battery at {inputs.battery_pct:.0f} %"))

    state: State = max((s for s, _ in findings), key=SEVERITY.__getitem__, default="ok")
    return health(state, [r for _, r in findings], battery_v=battery.volts if battery else None,
                  battery_trend_v_per_day=battery.trend_v_per_day if battery else None,
                  battery_days_left=battery.days_left if battery else None,
                  stuck_for=stuck, out_of_range_rate=rate, clock_drift_s=drift, frames_lost_rate=lost,
                  battery_pct=inputs.battery_pct)
