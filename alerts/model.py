"""The alerts' value objects: severities, what a rule says about one cause, and an alert's state.

A rule looks at facts and says, per cause (one thing that can be wrong: a device's battery,
a road segment, the ingest dead letters), whether its condition is `firing` (past the raise
threshold), `clear` (past the clear threshold) or `hold` (between the two: keep whatever the
alert is now). The gap between the thresholds and a minimum clear time are the hysteresis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

State = Literal["open", "acknowledged", "resolved"]
Status = Literal["firing", "clear", "hold"]
TransitionKind = Literal["opened", "worsened", "acknowledged", "escalated", "resolved"]

# Every rule by name, in the order `cityops alerts list` groups them.
RULES = ("damp_risk", "road_freeze", "route_treatment", "bin_overflow", "bin_fire", "bin_tilt",
         "device_offline", "battery_low", "sensor_stuck", "dead_letter_spike")


@dataclass(frozen=True)
class Signal:
    """What one rule says about one cause at one moment."""

    rule: str
    cause: str
    status: Status
    severity: Severity = "warning"
    title: str = ""
    detail: str = ""
    value: float | None = None
    device_id: str | None = None
    household_id: str | None = None
    area: str | None = None
    route_id: str | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}")
        if not self.cause.startswith(self.rule + ":"):
            raise ValueError(f"cause {self.cause!r} must start with its rule {self.rule!r}")


@dataclass(frozen=True)
class Alert:
    """An alert as stored; `alert_id` is None until it is written."""

    alert_id: int | None
    rule: str
    cause: str
    severity: Severity
    state: State
    title: str
    detail: str
    opened_at: datetime
    last_firing_at: datetime
    device_id: str | None = None
    household_id: str | None = None
    area: str | None = None
    route_id: str | None = None
    value: float | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    escalation_level: int = 0
    escalated_at: datetime | None = None
    clear_since: datetime | None = None


@dataclass(frozen=True)
class Transition:
    kind: TransitionKind
    at: datetime
    detail: str = ""
    actor: str | None = None
