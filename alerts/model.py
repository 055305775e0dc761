"""The alerts' value objects: severities, what a rule says about one cause, and an alert's state.

A rule looks at facts and says, per cause (one thing that can be wrong: a device's battery,
a gritting route's roads freezing for one reason, a bins round, the ingest dead letters),
whether its condition is `firing` (past the raise threshold), `clear` (past the clear
threshold) or `hold` (between the two: keep whatever the alert is now). The gap between the
thresholds and a minimum clear time are the hysteresis. A cause that stands for a group (a
route and cause, a bins round) lists what is in it as `members`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

State = Literal["open", "acknowledged", "resolved"]
Status = Literal["firing", "clear", "hold"]
# `updated`: a group's membership changed (history only, nobody is notified)
TransitionKind = Literal["opened", "worsened", "updated", "acknowledged", "escalated", "resolved"]

# Every rule by name, in the order `cityops alerts list` groups them.
RULES = ("damp_risk", "road_freeze", "route_treatment", "bin_overflow", "bin_fire", "bin_tilt",
         "device_offline", "battery_low", "sensor_stuck", "dead_letter_spike", "ingest_stalled", "ingest_down",
         "case_overdue", "case_due_soon")


def band(value: float, raise_at: float, clear_at: float, *, rising: bool = True) -> Status:
    """firing past the raise threshold, clear past the clear threshold, hold between them.

    `rising`: the condition fires when the value goes UP (dead letters); otherwise when it
    goes DOWN (battery volts, road temperature)."""
    if rising:
        return "firing" if value >= raise_at else "clear" if value <= clear_at else "hold"
    return "firing" if value <= raise_at else "clear" if value >= clear_at else "hold"


@dataclass(frozen=True)
class Member:
    """One thing in a grouped alert: a road segment of a route, a bin of a round."""

    id: str
    name: str = ""                   # what people call it (a street), "" when it has no name
    value: float | None = None       # the rule's number for it: lowest RST degC, overflow risk 0..1
    at: datetime | None = None       # when that is (the lowest RST), if a time
    note: str = ""                   # one line in words, for people

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a member needs an id")

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "value": self.value,
                "at": self.at.isoformat() if self.at else None, "note": self.note}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Member:
        at = data.get("at")
        return cls(data["id"], data.get("name") or "", data.get("value"),
                   datetime.fromisoformat(at) if at else None, data.get("note") or "")


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
    members: tuple[Member, ...] = ()
    landlord_id: str | None = None   # the landlord organisation whose home it is about (case clocks)

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
    members: tuple[Member, ...] = ()
    landlord_id: str | None = None

    @property
    def member_ids(self) -> frozenset[str]:
        return frozenset(m.id for m in self.members)


@dataclass(frozen=True)
class Transition:
    kind: TransitionKind
    at: datetime
    detail: str = ""
    actor: str | None = None
