"""A job's per-stop progress from the crew's marks (pure: no I/O).

A stop is what a crew marks: a bin of a bins job (its device_id), a step of a gritting plan
("step-<seq>"). A mark says done, skipped (with a reason), pending (an undo) or is a note.
Phones queue marks offline and send them later, in any order, from several crew members:

    clamp          a marked_at in the future of the receipt is taken as the receipt time
    stop_state     per stop, the mark with the latest marked_at wins (a tie: the one received
                   later); another person's latest mark of another status that lost is the
                   stop's `conflict`
    settle         a completed job's unmarked stops: done, or skipped when the completion
                   skipped them
    tally          the progress counts
    check_mark     a mark the job cannot take (unknown stop, a skip without a reason): InvalidJob
    may_mark       whether a (previous) member's mark counts: the job's members at marked_at
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from jobs.errors import InvalidJob

STATUSES = ("done", "skipped", "pending")
REASONS = ("blocked", "contaminated", "not_out", "damaged", "other")
CLOCK_SKEW = timedelta(hours=1)   # how far before the job's creation a phone's clock may say it was tapped


def gritting_stop(seq: int) -> str:
    """A gritting plan step's stop key."""
    return f"step-{seq}"


@dataclass(frozen=True)
class Mark:
    mark_id: str
    stop: str | None
    status: str              # done | skipped | pending | note
    reason: str | None
    note: str
    marked_at: datetime      # clamped to the receipt
    marked_by: str
    received: int            # order of receipt

    @property
    def order(self) -> tuple[datetime, int]:
        return self.marked_at, self.received


@dataclass(frozen=True)
class StopState:
    stop: str
    status: str                   # done | skipped | pending
    winner: Mark | None = None
    conflict: Mark | None = None
    note: str = ""                # the latest note any mark on the stop carried


def clamp(marked_at: datetime, received_at: datetime) -> datetime:
    """The phone's time of the tap, never later than the server received it."""
    return min(marked_at, received_at)


def stop_state(stop: str, marks: Iterable[Mark]) -> StopState:
    """The stop's status from its marks (notes aside): the latest marked_at wins."""
    on_stop = sorted((m for m in marks if m.stop == stop), key=lambda m: m.order)
    note = next((m.note for m in reversed(on_stop) if m.note.strip()), "")
    ranked = [m for m in on_stop if m.status != "note"]
    if not ranked:
        return StopState(stop, "pending", note=note)
    winner = ranked[-1]
    latest_of_others: dict[str, Mark] = {}
    for m in ranked[:-1]:
        if m.marked_by != winner.marked_by:
            latest_of_others[m.marked_by] = m
    rivals = [m for m in latest_of_others.values() if m.status not in (winner.status, "pending")]
    conflict = max(rivals, key=lambda m: m.order) if rivals else None
    return StopState(stop, winner.status, winner, conflict, note)


def stop_states(stops: Sequence[str], marks: Sequence[Mark]) -> dict[str, StopState]:
    """Each stop's state, in the stops' order."""
    by_stop: dict[str | None, list[Mark]] = {}
    for m in marks:
        by_stop.setdefault(m.stop, []).append(m)
    return {s: stop_state(s, by_stop.get(s, [])) for s in stops}


def settle(states: Mapping[str, StopState], *, completed: bool, skipped: Iterable[str] = ()
           ) -> dict[str, StopState]:
    """A completed job's pending stops: skipped when the completion skipped them, done otherwise."""
    if not completed:
        return dict(states)
    gone = set(skipped)
    return {k: replace(s, status="skipped" if k in gone else "done") if s.status == "pending" else s
            for k, s in states.items()}


def tally(states: Mapping[str, StopState]) -> dict[str, int]:
    """{total, done, skipped, pending, conflicts} over the stops."""
    counts = {status: sum(s.status == status for s in states.values()) for status in STATUSES}
    return {"total": len(states), **counts, "conflicts": sum(s.conflict is not None for s in states.values())}


def skipped_stops(states: Mapping[str, StopState]) -> list[str]:
    """The stops whose winning mark is a skip, in the stops' order."""
    return [k for k, s in states.items() if s.status == "skipped"]


def outcome(mark_id: str, stop: str | None, status: str, stored: bool, states: Mapping[str, StopState]) -> str:
    """duplicate (sent before), superseded (stored, but a later mark on the stop wins) or stored."""
    if not stored:
        return "duplicate"
    state = states.get(stop) if stop is not None and status != "note" else None
    if state is not None and state.winner is not None and state.winner.mark_id != mark_id:
        return "superseded"
    return "stored"


def check_mark(i: int, stop: str | None, status: str, reason: str | None, note: str, marked_at: datetime,
               stops: Sequence[str], created_at: datetime) -> datetime:
    """Refuse a mark the job cannot take (InvalidJob naming `marks.<i>.<field>`); its marked_at in UTC."""
    where = f"marks.{i}"
    if status != "note" and stop is None:
        raise InvalidJob(f"a {status} mark needs the stop it is for", field=f"{where}.stop")
    if stop is not None and stop not in stops:
        raise InvalidJob(f"{stop!r} is not a stop of this job", field=f"{where}.stop",
                         hint="GET /jobs/{id} lists the job's steps and their stops")
    if status == "skipped" and reason is None:
        raise InvalidJob("a skip needs a reason", field=f"{where}.reason",
                         hint=f"one of: {', '.join(REASONS)}")
    if status == "note" and not note.strip():
        raise InvalidJob("a note mark needs its note", field=f"{where}.note")
    if marked_at.tzinfo is None:
        raise InvalidJob("give the time with its UTC offset", field=f"{where}.marked_at")
    try:
        at = marked_at.astimezone(UTC)
    except OverflowError:
        raise InvalidJob("not a time this job can have", field=f"{where}.marked_at") from None
    if at < created_at - CLOCK_SKEW:
        raise InvalidJob(f"{at:%Y-%m-%d %H:%M} UTC is before the job was made ({created_at:%Y-%m-%d %H:%M} UTC)",
                         field=f"{where}.marked_at", hint="check the phone's clock")
    return at


def members_at(at: datetime, timeline: Sequence[tuple[datetime, frozenset[str]]]) -> frozenset[str]:
    """The job's members (assignee and crew) at a time, from its (time, members after) changes in
    time order; before the first, the first's."""
    members = timeline[0][1] if timeline else frozenset()
    for when, after in timeline:
        if when > at:
            break
        members = after
    return members


def may_mark(user: str, marked_at: datetime, current: frozenset[str],
             timeline: Sequence[tuple[datetime, frozenset[str]]]) -> bool:
    """A member marks any time; someone the job was reassigned away from, only what they did
    (marked_at) while they were on it: work done offline before the change still counts."""
    return user in current or user in members_at(marked_at, timeline)


def was_member(user: str, timeline: Sequence[tuple[datetime, frozenset[str]]]) -> bool:
    return any(user in members for _, members in timeline)
