"""Alert rules on Awaab's Law clocks (pure): one alert per open case and cause.

    case_overdue:<household>:<case>    the case's clocks past their due time and not met
                                       (critical; escalates while nobody acknowledges it)
    case_due_soon:<household>:<case>   its clocks due within the due-soon margin (warning)

The clocks are rules/cases/clocks.py's, as the case's page shows them (docs/cases.md): a
suggestion runs none, so it raises nothing; a closed case is not loaded, so its alerts clear.
A cause clears when none of its clocks is in that state any more: the clock was met (the
investigation recorded), or it moved on from due soon to overdue (the overdue alert opens).
The household is in the cause (so the demo's reset finds its own cases' alerts) but not in
the alert's `household_id`: these are the landlord's deadlines, for its officers and the
council's operators (the tenant sees the clocks on their case). The alert names the home's
landlord (`landlord_id`), whose officers' subscriptions (`--role landlord --landlord ID`)
hear of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.model import Member, Signal
from rules.cases.clocks import Category, Clock, WorkingDays, case_clocks, due_in_words

CASE_TABLES = ("damp_cases", "case_events", "homes", "landlords")
DUE_SOON = timedelta(days=2)    # case_clocks' default, as the case pages use (settings.cases.due_soon_days)


@dataclass(frozen=True)
class CaseFact:
    """An open case, with the milestones its timeline has reached (the earliest time of each)."""

    case_id: int
    household_id: str
    category: Category              # emergency|significant
    aware_at: datetime
    landlord_id: str | None = None
    landlord_name: str | None = None
    home_label: str = ""
    milestones: Mapping[str, datetime] = field(default_factory=dict)

    @property
    def home(self) -> str:
        return f"{self.home_label} ({self.household_id})" if self.home_label else self.household_id


def _overdue_by(clock: Clock, now: datetime) -> str:
    assert clock.due is not None
    hours = int((now - clock.due).total_seconds() // 3600)     # whole hours past due
    days, left = divmod(hours, 24)
    return f"{hours} h" if hours < 48 else f"{days} days" + (f" {left} h" if left else "")


def _member(clock: Clock, note: str, now: datetime) -> Member:
    assert clock.due is not None
    return Member(clock.key, clock.label, round((now - clock.due).total_seconds() / 3600, 1), clock.due, note)


def case_signals(cases: Sequence[CaseFact], now: datetime, *, due_soon: timedelta = DUE_SOON,
                 calendar: WorkingDays | None = None) -> Iterator[Signal]:
    """Per open case, its overdue and its due-soon cause: firing with the clocks in that state as
    members (value: hours past due, negative while due), clear when it has none."""
    for case in cases:
        clocks = case_clocks(case.category, {**case.milestones, "aware": case.aware_at}, now,
                             due_soon=due_soon, calendar=calendar)
        whose = f" ({case.landlord_name})" if case.landlord_name else ""
        for rule, state in (("case_overdue", "overdue"), ("case_due_soon", "due_soon")):
            late = rule == "case_overdue"
            due = [c for c in clocks if c.state == state]
            cause = f"{rule}:{case.household_id}:{case.case_id}"
            if not due:
                yield Signal(rule, cause, "clear", "critical" if late else "warning",
                             detail=f"case {case.case_id}: no clock is {'overdue' if late else 'due soon'} now",
                             landlord_id=case.landlord_id)
                continue
            lines = []
            members = []
            for c in due:
                assert c.due is not None
                words = due_in_words(c.due, calendar)
                note = f"was due {words}, overdue by {_overdue_by(c, now)}" if late else f"due {words}"
                lines.append(f"- {c.label}: {note}")
                members.append(_member(c, note, now))
            what = due[0].label if len(due) == 1 else f"{len(due)} Awaab's Law deadlines"
            verb = ("is" if len(due) == 1 else "are") + (" overdue" if late else " due soon")
            title = f"Damp case {case.case_id} at {case.home}{whose}: {what} {verb}"
            head = (f"A {case.category} damp and mould hazard; the landlord became aware "
                    f"{case.aware_at:%Y-%m-%d %H:%M} UTC.")
            yield Signal(rule, cause, "firing", "critical" if late else "warning", title,
                         "\n".join([head, *lines]), members[0].value, members=tuple(members),
                         landlord_id=case.landlord_id)
