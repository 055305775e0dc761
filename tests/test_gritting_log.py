"""The gritting decision log against the real PostgreSQL, on a database of its own with real
gritting runs: the duty officer's overrides and acknowledgements (checked, append-only), the
chain from decision to completed job, `cityops roads log` (text and CSV) and `cityops roads
ack`, period filtering, and the API (only staff may acknowledge or override)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from cityops.errors import StorageError
from cityops.settings import GrittingSettings, get_settings
from cityops.storage import Database
from cityops_cli import main as cli
from ops_api.accounts.sessions import open_session
from ops_api.deps import Role
from pipelines.errors import RouteDecisionNotFound
from pipelines.gritting.log import parse_period, read_log, record_entry
from pipelines.gritting.log_cli import CSV_COLUMNS
from pipelines.gritting.pipeline import run_gritting
from rules.errors import DecisionLogError
from tests.api_helpers import api_client, login_as, make_user
from tests.resources_helpers import GRIT_NOW, World

Command = Callable[..., Awaitable[tuple[int, str, str]]]




@pytest.fixture
def roads(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Command]:
    """Run `cityops roads ...` in this process against the world's database: (exit code, stdout, stderr)."""
    monkeypatch.setenv("CITYOPS_DATABASE_URL", world.url)
    get_settings.cache_clear()

    async def run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, ["roads", *args])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    get_settings.cache_clear()


async def log_rows(db: Database) -> int:
    return int(await db.fetchval("SELECT count(*) FROM gritting_decision_log"))


async def add_run(db: Database, as_of: datetime, decisions: dict[str, str]) -> int:
    """A run row with the given route decisions, as the runner writes them (for cases it cannot make yet)."""
    run_id = int(await db.fetchval(
        "INSERT INTO gritting_runs (as_of, window_start, window_end, inputs, warnings) VALUES ($1, $1, $2, $3, $4) "
        "RETURNING run_id", as_of, as_of + timedelta(hours=12),
        json.dumps({"sensors_used": [], "sensors_dead": [{"device_id": "road-wet", "why": "stale"}],
                    "forecast": {"sources": []}}),
        json.dumps(["no working road sensor"])))
    for route_id, decision in decisions.items():
        await db.execute(
            "INSERT INTO gritting_route_decisions (run_id, route_id, send, decision, reason, treat_segments, salt_kg) "
            "VALUES ($1, $2, $3, $4, $5, 0, 0)", run_id, route_id, decision == "send", decision,
            f"{decision}: made by the test")
    return run_id


async def test_an_override_and_a_crews_job_make_one_chain_in_time_order(world: World, world_app: FastAPI,
                                                                        roads: Command) -> None:
    db = world.db
    run = await run_gritting(db, now=GRIT_NOW, settings=GrittingSettings(plan_seconds=3), max_iterations=200)
    assert run.run_id is not None
    assert await db.fetchval("SELECT decision FROM gritting_route_decisions WHERE run_id = $1 AND route_id = 'R1'",
                             run.run_id) == "send"

    # the duty officer stands the route down after a patrol; the night officer sends it again
    code, out, err = await roads("ack", "--route", "R1", "--by", "Amy Duty", "--override", "not_needed",
                                 "--reason", "patrolled Main Road at 20:10, surface dry")
    assert code == 0, err
    assert out.startswith(f"run {run.run_id}, route R1: SEND overridden to NOT NEEDED by Amy Duty at ")
    code, out, err = await roads("ack", "--run", str(run.run_id), "--route", "R1", "--by", "Bea Night",
                                 "--override", "send", "--reason", "rain from 21:00 on a freezing road")
    assert code == 0 and "NOT NEEDED overridden to SEND by Bea Night" in out, err
    crew = await make_user(db, Role.GRITTING_CREW)
    async with api_client(world_app) as op, api_client(world_app) as gritter:
        await login_as(op, db, Role.OPERATOR)
        job = (await op.post("/jobs", json={"kind": "gritting", "route_id": "R1", "assigned_to": crew.user_id})).json()
        assert job["run_id"] == run.run_id
        gritter.headers["Authorization"] = f"Bearer {await open_session(db, crew.user_id)}"
        assert (await gritter.post(f"/jobs/{job['job_id']}/start")).status_code == 200
        done = await gritter.post(f"/jobs/{job['job_id']}/complete", json={"note": "salted, icy by the mill"})
        assert done.status_code == 200, done.text
    stored = await db.fetchrow("SELECT created_at, started_at, completed_at FROM jobs WHERE job_id = $1",
                               job["job_id"])
    entries = await db.fetch("SELECT at, officer FROM gritting_decision_log WHERE run_id = $1 ORDER BY entry_id",
                             run.run_id)

    [logged] = [r for r in (await read_log(db, GRIT_NOW, GRIT_NOW + timedelta(minutes=1), "R1"))
                if r.run_id == run.run_id]
    [route] = logged.routes
    assert (route.decision, route.final_decision) == ("send", "send")
    events = route.events()
    assert [e.what for e in events] == ["decided", "overridden", "overridden", "sent", "started", "completed"]
    assert [e.at for e in events] == [logged.computed_at, entries[0]["at"], entries[1]["at"], stored["created_at"],
                                      stored["started_at"], stored["completed_at"]]
    assert [e.by for e in events[1:3]] == ["Amy Duty", "Bea Night"]
    assert events[1].detail == "SEND -> NOT NEEDED" and events[2].detail == "NOT NEEDED -> SEND"
    assert events[5].by == crew.username and events[5].note == "salted, icy by the mill"
    assert route.jobs[0].salt_kg is not None and route.jobs[0].salt_kg > 0

    code, out, err = await roads("log", "--from", "2026-01-06", "--to", "2026-01-06", "--route", "R1")
    assert code == 0, err
    block = out[out.index(f"run {run.run_id} as of 2026-01-06 20:00 UTC"):]
    chain = ["decided      SEND", "overridden   SEND -> NOT NEEDED by Amy Duty: \"patrolled Main Road",
             "overridden   NOT NEEDED -> SEND by Bea Night", f"sent         job {job['job_id']} to {crew.username}",
             f"started      job {job['job_id']}", f"completed    job {job['job_id']} ("]
    positions = [block.index(step) for step in chain]
    assert positions == sorted(positions), block
    assert f"{stored['completed_at'].astimezone(UTC):%Y-%m-%d %H:%M:%S}  completed" in block

    code, out, err = await roads("log", "--from", "2026-01-06T00:00Z", "--to", "2026-01-07T00:00Z", "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(out.splitlines()[0].split(",")) == CSV_COLUMNS
    expected = await db.fetch("SELECT d.run_id, d.route_id FROM gritting_route_decisions d JOIN gritting_runs r "
                              "USING (run_id) WHERE r.as_of >= '2026-01-06' AND r.as_of < '2026-01-07' "
                              "ORDER BY d.run_id, d.route_id")
    assert [(int(r["run_id"]), r["route_id"]) for r in rows] == [(e["run_id"], e["route_id"]) for e in expected]
    mine = next(r for r in rows if int(r["run_id"]) == run.run_id and r["route_id"] == "R1")
    assert (mine["decision"], mine["officer_entries"], mine["last_action"], mine["final_decision"],
            mine["officer"]) == ("send", "2", "override", "send", "Bea Night")
    assert mine["sent_at"] == f"{stored['created_at'].astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
    assert mine["completed_by"] == crew.username and mine["crew_note"] == "salted, icy by the mill"
    assert mine["as_of"] == "2026-01-06T20:00:00Z" and mine["job_ids"] == str(job["job_id"])


async def test_the_log_refuses_what_a_council_could_not_defend(world: World) -> None:
    db = world.db
    run_id = await add_run(db, datetime(2026, 2, 10, 18, tzinfo=UTC), {"R1": "unknown", "R2": "not_needed"})
    before = await log_rows(db)
    with pytest.raises(DecisionLogError, match="an override needs a reason") as caught:
        await record_entry(db, run_id, "R2", officer="Amy Duty", override="send", reason="   ")
    assert caught.value.field == "reason"
    with pytest.raises(DecisionLogError, match="already NOT NEEDED"):
        await record_entry(db, run_id, "R2", officer="Amy Duty", override="not_needed", reason="dry")
    with pytest.raises(DecisionLogError, match="acknowledging an UNKNOWN decision needs a reason"):
        await record_entry(db, run_id, "R1", officer="Amy Duty")
    with pytest.raises(DecisionLogError, match="name is empty"):
        await record_entry(db, run_id, "R2", officer=" ")
    with pytest.raises(RouteDecisionNotFound, match="no gritting run 987654321"):
        await record_entry(db, 987_654_321, "R1", officer="Amy Duty")
    with pytest.raises(RouteDecisionNotFound, match=f"run {run_id} has no decision for route 'R9'"):
        await record_entry(db, run_id, "R9", officer="Amy Duty", override="send", reason="x")
    assert await log_rows(db) == before

    # with the reason: the unknown route is acknowledged, and a plain acknowledgement needs none
    patrolled = await record_entry(db, run_id, "R1", officer="Amy Duty", reason="patrolled 18:20: dry, no frost")
    assert (patrolled.action, patrolled.decision_before, patrolled.decision_after) == ("acknowledge", "unknown",
                                                                                       "unknown")
    plain = await record_entry(db, run_id, "R2", officer="Amy Duty")
    assert plain.reason is None and await log_rows(db) == before + 2

    # the table holds the same rules, whatever writes to it
    with pytest.raises(StorageError, match="check"):
        await db.execute("INSERT INTO gritting_decision_log (run_id, route_id, action, decision_before, decision, "
                         "officer) VALUES ($1, 'R2', 'override', 'not_needed', 'send', 'Amy')", run_id)


async def test_the_log_cannot_be_rewritten(world: World) -> None:
    db = world.db
    run_id = await add_run(db, datetime(2026, 2, 11, 18, tzinfo=UTC), {"R1": "send"})
    entry = await record_entry(db, run_id, "R1", officer="Amy Duty", override="not_needed", reason="closed road")
    for statement in (f"UPDATE gritting_decision_log SET reason = 'nothing' WHERE entry_id = {entry.entry_id}",
                      f"DELETE FROM gritting_decision_log WHERE entry_id = {entry.entry_id}",
                      "TRUNCATE gritting_decision_log"):
        with pytest.raises(StorageError, match="append-only"):
            await db.execute(statement)
    with pytest.raises(StorageError, match="foreign key"):        # nor the run the officer acted on
        await db.execute("DELETE FROM gritting_runs WHERE run_id = $1", run_id)
    assert await db.fetchval("SELECT reason FROM gritting_decision_log WHERE entry_id = $1",
                             entry.entry_id) == "closed road"


async def test_a_period_is_from_inclusive_to_exclusive_and_finds_its_jobs(world: World, roads: Command) -> None:
    db = world.db
    times = [datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, 23, 30, tzinfo=UTC),
             datetime(2026, 3, 3, tzinfo=UTC)]
    ids = []
    for at in times:
        report = await run_gritting(db, now=at, plan=False)
        assert report.run_id is not None
        ids.append(report.run_id)

    async def runs(start: str, end: str) -> list[int]:
        return [r.run_id for r in await read_log(db, *parse_period(start, end))]

    assert await runs("2026-03-01", "2026-03-02") == ids[:2]                   # a date as the end: that whole day
    assert await runs("2026-03-01T00:00Z", "2026-03-03T00:00Z") == ids[:2]     # the end itself is out
    assert await runs("2026-03-02T23:30", "2026-03-04") == ids[1:]             # the start itself is in
    assert await runs("2026-03-03T01:00+01:00", "2026-03-03T00:00:01Z") == ids[2:]
    assert await runs("2026-03-04", "2026-03-05") == []

    # a job that names no run belongs to the last run computed before it was created; one that names a run, to that
    crew = await make_user(db, Role.GRITTING_CREW)
    insert = ("INSERT INTO jobs (kind, title, route_id, run_id, assigned_to, state, completed_at, completed_by) "
              "VALUES ('gritting', 'Grit by phone', $1, $2, $3, 'completed', now(), $3) RETURNING job_id")
    unnamed = await db.fetchval(insert, "R2", None, crew.user_id)
    named = await db.fetchval(insert, "R1", ids[0], crew.user_id)
    jobs = {r.run_id: [(route.route_id, j.job_id) for route in r.routes for j in route.jobs]
            for r in await read_log(db, *parse_period("2026-03-01", "2026-03-03"))}
    assert jobs == {ids[0]: [("R1", named)], ids[1]: [], ids[2]: [("R2", unnamed)]}

    code, _, err = await roads("log", "--from", "2026-03-04", "--to", "2026-03-01")
    assert code == 1 and "error: the period from 2026-03-04 to 2026-03-01 is empty" in err
    assert "hint: give a start before the end" in err
    code, _, err = await roads("log", "--from", "2026-13-01", "--to", "2026-03-01")
    assert code == 1 and "error: from: '2026-13-01' is not a date or a time" in err and "hint: an ISO 8601" in err
    code, _, err = await roads("ack", "--run", "987654321", "--route", "R1", "--by", "Amy")
    assert code == 1 and "error: no gritting run 987654321" in err and "hint: `cityops roads log" in err


async def test_only_staff_may_acknowledge_or_override_through_the_api(world: World, world_app: FastAPI) -> None:
    db = world.db
    run_id = await add_run(db, datetime(2026, 2, 12, 18, tzinfo=UTC), {"R1": "send", "R2": "unknown"})
    url = f"/gritting/runs/{run_id}/routes/R1/acknowledge"
    override = {"override": "not_needed", "reason": "I live here and it is fine"}
    before = await log_rows(db)
    async with api_client(world_app) as client:
        for role in (Role.HOUSEHOLDER, Role.GRITTING_CREW, Role.WASTE_CREW):
            await login_as(client, db, role)
            refused = await client.post(url, json=override)
            assert refused.status_code == 403, (role, refused.text)
            assert (await client.get("/gritting/log", params={"from": "2026-02-12", "to": "2026-02-13"})
                    ).status_code == 403
        assert await log_rows(db) == before

        officer = await make_user(db, Role.OPERATOR)
        await db.execute("UPDATE users SET display_name = 'Amy Duty' WHERE user_id = $1", officer.user_id)
        client.headers["Authorization"] = f"Bearer {await open_session(db, officer.user_id)}"
        no_reason = await client.post(url, json={"override": "not_needed"})
        assert no_reason.status_code == 422 and "needs a reason" in no_reason.json()["error"]
        unknown = await client.post(f"/gritting/runs/{run_id}/routes/R2/acknowledge", json={})
        assert unknown.status_code == 422 and "UNKNOWN" in unknown.json()["error"]
        missing = await client.post(f"/gritting/runs/{run_id}/routes/R9/acknowledge", json={})
        assert missing.status_code == 404 and missing.json()["hint"]
        assert await log_rows(db) == before

        done = await client.post(url, json={"override": "not_needed", "reason": "road closed for works"})
        assert done.status_code == 201, done.text
        entry = done.json()
        assert (entry["officer"], entry["user_id"], entry["decision_before"], entry["decision_after"]) == \
            ("Amy Duty", officer.user_id, "send", "not_needed")

        log = await client.get("/gritting/log", params={"from": "2026-02-12", "to": "2026-02-12", "route_id": "R1"})
        assert log.status_code == 200, log.text
        [run] = log.json()["runs"]
        [route] = run["routes"]
        assert (run["run_id"], run["sensors_left_out"], run["warnings"]) == (run_id, 1, 1)
        assert (route["decision"], route["final_decision"]) == ("send", "not_needed")
        assert [e["what"] for e in route["events"]] == ["decided", "overridden"]
        assert route["entries"][0]["reason"] == "road closed for works"
        too_long = await client.get("/gritting/log", params={"from": "2026-01-01", "to": "2026-03-01"})
        assert too_long.status_code == 422 and "at most 31" in too_long.json()["error"]
        bad = await client.get("/gritting/log", params={"from": "yesterday", "to": "2026-03-01"})
        assert bad.status_code == 422 and "not a date" in bad.json()["error"]
    assert await log_rows(db) == before + 1
