"""The latest gritting run as the API shows it: decisions per segment, routes to send (with
when each was last treated by a crew), and each route's plan (GeoJSON and crew steps); and
the decision log (pipelines.gritting.log): a period's runs, and the duty officer's entries.
The SQL is the gritting store's (pipelines.gritting.store); this module shapes it for JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from cityops.storage import Database
from jobs import store as jobs_store
from ops_api.accounts.roles import User
from ops_api.errors import InvalidRequest, NotFound
from pipelines.gritting import store
from pipelines.gritting.log import RunLog, parse_period, read_log, record_entry

ACTIONS = ("treat", "monitor", "none")
MAX_LOG_PERIOD = timedelta(days=31)     # longer: `cityops roads log --csv`


def plain(row: asyncpg.Record | dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row as JSON-ready values: times as ISO strings, jsonb parsed."""
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if key in skip:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif key in ("inputs", "warnings", "geojson", "instructions", "notes", "skipped", "missed") \
                and isinstance(value, str):
            value = json.loads(value)
        out[key] = value
    return out


async def latest(db: Database) -> asyncpg.Record:
    run = await store.latest_run(db)
    if run is None:
        raise NotFound("no gritting run yet", hint="the rules service runs it: cityops rules run --gritting")
    return run


async def run_summary(db: Database) -> dict[str, Any]:
    run = await latest(db)
    counts = await store.segment_action_counts(db, run["run_id"])
    return {**plain(run, skip=("inputs",)), "segments": {a: counts.get(a, 0) for a in ACTIONS}}


async def segments(db: Database, route_id: str | None, actions: list[str]) -> dict[str, Any]:
    run = await latest(db)
    rows = await store.segment_decisions(db, run["run_id"], route_id, actions)
    return {"run_id": run["run_id"], "as_of": run["as_of"].isoformat(), "segments": [plain(r) for r in rows]}


async def routes(db: Database, send_only: bool = False) -> dict[str, Any]:
    """The latest run's route decisions, with the plan's id, the last treatment and any open job."""
    run = await latest(db)
    rows = [r for r in await store.route_decisions(db, run["run_id"]) if r["send"] or not send_only]
    ids = [r["route_id"] for r in rows]
    plan_ids = await store.plan_ids(db, run["run_id"])
    treated = await jobs_store.last_treatments(db, ids)
    jobs = await jobs_store.open_gritting_jobs(db, ids)
    out = []
    for r in rows:
        item = plain(r, skip=("instructions",))
        t = treated.get(r["route_id"])
        job = jobs.get(r["route_id"])
        item.update(plan_id=plan_ids.get(r["route_id"]),
                    treated_at=t["treated_at"].isoformat() if t else None,
                    treated_since_run=bool(t and t["treated_at"] >= run["as_of"]),
                    open_job=plain(job, skip=("route_id",)) if job else None)
        out.append(item)
    return {"run_id": run["run_id"], "as_of": run["as_of"].isoformat(), "routes": out}


async def route_plan(db: Database, route_id: str, run_id: int | None = None) -> dict[str, Any]:
    """A route's plan from the given run (default: the latest run that planned it)."""
    row = await store.route_plan(db, route_id, run_id)
    if row is None:
        raise NotFound(f"no plan for gritting route {route_id!r}",
                       hint="a plan is made when a run decides to send the route (GET /gritting/routes)")
    return plain(row)


def plan_steps(instructions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plan's instructions numbered through all trips: [{seq, trip, vehicle, text}]."""
    return [{"seq": seq, "trip": i.get("trip"), "vehicle": i.get("vehicle"), "text": i["text"]}
            for seq, i in enumerate(instructions, start=1)]


# --- the decision log ------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def run_log_json(run: RunLog) -> dict[str, Any]:
    out = _jsonable(asdict(run))
    for item, route in zip(out["routes"], run.routes, strict=True):
        item["final_decision"] = route.final_decision
        item["events"] = _jsonable([asdict(e) for e in route.events()])
    return dict(out)


async def decision_log(db: Database, start: str, end: str, route_id: str | None) -> dict[str, Any]:
    """The runs whose as_of is in [start, end), each route's chain from decision to completed job."""
    since, until = parse_period(start, end)   # DecisionLogError: a 422 (ops_api/errors.py)
    if until - since > MAX_LOG_PERIOD:
        raise InvalidRequest(f"the period is {(until - since).days} days; at most {MAX_LOG_PERIOD.days} per request",
                             hint="ask for a shorter period, or for the records: cityops roads log --csv")
    runs = await read_log(db, since, until, route_id)
    return {"from": since.isoformat(), "to": until.isoformat(), "runs": [run_log_json(r) for r in runs]}


async def officer_entry(db: Database, run_id: int, route_id: str, user: User, override: str | None,
                        reason: str | None) -> dict[str, Any]:
    """Append the signed-in officer's acknowledgement (or override) of a run's route decision."""
    # RouteDecisionNotFound: a 404, DecisionLogError: a 422 (ops_api/errors.py)
    entry = await record_entry(db, run_id, route_id, officer=user.display_name or user.username, reason=reason,
                               override=override, user_id=user.user_id)
    return {**_jsonable(asdict(entry)), "decision_after": entry.decision_after}
