"""The gritting decision log: per run and route, what was decided and why, what the duty
officer did about it, and when the crews went out (docs/gritting.md, "The decision log").

What the log holds, and the checks on it (pure), over the store (pipelines.gritting.store).
`record_entry` checks an officer's acknowledgement or override and appends it to
`gritting_decision_log` (append-only: migration 0016); `read_log` reads a period back,
one `RunLog` per run whose as_of is in [start, end), each with a `RouteLog` per route: the
run's decision, the officer's entries, and the crews' jobs, where

    a run's jobs for a route  the jobs whose run_id is that run; if none, the first job for the
                              route created after the run was computed and before the next run
                              was (a job that names another run belongs to that run)

`parse_period` reads the dates the CLI and the API are given. Times are UTC. Errors:
rules.errors.DecisionLogError for what the log refuses, and pipelines.errors.RouteDecisionNotFound
for a run or route that is not there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from cityops.storage import Database
from pipelines.errors import RouteDecisionNotFound
from pipelines.gritting import store
from rules.errors import DecisionLogError

OVERRIDES = ("send", "not_needed")          # what an officer may decide instead
MAX_REASON = 2000
MAX_OFFICER = 200
MAX_RUN_ID = 2**63 - 1


# --- what the log holds --------------------------------------------------------------------

@dataclass(frozen=True)
class OfficerEntry:
    """One acknowledgement or override, as appended."""

    entry_id: int
    run_id: int
    route_id: str
    action: str                  # acknowledge | override
    decision_before: str         # in force when the officer acted: the run's, or an earlier override's
    decision: str | None         # an override's decision
    reason: str | None
    officer: str
    user_id: str | None
    at: datetime

    @property
    def decision_after(self) -> str:
        return self.decision or self.decision_before


@dataclass(frozen=True)
class CrewJob:
    """A gritting job for the route: sent (assigned), started, completed; names, not user ids."""

    job_id: int
    state: str
    assigned_to: str
    assigned_by: str | None
    sent_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None
    note: str | None
    salt_kg: float | None        # spread, as recorded at completion (gritting_treatments)
    segments_treated: int | None


@dataclass(frozen=True)
class LogEvent:
    at: datetime
    what: str                    # decided | acknowledged | overridden | sent | started | completed
    detail: str                  # the decision(s), or the job
    by: str | None = None
    note: str | None = None      # the officer's reason, the crew's note


STAGES = ("decided", "acknowledged", "overridden", "sent", "started", "completed")


@dataclass(frozen=True)
class RouteLog:
    run_id: int
    route_id: str
    name: str
    decided_at: datetime         # the run's computed_at
    decision: str                # the run's: send | not_needed | unknown
    reason: str
    treat_segments: int
    salt_kg: float
    freeze_at: datetime | None
    latest_start: datetime | None
    entries: tuple[OfficerEntry, ...]
    jobs: tuple[CrewJob, ...]

    @property
    def final_decision(self) -> str:
        """The decision in force after the officer's entries."""
        return self.entries[-1].decision_after if self.entries else self.decision

    def events(self) -> list[LogEvent]:
        """The chain in time order: decided, acknowledged or overridden, sent, started, completed."""
        out = [LogEvent(self.decided_at, "decided", words(self.decision))]
        for e in self.entries:
            if e.action == "override":
                out.append(LogEvent(e.at, "overridden", f"{words(e.decision_before)} -> {words(e.decision_after)}",
                                    e.officer, e.reason))
            else:
                out.append(LogEvent(e.at, "acknowledged", words(e.decision_before), e.officer, e.reason))
        for j in self.jobs:
            out.append(LogEvent(j.sent_at, "sent", f"job {j.job_id} to {j.assigned_to}", j.assigned_by))
            if j.started_at is not None:
                out.append(LogEvent(j.started_at, "started", f"job {j.job_id}"))
            if j.completed_at is not None:
                spread = f" ({j.salt_kg:,.1f} kg on {j.segments_treated} segment(s))" if j.salt_kg is not None else ""
                out.append(LogEvent(j.completed_at, "completed", f"job {j.job_id}{spread}", j.completed_by,
                                    j.note or None))
        return sorted(out, key=lambda e: (e.at, STAGES.index(e.what)))


@dataclass(frozen=True)
class RunLog:
    run_id: int
    as_of: datetime
    computed_at: datetime
    window_start: datetime
    window_end: datetime
    forecast_sources: tuple[str, ...]
    sensors_used: int
    sensors_left_out: int
    warnings: int
    routes: tuple[RouteLog, ...]


def words(decision: str) -> str:
    return {"send": "SEND", "not_needed": "NOT NEEDED", "unknown": "UNKNOWN"}.get(decision, decision)


# --- the period ----------------------------------------------------------------------------

def parse_period(start: str, end: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC from ISO dates or times (UTC when naive). A date as the end
    includes that whole day: 2026-01-01 to 2026-01-31 is the whole of January."""
    since, until = _moment(start, "from", end=False), _moment(end, "to", end=True)
    if since >= until:
        raise DecisionLogError(f"the period from {start.strip()} to {end.strip()} is empty", field="to",
                               hint="give a start before the end (a date as the end includes that whole day)")
    return since, until


def _moment(text: str, field: str, *, end: bool) -> datetime:
    text = text.strip()
    try:
        day: date | None = date.fromisoformat(text)
    except ValueError:
        day = None
    try:
        if day is not None:
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1 if end else 0)
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise DecisionLogError(f"{field}: {text[:40]!r} is not a date or a time", field=field,
                               hint="an ISO 8601 date or time, UTC unless it has an offset: 2026-01-06 or "
                                    "2026-01-06T18:00Z") from None


# --- recording -----------------------------------------------------------------------------

def check_entry(decision_before: str, override: str | None, reason: str | None, officer: str) -> None:
    """What the log refuses, given the decision in force (pure; the table checks the same)."""
    if not officer:
        raise DecisionLogError("the officer's name is empty", field="officer", hint="give who acted: --by NAME")
    if len(officer) > MAX_OFFICER:
        raise DecisionLogError(f"the officer's name is over {MAX_OFFICER} characters", field="officer")
    if reason is not None and len(reason) > MAX_REASON:
        raise DecisionLogError(f"the reason is over {MAX_REASON} characters", field="reason")
    if override is None:
        if decision_before == "unknown" and reason is None:
            raise DecisionLogError("acknowledging an UNKNOWN decision needs a reason", field="reason",
                                   hint="say what was decided and why (e.g. patrolled at 19:40, roads dry), or "
                                        "override it to send or not_needed")
        return
    if override not in OVERRIDES:
        raise DecisionLogError(f"cannot override to {override!r}", field="override",
                               hint=f"override to one of: {', '.join(OVERRIDES)}")
    if reason is None:
        raise DecisionLogError("an override needs a reason", field="reason",
                               hint="say why the decision is changed: what was seen, forecast or reported")
    if override == decision_before:
        raise DecisionLogError(f"the decision in force is already {words(override)}", field="override",
                               hint="acknowledge it instead, or override to the other decision")


async def resolve_run(db: Database, run: str | int) -> int:
    """A run id from "latest" or a number."""
    if run == "latest":
        latest = await store.latest_run_id(db)
        if latest is None:
            raise RouteDecisionNotFound("no gritting run yet", field="run",
                                        hint="the rules service runs it: cityops rules run --gritting")
        return latest
    try:
        run_id = int(run)
    except ValueError:
        raise DecisionLogError(f"run: {str(run)[:40]!r} is neither a run id nor 'latest'", field="run") from None
    if not 1 <= run_id <= MAX_RUN_ID:
        raise RouteDecisionNotFound(f"no gritting run {run_id}", field="run")
    return run_id


async def record_entry(db: Database, run_id: int, route_id: str, *, officer: str, reason: str | None = None,
                       override: str | None = None, user_id: str | None = None) -> OfficerEntry:
    """Append an acknowledgement (override None) or an override of a run's route decision."""
    officer = officer.strip()
    reason = (reason or "").strip() or None
    row = await store.append_officer_entry(
        db, run_id, route_id, check=lambda before: check_entry(before, override, reason, officer), override=override,
        reason=reason, officer=officer, user_id=user_id)
    return _entry(row)


def _entry(row: asyncpg.Record) -> OfficerEntry:
    return OfficerEntry(row["entry_id"], row["run_id"], row["route_id"], row["action"], row["decision_before"],
                        row["decision"], row["reason"], row["officer"], row["user_id"], row["at"])


# --- reading -------------------------------------------------------------------------------

async def read_log(db: Database, start: datetime, end: datetime, route_id: str | None = None) -> list[RunLog]:
    """The runs whose as_of is in [start, end), oldest first, each with its routes' logs."""
    stored = await store.log_rows(db, start, end, route_id)
    runs, decisions = stored.runs, stored.decisions
    entries: dict[tuple[int, str], list[OfficerEntry]] = defaultdict(list)
    for row in stored.entries:
        entries[(row["run_id"], row["route_id"])].append(_entry(row))
    jobs = _jobs_by_route(stored.jobs)
    by_run: dict[int, list[RouteLog]] = defaultdict(list)
    computed_at = {r["run_id"]: r["computed_at"] for r in runs}
    for d in decisions:
        key = (d["run_id"], d["route_id"])
        by_run[d["run_id"]].append(RouteLog(
            d["run_id"], d["route_id"], d["name"], computed_at[d["run_id"]], d["decision"], d["reason"],
            d["treat_segments"], float(d["salt_kg"]), d["freeze_at"], d["latest_start"], tuple(entries[key]),
            tuple(jobs.get(key, ()))))
    return [RunLog(r["run_id"], r["as_of"], r["computed_at"], r["window_start"], r["window_end"],
                   _sources(r["forecast_sources"]), r["sensors_used"] or 0, r["sensors_left_out"] or 0,
                   r["warnings"] or 0, tuple(by_run[r["run_id"]])) for r in runs]


def _jobs_by_route(rows: Sequence[asyncpg.Record]) -> dict[tuple[int, str], list[CrewJob]]:
    """Per (run, route): the jobs that name the run; else the first one created in its window."""
    named: dict[tuple[int, str], list[CrewJob]] = defaultdict(list)
    in_window: dict[tuple[int, str], list[CrewJob]] = defaultdict(list)
    for r in rows:
        job = CrewJob(r["job_id"], r["state"], r["assigned_to"], r["assigned_by"], r["created_at"], r["started_at"],
                      r["completed_at"], r["completed_by"], r["note"],
                      None if r["salt_kg"] is None else float(r["salt_kg"]), r["segments_treated"])
        key = (r["run_id"], r["route_id"])
        (named if r["job_run_id"] == r["run_id"] else in_window)[key].append(job)
    return {key: named.get(key) or in_window[key][:1] for key in named.keys() | in_window.keys()}


def _sources(value: Any) -> tuple[str, ...]:
    parsed = json.loads(value) if isinstance(value, str) else value
    return tuple(str(s) for s in parsed) if isinstance(parsed, list) else ()
