"""Grouped alert rules (pure): roads per gritting route and cause, bins per collection round.

A duty officer acts on a route, not on a road segment, and a waste supervisor on a round,
not on a bin; so these rules give one cause per group and list what is in it as members:

    route_treatment:<route_id>:<cause>  the route's segments the gritting run says to treat, per
                                        cause (snow, ice, wet_road, hoar_frost), with the route's
                                        decision (send or not, leave by); critical once the
                                        latest start has passed. `no_data`: the route decision is
                                        'unknown' (no usable road temperature): decide by patrol
    road_freeze:off-route:<cause>       segments on no gritting route, per cause
    bin_overflow:<depot>:<round>        bins predicted to overflow, per fixed collection round
                                        (the depot and the collection weekdays in bin_settings)

Members have their own hysteresis, from the alert's members at the last evaluation
(`previous`, cause -> member ids): a member joins when it fires (a segment to treat, a bin
at the raise threshold) and stays while it holds (to monitor; between the thresholds), so a
bin hovering at a threshold does not go in and out. A segment stays in the most demanding
cause it has needed tonight (snow > ice > wet road > hoar frost, the order of the spread
rates in rules/gritting/rates.py): a route's alerts do not swap as the reasons shift. A group
left without members is not mentioned: its alert clears after the clear hold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from math import isfinite

from alerts.model import Member, Severity, Signal, Status, band
from cityops.settings import AlertsSettings

# segment causes: rank (the more salt it takes, the higher) and words for titles
ROAD_CAUSES: dict[str, tuple[int, str]] = {
    "snow": (3, "snow or freezing rain"),
    "ice": (2, "ice"),
    "wet_road": (1, "wet or damp roads freezing"),
    "hoar_frost": (0, "hoar frost"),
}
NO_DATA = "no_data"
OFF_ROUTE = "road_freeze:off-route"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SHOWN = 25   # member lines in the detail text; all of them are in `members`


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
    route_name: str | None = None
    priority: int | None = None
    hazard_at: datetime | None = None     # when the road first needs the salt
    surface_state: str | None = None


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
    decision: str | None = None     # send|not_needed|unknown (migration 0015); None: from `send`

    @property
    def outcome(self) -> str:
        return self.decision or ("send" if self.send else "not_needed")


@dataclass(frozen=True)
class BinPriorityFact:
    device_id: str
    status: str                     # ok|learning|unknown
    fill: float | None
    overflow_risk: float | None
    hours_to_threshold: float | None
    depot_id: str | None = None     # the bin's depot (bin_settings; NULL there: the first depot)
    weekdays: tuple[int, ...] = ()  # its fixed collection days, Monday = 0; () no settings
    truck: int | None = None        # its truck on the depot's current plan, if it is on it
    shift_start: datetime | None = None


# --- membership -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """One thing that may be in a group: its groups are `scope:<key>`."""

    scope: str                      # e.g. route_treatment:north (a route's groups), bin_overflow:depot
    key: str | None                 # the group it belongs in when firing; None: no opinion now
    status: Status                  # firing joins; hold stays where it was; clear leaves
    member: Member


def regroup(candidates: Iterable[Candidate], previous: Mapping[str, frozenset[str]],
            rank: Callable[[str], int] = lambda key: 0) -> dict[str, list[Member]]:
    """cause -> members. A firing candidate joins `scope:key`, unless it was in a group of its
    scope whose key ranks higher (it stays there); a holding one stays in the groups it was in
    (only `scope:key` when it has a key); a clear one is in none."""
    was: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cause, ids in previous.items():
        scope = cause.rpartition(":")[0]
        for member_id in ids:
            was[scope, member_id].append(cause)
    groups: dict[str, list[Member]] = defaultdict(list)
    for c in candidates:
        before = was.get((c.scope, c.member.id), [])
        if c.status == "firing" and c.key is not None:
            higher = [w for w in before if rank(w.rpartition(":")[2]) > rank(c.key)]
            home = max(higher, key=lambda w: rank(w.rpartition(":")[2])) if higher else f"{c.scope}:{c.key}"
            groups[home].append(c.member)
        elif c.status == "hold":
            for cause in before:
                if c.key is None or cause == f"{c.scope}:{c.key}":
                    groups[cause].append(c.member)
    return groups


def _lines(members: Sequence[Member]) -> list[str]:
    lines = [f"- {m.name} ({m.id}): {m.note}" if m.name else f"- {m.id}: {m.note}" for m in members[:SHOWN]]
    if len(members) > SHOWN:
        lines.append(f"- ... and {len(members) - SHOWN} more (all in the alert's members)")
    return lines


def _hhmm(moment: datetime | None) -> str:
    return f"{moment:%H:%M} UTC" if moment else "unknown"


# --- roads ----------------------------------------------------------------------------------

def segment_cause(reason: str | None, surface_state: str | None = None) -> str:
    """The most demanding cause in a segment's treat reason (rules/gritting/decide.py's words).

    Frost forming from the air (hoar frost, dew freezing) on a road that is not wet is
    `hoar_frost`; a wet road (now, or rain forecast) or a damp one at the trigger is `wet_road`."""
    text = (reason or "").lower()
    if "snow" in text or "freezing rain" in text:
        return "snow"
    if "ice on the road" in text or surface_state == "ice":
        return "ice"
    wet = surface_state == "wet" or "wet road" in text or "wet (" in text
    if ("hoar frost" in text or "dew freezing" in text) and not wet:
        return "hoar_frost"
    return "wet_road"


def _road_rank(key: str) -> int:
    return ROAD_CAUSES.get(key, (-1, ""))[0]


def _segment_member(f: SegmentFact) -> Member:
    priority = f"priority {f.priority}, " if f.priority is not None else ""
    if f.rst_min_c is None:
        note = f"{priority}no road surface temperature"
    else:
        note = f"{priority}lowest {f.rst_min_c:+.1f} °C at {_hhmm(f.rst_min_at)}"
    note += f", treat from {_hhmm(f.hazard_at)}" if f.action == "treat" else f", {f.action} now"
    return Member(f.segment_id, f.name or "", f.rst_min_c, f.rst_min_at, note)


def road_signals(segments: Sequence[SegmentFact], routes: Sequence[RouteFact], now: datetime,
                 previous: Mapping[str, frozenset[str]]) -> Iterator[Signal]:
    """One signal per (route, cause) with members, and one per route whose decision is unknown."""
    by_id = {f.segment_id: f for f in segments}
    by_route = {r.route_id: r for r in routes}
    candidates = []
    for f in segments:
        status: Status = "firing" if f.action == "treat" else "hold" if f.action == "monitor" else "clear"
        key = segment_cause(f.reason, f.surface_state) if status == "firing" else None
        scope = f"route_treatment:{f.route_id}" if f.route_id else OFF_ROUTE
        candidates.append(Candidate(scope, key, status, _segment_member(f)))
    grouped = {c: ids for c, ids in previous.items() if not c.endswith(f":{NO_DATA}")}
    for cause, members in sorted(regroup(candidates, grouped, _road_rank).items()):
        scope = cause.rpartition(":")[0]
        route_id = None if scope == OFF_ROUTE else scope.partition(":")[2]
        yield _road_group(cause, route_id, [by_id[m.id] for m in members], by_route.get(route_id or ""), now)
    for r in routes:
        if r.outcome == "unknown":
            yield _no_data(r, [f for f in segments if f.route_id == r.route_id and f.rst_min_c is None])


def _route_words(route_id: str, route: RouteFact | None, facts: Sequence[SegmentFact]) -> str:
    name = (route.name if route else None) or next((f.route_name for f in facts if f.route_name), None)
    return name or f"Route {route_id}"


def _road_group(cause: str, route_id: str | None, facts: list[SegmentFact], route: RouteFact | None,
                now: datetime) -> Signal:
    rule, key = cause.partition(":")[0], cause.rpartition(":")[2]
    facts.sort(key=lambda f: (f.hazard_at or datetime.max.replace(tzinfo=now.tzinfo),
                              f.rst_min_c if f.rst_min_c is not None else float("inf"), f.segment_id))
    first = min((f.hazard_at for f in facts if f.hazard_at), default=None)
    n = len(facts)
    label = ROAD_CAUSES.get(key, (0, key.replace("_", " ")))[1]
    when = f", from {first:%H:%M} UTC" if first else ""
    count = f"{n} segment{'s' if n != 1 else ''}"
    severity: Severity = "warning"
    if route_id is None:
        title = f"Roads off the gritting routes need treatment ({label}): {count}{when}"
        head = ["Not on any gritting route: treat locally where it matters tonight."]
    else:
        title = f"{_route_words(route_id, route, facts)} needs treatment ({label}): {count}{when}"
        if route is None:
            head = ["No decision for the route in this gritting run."]
        else:
            head = [f"Route decision: {route.reason or route.outcome}"]
            if route.outcome == "send" and route.latest_start is not None:
                late = route.latest_start <= now
                severity = "critical" if late else "warning"
                head.append(f"{'Late: it should have left' if late else 'Leave'} by {_hhmm(route.latest_start)}.")
    members = tuple(_segment_member(f) for f in facts)
    detail = "\n".join([*head, f"{count} to treat for {label} (gritting run {facts[0].run_id}):", *_lines(members)])
    coldest = min((f.rst_min_c for f in facts if f.rst_min_c is not None), default=None)
    return Signal(rule, cause, "firing", severity, title, detail, coldest, route_id=route_id, members=members)


def _no_data(route: RouteFact, blind: list[SegmentFact]) -> Signal:
    blind.sort(key=lambda f: (f.priority or 9, f.segment_id))
    members = tuple(_segment_member(f) for f in blind)
    detail = "\n".join([f"Route decision: {route.reason or 'unknown: no usable road temperature'}",
                        f"{len(blind)} segments without a road surface temperature (gritting run {route.run_id}):",
                        *_lines(members)])
    return Signal("route_treatment", f"route_treatment:{route.route_id}:{NO_DATA}", "firing", "critical",
                  f"{_route_words(route.route_id, route, blind)}: no usable road temperature, decide by patrol",
                  detail, None, route_id=route.route_id, members=members)


# --- bins -----------------------------------------------------------------------------------

def round_key(weekdays: Sequence[int]) -> str:
    """'mon-thu' for a round collected on Mondays and Thursdays; 'no-round' without a schedule."""
    days = sorted({d for d in weekdays if 0 <= d < 7})
    return "-".join(WEEKDAYS[d] for d in days) or "no-round"


def _bin_member(f: BinPriorityFact) -> Member:
    parts = [] if f.fill is None else [f"{f.fill:.0%} full"]
    parts.append("overflow risk unknown" if f.overflow_risk is None else f"overflow risk {f.overflow_risk:.0%}")
    if f.hours_to_threshold is not None and isfinite(f.hours_to_threshold):
        parts.append(f"at the threshold in {max(f.hours_to_threshold, 0):.0f} h")
    plan = (f"truck {f.truck} of the {f.shift_start:%a %H:%M} UTC plan" if f.truck is not None and f.shift_start
            else "not on the current plan")
    return Member(f.device_id, "", f.overflow_risk, None, f"{', '.join(parts)}; {plan}")


def bin_round_signals(facts: Sequence[BinPriorityFact], s: AlertsSettings,
                      previous: Mapping[str, frozenset[str]]) -> Iterator[Signal]:
    """One signal per bins round with the bins predicted to overflow before their next pass."""
    by_id = {f.device_id: f for f in facts}
    candidates = [Candidate(f"bin_overflow:{f.depot_id or 'no-depot'}", round_key(f.weekdays),
                            "hold" if f.overflow_risk is None else band(f.overflow_risk, s.bin_overflow_raise,
                                                                         s.bin_overflow_clear),
                            _bin_member(f)) for f in facts]
    for cause, members in sorted(regroup(candidates, previous).items()):
        bins = sorted((by_id[m.id] for m in members), key=lambda f: (-(f.overflow_risk or 0), f.device_id))
        listed = tuple(_bin_member(f) for f in bins)
        scope, _, key = cause.rpartition(":")
        depot = scope.partition(":")[2]
        days = "+".join(d.capitalize() for d in key.split("-"))
        where = f"Bins round {days}, depot {depot}" if key != "no-round" else f"Bins without a round, depot {depot}"
        n, planned = len(bins), sum(f.truck is not None for f in bins)
        count = f"{n} bin{'s' if n != 1 else ''}"
        detail = "\n".join([f"{count} predicted to overflow before the next collection; {planned} of them on the "
                            "current plan:", *_lines(listed)])
        worst = max((f.overflow_risk for f in bins if f.overflow_risk is not None), default=None)
        yield Signal("bin_overflow", cause, "firing", "warning", f"{where}: {count} predicted to overflow", detail,
                     worst, members=listed)
