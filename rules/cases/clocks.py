"""Awaab's Law clocks: when each duty of a social landlord falls due, and whether it was met.

The Hazards in Social Housing (Prescribed Requirements) (England) Regulations 2025 (SI 2025/1042,
in force 27 October 2025) and MHCLG's guidance "Awaab's Law: Guidance for social landlords -
Timeframes for repairs in the social rented sector" (17 October 2025) set these clocks once a
landlord is aware of a potential hazard:

    emergency     investigate within 24 hours of becoming aware; make safe within 24 hours of the
                  investigation identifying the safety work (calendar hours: weekends do not stop it)
    significant   investigate within 10 working days of becoming aware; then, from the day the
                  investigation concludes: a written summary to the tenant within 3 working days,
                  relevant safety work completed within 5 working days, supplementary preventative
                  work begun (or steps taken to begin it) within 5 working days and physically
                  started within 12 weeks

Suitable alternative accommodation is a duty, not a clock: `alternative_accommodation_needed` says
when it arises. Working days are England's (weekends and bank holidays from the `holidays`
library, GB subdivision ENG), counted in Europe/London days. Where the regulations leave a
question open the answer is a parameter with a stated default (docs/cases.md):

    the awareness day itself does not count             case_clocks(first_day_counts=False)
    a working day ends at 23:59:59.999999 London time   WorkingDays(day_ends=time.max)
    the emergency make-safe 24 hours run from the       case_clocks(emergency_safety_from="investigated")
    investigation, not from awareness
    whether a sensor alert is awareness                 the caller's choice of milestones["aware"]

Pure: no I/O, no clock reading (the caller passes `now`).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

import holidays

from rules.errors import RulesError

LONDON = ZoneInfo("Europe/London")
END_OF_DAY = time.max               # 23:59:59.999999
REGULATIONS = "SI 2025/1042"
GUIDANCE = "MHCLG, Awaab's Law: Guidance for social landlords (17 October 2025)"

Category = Literal["emergency", "significant"]
State = Literal["waiting", "on_time", "due_soon", "overdue", "met", "met_late"]
CATEGORIES: tuple[str, ...] = get_args(Category)
MILESTONES = ("aware", "investigated", "summary_sent", "made_safe", "safety_works_done",
              "further_works_begun", "further_works_started")


class InvalidClockInput(RulesError):
    """A category, milestone or time the clocks cannot use (names the field)."""

    hint = "times need a UTC offset; categories are emergency or significant; milestones are " + ", ".join(MILESTONES)

    def __init__(self, message: str, *, field: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidClockInput(f"{what} {moment.isoformat()} has no UTC offset", field=what)
    return moment


@dataclass(frozen=True)
class WorkingDays:
    """Working days: Monday to Friday that are not bank holidays, in one time zone's days."""

    holidays: Container[date] = field(repr=False, compare=False)
    zone: ZoneInfo = LONDON
    day_ends: time = END_OF_DAY         # when "the end of the day" is, local time
    name: str = "weekends and the given holidays"

    @classmethod
    def england(cls) -> WorkingDays:
        """England's bank holidays (GOV.UK's list, from the `holidays` library) and weekends."""
        return _england()

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def local_day(self, moment: datetime) -> date:
        """The calendar day `moment` falls on in this zone."""
        return _aware(moment, "time").astimezone(self.zone).date()

    def add_days(self, day: date, days: int) -> date:
        """The `days`-th working day after `day` (`day` itself for 0)."""
        if days < 0:
            raise InvalidClockInput(f"cannot count {days} working days", field="days")
        current = day
        while days:
            current += timedelta(days=1)
            if self.is_working_day(current):
                days -= 1
        return current

    def end_of(self, day: date) -> datetime:
        """The end of `day` in this zone, as an aware UTC datetime."""
        return datetime.combine(day, self.day_ends, tzinfo=self.zone).astimezone(UTC)

    def add(self, start: datetime, days: int) -> datetime:
        """The end of the `days`-th working day after the day `start` falls on (local), in UTC."""
        return self.end_of(self.add_days(self.local_day(start), days))

    def also_closed(self, days: Collection[date]) -> WorkingDays:
        """These working days and `days` as further holidays (a local closure, a one-off bank holiday)."""
        if not days:
            return self
        return replace(self, holidays=_Either(self.holidays, frozenset(days)), name=f"{self.name}, and {len(days)} "
                       f"more closed day{'s' if len(days) != 1 else ''}")


@dataclass(frozen=True)
class _Either:
    first: Container[date]
    second: Container[date]

    def __contains__(self, day: object) -> bool:
        return day in self.first or day in self.second


@functools.cache
def _england() -> WorkingDays:
    # no `years`: the library fills in each year the first time a date in it is asked about
    return WorkingDays(holidays.country_holidays("GB", subdiv="ENG"),
                       name="weekends and bank holidays in England (GOV.UK, via the holidays library)")


@dataclass(frozen=True)
class Clock:
    key: str
    label: str              # plain words for a tenant and an officer
    starts_from: str        # the milestone it runs from
    due: datetime | None    # None while its milestone has not happened
    met_at: datetime | None
    state: State
    source: str             # the regulation or guidance paragraph


@dataclass(frozen=True)
class ClockRule:
    """One duty: from which milestone, how long, which milestone meets it, and where it is written."""

    key: str
    label: str
    starts_from: str
    met_by: str
    source: str
    working_days: int = 0
    hours: int = 0
    weeks: int = 0


# The regulation numbers follow the order of the requirements in SI 2025/1042 as summarised by the
# guidance and secondary sources; docs/cases.md says which were checked against which text.
EMERGENCY: tuple[ClockRule, ...] = (
    ClockRule("emergency_investigation", "Investigate the emergency hazard", "aware", "investigated",
              f"{REGULATIONS} reg. 5: an emergency investigation within 24 hours of becoming aware; "
              f"{GUIDANCE}, 'Emergency hazards'", hours=24),
    ClockRule("make_safe", "Make the home safe from the emergency hazard", "investigated", "made_safe",
              f"{REGULATIONS} reg. 5: relevant safety work within 24 hours of its being identified by the "
              f"investigation; {GUIDANCE}, 'Emergency hazards'", hours=24),
)
SIGNIFICANT: tuple[ClockRule, ...] = (
    ClockRule("investigation", "Investigate the damp and mould", "aware", "investigated",
              f"{REGULATIONS} reg. 4: investigate a potential significant hazard within 10 working days of "
              f"becoming aware; {GUIDANCE}, 'Investigating potential hazards'", working_days=10),
    ClockRule("written_summary", "Send the tenant a written summary of what the investigation found",
              "investigated", "summary_sent",
              f"{REGULATIONS} reg. 6: a written summary within 3 working days of the investigation "
              f"concluding; {GUIDANCE}, 'Written summary'", working_days=3),
    ClockRule("safety_work", "Finish the work that makes the home safe", "investigated", "safety_works_done",
              f"{REGULATIONS} reg. 7: relevant safety work completed within 5 working days of the "
              f"investigation concluding; {GUIDANCE}, 'Making the home safe'", working_days=5),
    ClockRule("further_works_begin", "Begin the work that stops the damp coming back (or take steps to begin it)",
              "investigated", "further_works_begun",
              f"{REGULATIONS} reg. 8: supplementary preventative work begun, or steps taken to begin it, "
              f"within 5 working days of the investigation concluding; {GUIDANCE}, 'Supplementary "
              f"preventative work'", working_days=5),
    ClockRule("further_works_start", "Start the work that stops the damp coming back on site",
              "investigated", "further_works_started",
              f"{REGULATIONS} reg. 8: where steps were taken, the work physically started within 12 weeks "
              f"of the investigation concluding; {GUIDANCE}, 'Supplementary preventative work'", weeks=12),
)
RULES: dict[str, tuple[ClockRule, ...]] = {"emergency": EMERGENCY, "significant": SIGNIFICANT}
SAFETY_CLOCKS = ("make_safe", "safety_work")
ALTERNATIVE_ACCOMMODATION = (
    f"{REGULATIONS} reg. 9: where the home cannot be made safe within the time allowed, the landlord must "
    f"offer the household suitable alternative accommodation until it is; {GUIDANCE}, 'Suitable "
    f"alternative accommodation'")


def _due(rule: ClockRule, start: datetime, calendar: WorkingDays, first_day_counts: bool) -> datetime:
    if rule.hours:
        return start.astimezone(UTC) + timedelta(hours=rule.hours)     # elapsed hours, through the night
    day = calendar.local_day(start)
    if rule.weeks:
        return calendar.end_of(day + timedelta(weeks=rule.weeks))
    days = rule.working_days
    if first_day_counts and calendar.is_working_day(day):
        days -= 1
    return calendar.end_of(calendar.add_days(day, days))


def _state(due: datetime | None, met_at: datetime | None, now: datetime, due_soon: timedelta) -> State:
    if met_at is not None:
        return "met_late" if due is not None and met_at > due else "met"
    if due is None:
        return "waiting"
    if now > due:
        return "overdue"
    return "due_soon" if due - now <= due_soon else "on_time"


def case_clocks(category: Category, milestones: Mapping[str, datetime | None], now: datetime, *,
                calendar: WorkingDays | None = None, due_soon: timedelta = timedelta(days=2),
                first_day_counts: bool = False,
                emergency_safety_from: Literal["investigated", "aware"] = "investigated",
                not_needed: Collection[str] = ()) -> list[Clock]:
    """Every clock that applies to a case of `category`, in order, as of `now`.

    `milestones` maps names in MILESTONES to when they happened (missing or None: not yet).
    `not_needed` names clocks the investigation found do not apply (e.g. no preventative work).
    """
    if category not in RULES:
        raise InvalidClockInput(f"category {category!r} is not one of {', '.join(CATEGORIES)}", field="category")
    unknown = sorted(set(milestones) - set(MILESTONES))
    if unknown:
        raise InvalidClockInput(f"unknown milestone {', '.join(unknown)}", field="milestones")
    known = {name: _aware(at, name) for name, at in milestones.items() if at is not None}
    now = _aware(now, "now")
    calendar = calendar or WorkingDays.england()
    clocks: list[Clock] = []
    for rule in RULES[category]:
        if rule.key in not_needed:
            continue
        starts_from = emergency_safety_from if rule.key == "make_safe" else rule.starts_from
        start = known.get(starts_from)
        due = None if start is None else _due(rule, start, calendar, first_day_counts)
        met_at = known.get(rule.met_by)
        clocks.append(Clock(rule.key, rule.label, starts_from, due, met_at,
                            _state(due, met_at, now, due_soon), rule.source))
    return clocks


def alternative_accommodation_needed(clocks: Sequence[Clock]) -> bool:
    """True when a make-safe clock ran out with the home still not safe (ALTERNATIVE_ACCOMMODATION).

    A flag for the officer, not a clock: the duty runs until the home is safe or the household
    declines, and a landlord who already knows it cannot meet the clock should act before it ends.
    """
    return any(clock.key in SAFETY_CLOCKS and clock.state == "overdue" for clock in clocks)


def next_clock(clocks: Sequence[Clock]) -> Clock | None:
    """The running clock that falls due first (the case's next step), or None."""
    running = [c for c in clocks if c.due is not None and c.met_at is None]
    return min(running, key=lambda c: c.due or datetime.max.replace(tzinfo=UTC), default=None)


def due_in_words(due: datetime, calendar: WorkingDays | None = None) -> str:
    """'by the end of Monday 11 January 2027' or 'by 14:30 on Thursday 24 December 2026' (local)."""
    calendar = calendar or WorkingDays.england()
    local = _aware(due, "due").astimezone(calendar.zone)
    day = f"{local:%A} {local.day} {local:%B %Y}"
    return f"by the end of {day}" if local.time() == calendar.day_ends else f"by {local:%H:%M} on {day}"


def local_time(due: datetime, calendar: WorkingDays | None = None) -> str:
    """The time in the calendar's zone with its UTC offset, to the second: 2027-01-11T23:59:59+00:00."""
    calendar = calendar or WorkingDays.england()
    return _aware(due, "due").astimezone(calendar.zone).isoformat(timespec="seconds")
