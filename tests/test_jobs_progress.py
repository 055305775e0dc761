"""Per-stop progress of crew jobs: the pure rules (jobs/progress.py: which mark wins, conflicts,
clamping, who may still mark after a reassignment) and, against a database of its own with
real gritting and bins runs, the marks, cancel and reassign routes of the contract
(docs/api.md, "Jobs"), including what an attacker with a crew account can and cannot do."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from cityops.storage import Database
from democity.seed import PREFIX
from democity.worker import work_a_stop
from jobs import progress
from jobs.errors import InvalidJob
from ops_api.accounts.roles import Role, User
from ops_api.accounts.sessions import open_session
from ops_api.accounts.store import create_user
from tests.api_helpers import api_client, login_as, make_user
from tests.resources_helpers import World

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def mark(mark_id: str, stop: str | None, status: str, minute: int, by: str = "driver", received: int = 0,
         reason: str | None = None, note: str = "") -> progress.Mark:
    return progress.Mark(mark_id, stop, status, reason, note, T0 + timedelta(minutes=minute), by, received)


# --- the pure rules ----------------------------------------------------------------------------

def test_a_future_tap_is_taken_as_the_receipt_time() -> None:
    """Contract: a marked_at in the future of the server's receipt is taken as the receipt time."""
    assert progress.clamp(T0 + timedelta(hours=3), T0) == T0
    assert progress.clamp(T0 - timedelta(minutes=5), T0) == T0 - timedelta(minutes=5)


def test_the_latest_tap_wins_whatever_order_the_marks_arrive_in() -> None:
    """Contract: per stop the latest marked_at wins; a tie goes to the mark received later."""
    late_done = mark("a", "bin-1", "done", 10, received=1)
    early_skip = mark("b", "bin-1", "skipped", 5, by="loader", received=2, reason="blocked")
    state = progress.stop_state("bin-1", [late_done, early_skip])
    assert (state.status, state.winner) == ("done", late_done)
    tie = [mark("c", "bin-2", "done", 7, received=3), mark("d", "bin-2", "pending", 7, received=4)]
    assert progress.stop_state("bin-2", tie).status == "pending"
    assert progress.stop_state("bin-3", [late_done]).status == "pending"     # no marks of its own


def test_a_conflict_is_another_persons_losing_mark_of_another_status() -> None:
    """Contract: the losing mark of a different status by a different person is the conflict."""
    skip = mark("b", "bin-1", "skipped", 5, by="loader", received=2, reason="not_out")
    state = progress.stop_state("bin-1", [mark("a", "bin-1", "done", 10, received=1), skip])
    assert state.conflict == skip
    # the same person changing their mind is no conflict; nor is another's agreeing mark
    mine = progress.stop_state("bin-1", [mark("a", "bin-1", "skipped", 1, reason="other"),
                                         mark("b", "bin-1", "done", 2)])
    agreeing = progress.stop_state("bin-1", [mark("a", "bin-1", "done", 1, by="loader"), mark("b", "bin-1", "done", 2)])
    assert mine.conflict is None and agreeing.conflict is None
    # a loader who skipped, then marked it done themselves, no longer disagrees
    settled = progress.stop_state("bin-1", [mark("a", "bin-1", "skipped", 1, by="loader", reason="blocked"),
                                            mark("b", "bin-1", "done", 2, by="loader"),
                                            mark("c", "bin-1", "done", 3)])
    assert settled.conflict is None


def test_progress_counts_and_a_completed_jobs_unmarked_stops() -> None:
    """Hand count: 4 stops, one done, one skipped, one conflicting, one untouched."""
    marks = [mark("a", "b1", "done", 1), mark("b", "b2", "skipped", 2, reason="blocked"),
             mark("c", "b3", "done", 3), mark("d", "b3", "skipped", 1, by="loader", reason="damaged"),
             mark("e", None, "note", 4, note="gate locked at the school")]
    states = progress.stop_states(["b1", "b2", "b3", "b4"], marks)
    assert progress.tally(states) == {"total": 4, "done": 2, "skipped": 1, "pending": 1, "conflicts": 1}
    assert progress.skipped_stops(states) == ["b2"]
    # completing empties the unmarked bins except those the completion itself skipped
    settled = progress.settle(states, completed=True, skipped=["b4"])
    assert progress.tally(settled) == {"total": 4, "done": 2, "skipped": 2, "pending": 0, "conflicts": 1}
    assert progress.settle(states, completed=False) == states


def test_outcomes_of_a_batch() -> None:
    """Contract: duplicate (sent before), superseded (stored but a later mark wins), stored."""
    marks = [mark("a", "b1", "done", 5), mark("b", "b1", "skipped", 1, reason="blocked")]
    states = progress.stop_states(["b1"], marks)
    assert progress.outcome("a", "b1", "done", True, states) == "stored"
    assert progress.outcome("b", "b1", "skipped", True, states) == "superseded"
    assert progress.outcome("a", "b1", "done", False, states) == "duplicate"
    assert progress.outcome("n", "b1", "note", True, states) == "stored"


def test_a_mark_the_job_cannot_take_names_its_field() -> None:
    """Contract: 422 naming the field for an unknown stop, a skip with no reason, a bad time."""
    created = T0 - timedelta(hours=2)

    def check(stop: str | None = "b1", status: str = "done", reason: str | None = None, note: str = "",
              at: datetime = T0) -> datetime:
        return progress.check_mark(3, stop, status, reason, note, at, ["b1"], created)

    for kwargs, field in (({"stop": "b9"}, "marks.3.stop"), ({"stop": None}, "marks.3.stop"),
                          ({"status": "skipped"}, "marks.3.reason"), ({"status": "note"}, "marks.3.note"),
                          ({"at": T0.replace(tzinfo=None)}, "marks.3.marked_at"),
                          ({"at": created - timedelta(hours=2)}, "marks.3.marked_at")):
        with pytest.raises(InvalidJob) as refused:
            check(**kwargs)
        assert refused.value.field == field
    east = T0.astimezone(timezone(timedelta(hours=2)))
    assert check(at=east) == T0 and check(stop=None, status="note", note="ok").tzinfo is UTC


def test_a_previous_assignee_marks_only_what_they_did_before_the_change() -> None:
    """Contract: a previous assignee's marks made before the reassignment are accepted, later ones not."""
    reassigned = T0 + timedelta(hours=1)
    timeline = [(T0, frozenset({"ann", "bob"})), (reassigned, frozenset({"cat"}))]
    current = timeline[-1][1]
    assert progress.may_mark("ann", reassigned - timedelta(seconds=1), current, timeline)
    assert not progress.may_mark("ann", reassigned, current, timeline)
    assert progress.may_mark("cat", T0, current, timeline)         # the new assignee, offline before: fine
    assert not progress.may_mark("eve", T0, current, timeline)
    assert progress.was_member("bob", timeline) and not progress.was_member("eve", timeline)


@given(st.permutations(range(6)))
def test_the_order_of_receipt_never_changes_the_winner_of_distinct_taps(order: list[int]) -> None:
    """Property: with distinct marked_at, receipt order does not matter (an offline queue's replay)."""
    taps = [mark(f"m{i}", "b1", ("done", "skipped", "pending")[i % 3], i, by=f"p{i % 2}", received=r,
                 reason="other") for r, i in enumerate(order)]
    assert progress.stop_state("b1", taps).winner.mark_id == "m5"  # type: ignore[union-attr]


# --- through the API, on a database of real runs -------------------------------------------------

BINS = ("bin-full", "bin-quiet", "bin-corner")   # resources_helpers' two bins and one more
MILL_LANE = ["Head north on Main Road", "Turn left onto Mill Lane"]   # the second stop's way there


async def three_bin_round(db: Database) -> int:
    """A collection plan of its own whose truck 1 empties three bins (the runs' plans have one)."""
    plan_id: int = await db.fetchval(
        "INSERT INTO bin_plans (depot_id, shift_start, feasible, distance_m, solve_s, skipped, missed, notes, geojson) "
        "VALUES ('bdep', now(), true, 5000, 0.1, '[]', '[]', '[]', '[]') RETURNING plan_id")
    await db.execute(
        "INSERT INTO bin_plan_stops (plan_id, truck, seq, device_id, arrive, depart, load_after_l) "
        "SELECT $1, 1, i, d, now() + i * interval '10 minutes', now() + i * interval '12 minutes', 100 * i "
        "FROM unnest($2::text[]) WITH ORDINALITY AS u (d, i)", plan_id, list(BINS))
    await db.execute("UPDATE bin_plan_stops SET street = 'Mill Lane', directions = $2 WHERE plan_id = $1 AND seq = 2",
                     plan_id, json.dumps(MILL_LANE))
    return plan_id


def batch(*marks: dict[str, Any]) -> dict[str, Any]:
    return {"marks": [{"mark_id": str(uuid.uuid4()), "note": "", "reason": None, **m} for m in marks]}


def tap(stop: str | None, status: str, at: datetime, **more: Any) -> dict[str, Any]:
    return {"stop": stop, "status": status, "marked_at": at.isoformat(), **more}


async def as_user(client: httpx.AsyncClient, db: Database, user: User) -> httpx.AsyncClient:
    client.headers["Authorization"] = f"Bearer {await open_session(db, user.user_id)}"
    return client


async def test_a_crew_marks_stops_and_the_latest_tap_wins(world_app: FastAPI, world: World) -> None:
    db = world.db
    driver, loader = await make_user(db, Role.WASTE_CREW), await make_user(db, Role.WASTE_CREW)
    plan_id = await three_bin_round(db)
    async with api_client(world_app) as op, api_client(world_app) as d, api_client(world_app) as ld:
        await login_as(op, db, Role.OPERATOR)
        created = await op.post("/jobs", json={"kind": "bins", "plan_id": plan_id, "truck": 1,
                                               "assigned_to": driver.user_id, "crew": [loader.user_id]})
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["crew"] == [loader.user_id] and job["cancelled_at"] is None
        assert job["progress"] == {"total": 3, "done": 0, "skipped": 0, "pending": 3, "conflicts": 0}
        url = f"/jobs/{job['job_id']}"
        await as_user(d, db, driver)
        await as_user(ld, db, loader)
        assert [j["job_id"] for j in (await ld.get("/jobs")).json()] == [job["job_id"]]   # the crew sees it

        detail = (await ld.get(url)).json()
        markable = [s for s in detail["steps"] if "stop" in s]
        assert [s["stop"] for s in markable] == list(BINS)
        assert "stop" not in detail["steps"][0] and "stop" not in detail["steps"][-1]   # the depot legs
        assert all(s["status"] == "pending" for s in markable)
        assert [(s["street"], s["directions"]) for s in markable] == [(None, []), ("Mill Lane", MILL_LANE),
                                                                      (None, [])]
        assert markable[1]["text"].startswith("Empty bin bin-quiet on Mill Lane")
        assert [e["what"] for e in detail["events"]] == ["assigned"]

        now = datetime.now(UTC)
        first = batch(tap("bin-full", "done", now - timedelta(minutes=10)),
                      tap("bin-quiet", "skipped", now - timedelta(minutes=9), reason="blocked", note="van in the way"),
                      tap(None, "note", now - timedelta(minutes=8), note="gate code changed"))
        sent = await d.post(f"{url}/marks", json=first)
        assert sent.status_code == 200, sent.text
        assert [r["outcome"] for r in sent.json()["results"]] == ["stored"] * 3
        assert sent.json()["job"]["progress"] == {"total": 3, "done": 1, "skipped": 1, "pending": 1, "conflicts": 0}

        # the loader's phone was offline: an earlier tap, of another status, arrives later and loses
        late = await ld.post(f"{url}/marks", json=batch(tap("bin-full", "skipped", now - timedelta(minutes=12),
                                                            reason="not_out", marked_by=driver.user_id)))
        assert [r["outcome"] for r in late.json()["results"]] == ["superseded"]
        step = next(s for s in late.json()["job"]["steps"] if s.get("stop") == "bin-full")
        assert (step["status"], step["done"], step["marked_by"]) == ("done", True, driver.user_id)
        assert step["conflict"] == {"by": loader.user_id, "status": "skipped", "reason": "not_out",
                                    "marked_at": (now - timedelta(minutes=12)).isoformat()}
        assert late.json()["job"]["progress"]["conflicts"] == 1
        quiet = next(s for s in late.json()["job"]["steps"] if s.get("stop") == "bin-quiet")
        assert (quiet["status"], quiet["reason"], quiet["note"]) == ("skipped", "blocked", "van in the way")
        assert late.json()["job"]["notes"][-1]["note"] == "gate code changed"
        # marked_by is the session's user, whatever the body says
        assert await db.fetchval("SELECT marked_by FROM job_marks WHERE mark_id = $1",
                                 uuid.UUID(late.json()["results"][0]["mark_id"])) == loader.user_id

        # a replayed batch stores nothing new
        before = await db.fetchval("SELECT count(*) FROM job_marks WHERE job_id = $1", job["job_id"])
        again = await d.post(f"{url}/marks", json=first)
        assert [r["outcome"] for r in again.json()["results"]] == ["duplicate"] * 3
        assert await db.fetchval("SELECT count(*) FROM job_marks WHERE job_id = $1", job["job_id"]) == before == 4

        # a tap from a phone whose clock runs ahead is taken at the receipt
        ahead = await ld.post(f"{url}/marks", json=batch(tap("bin-corner", "done", now + timedelta(days=1))))
        corner = next(s for s in ahead.json()["job"]["steps"] if s.get("stop") == "bin-corner")
        assert now <= datetime.fromisoformat(corner["marked_at"]) <= datetime.now(UTC)

        # completing skips the bins whose winning mark is a skip, and empties the rest
        done = await d.post(f"{url}/complete", json={"note": "round done"})
        assert done.status_code == 200 and done.json()["skipped"] == ["bin-quiet"]
        emptied = await db.fetch("SELECT device_id FROM bin_collections WHERE job_id = $1 ORDER BY device_id",
                                 job["job_id"])
        assert [r["device_id"] for r in emptied] == ["bin-corner", "bin-full"]
        assert [e["what"] for e in (await d.get(url)).json()["events"]] == ["assigned", "completed"]


async def test_a_gritting_plans_steps_are_its_sections(world_app: FastAPI, world: World) -> None:
    db = world.db
    crew = await make_user(db, Role.GRITTING_CREW)
    steps = await db.fetchval("SELECT jsonb_array_length(instructions) FROM gritting_plans WHERE run_id = $1 "
                              "AND route_id = 'R1'", world.run_id)
    async with api_client(world_app) as op, api_client(world_app) as client:
        await login_as(op, db, Role.OPERATOR)
        created = await op.post("/jobs", json={"kind": "gritting", "route_id": "R1", "assigned_to": crew.user_id})
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        await as_user(client, db, crew)
        detail = (await client.get(f"/jobs/{job_id}")).json()
        assert [s["stop"] for s in detail["steps"]] == [f"step-{i}" for i in range(1, steps + 1)]
        sent = await client.post(f"/jobs/{job_id}/marks", json=batch(tap("step-1", "done", datetime.now(UTC))))
        assert sent.json()["job"]["progress"] == {"total": steps, "done": 1, "skipped": 0, "pending": steps - 1,
                                                  "conflicts": 0}
        # cancelled: the route is free again, and a crew's late marks are refused saying who and why
        assert (await client.post(f"/jobs/{job_id}/cancel", json={"reason": "rain washed it"})).status_code == 403
        cancelled = await op.post(f"/jobs/{job_id}/cancel", json={"reason": "rain washed the salt plan"})
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert cancelled.json()["cancel_reason"] == "rain washed the salt plan"
        refused = await client.post(f"/jobs/{job_id}/marks", json=batch(tap("step-2", "done", datetime.now(UTC))))
        assert refused.status_code == 409 and "rain washed the salt plan" in refused.json()["error"]
        assert (await client.post(f"/jobs/{job_id}/start")).status_code == 409
        assert (await op.post(f"/jobs/{job_id}/cancel", json={"reason": "twice"})).status_code == 409
        assert (await op.post(f"/jobs/{job_id}/reassign", json={"assigned_to": crew.user_id,
                                                                "reason": "late"})).status_code == 409
        again = await op.post("/jobs", json={"kind": "gritting", "route_id": "R1", "assigned_to": crew.user_id})
        assert again.status_code == 201, again.text
        assert job_id in [j["job_id"] for j in (await op.get("/jobs", params={"state": "cancelled"})).json()]
        assert [e["what"] for e in (await op.get(f"/jobs/{job_id}")).json()["events"]] == ["assigned", "cancelled"]
        await op.post(f"/jobs/{again.json()['job_id']}/complete", json={"note": ""})
        done = await op.post(f"/jobs/{again.json()['job_id']}/cancel", json={"reason": "too late"})
        assert done.status_code == 409 and "completed" in done.json()["error"]


async def test_what_a_crew_account_cannot_do(world_app: FastAPI, world: World) -> None:
    db = world.db
    driver, other, gritter = (await make_user(db, Role.WASTE_CREW), await make_user(db, Role.WASTE_CREW),
                              await make_user(db, Role.GRITTING_CREW))
    plan_id = await three_bin_round(db)
    async with api_client(world_app) as op, api_client(world_app) as d, api_client(world_app) as o:
        await login_as(op, db, Role.OPERATOR)
        wrong_crew = await op.post("/jobs", json={"kind": "bins", "plan_id": plan_id, "truck": 1,
                                                  "assigned_to": driver.user_id, "crew": [gritter.user_id]})
        assert wrong_crew.status_code == 422 and wrong_crew.json()["error"].startswith("crew:")
        job = (await op.post("/jobs", json={"kind": "bins", "plan_id": plan_id, "truck": 1,
                                            "assigned_to": driver.user_id})).json()
        url = f"/jobs/{job['job_id']}"
        await as_user(d, db, driver)
        await as_user(o, db, other)
        now = datetime.now(UTC)

        # another crew's job: 404 as if it did not exist, and nothing stored
        assert (await o.post(f"{url}/marks", json=batch(tap("bin-full", "done", now)))).status_code == 404
        assert (await o.post("/jobs/987654321/marks", json=batch(tap("bin-full", "done", now)))).status_code == 404
        # stops not on the job, a skip with no reason, bad times: 422 naming the field, nothing stored
        for body, field in ((batch(tap("bin-elsewhere", "done", now)), "marks.0.stop"),
                            (batch(tap("bin-full", "done", now), tap("bin-full", "skipped", now)), "marks.1.reason"),
                            (batch(tap("bin-full", "done", now - timedelta(days=3))), "marks.0.marked_at")):
            bad = await d.post(f"{url}/marks", json=body)
            assert bad.status_code == 422 and bad.json()["error"].startswith(field), bad.text
        naive = await d.post(f"{url}/marks", json=batch({"stop": "bin-full", "status": "done",
                                                         "marked_at": "2026-12-07T08:00:00"}))
        assert naive.status_code == 422 and "marked_at" in naive.text
        assert await db.fetchval("SELECT count(*) FROM job_marks WHERE job_id = $1", job["job_id"]) == 0
        # crews cannot cancel or reassign
        for path, body in (("cancel", {"reason": "not mine"}),
                           ("reassign", {"assigned_to": other.user_id, "reason": "swap"})):
            assert (await d.post(f"{url}/{path}", json=body)).status_code == 403

        # work done offline before a reassignment counts; after it, the old assignee is out
        before = datetime.now(UTC)
        wrong_role = await op.post(f"{url}/reassign", json={"assigned_to": gritter.user_id, "reason": "cover"})
        assert wrong_role.status_code == 422 and wrong_role.json()["error"].startswith("assigned_to:")
        wrong_crew = await op.post(f"{url}/reassign", json={"assigned_to": other.user_id, "reason": "cover",
                                                             "crew": [gritter.user_id]})
        assert wrong_crew.status_code == 422 and "a bins job goes to a waste_crew" in wrong_crew.json()["error"]
        assert wrong_crew.json()["error"].startswith("crew:")
        moved = await op.post(f"{url}/reassign", json={"assigned_to": other.user_id, "reason": "driver off sick"})
        assert moved.status_code == 200 and moved.json()["assigned_to"] == other.user_id
        offline = await d.post(f"{url}/marks", json=batch(tap("bin-full", "done", before - timedelta(minutes=1))))
        assert offline.status_code == 200 and offline.json()["results"][0]["outcome"] == "stored"
        later = await d.post(f"{url}/marks", json=batch(tap("bin-quiet", "done", datetime.now(UTC))))
        assert later.status_code == 404
        assert (await d.get(url)).status_code == 404 and (await d.get("/jobs")).json() == []
        assert [j["job_id"] for j in (await o.get("/jobs")).json()] == [job["job_id"]]
        events = (await o.get(url)).json()["events"]
        assert events[-1] | {"at": None} == {"at": None, "by": (await _operator_of(db, job["job_id"])),
                                             "what": "reassigned", "reason": "driver off sick",
                                             "from": driver.user_id, "to": other.user_id}
    assert await db.fetchval("SELECT count(*) FROM job_marks WHERE job_id = $1", job["job_id"]) == 1


async def _operator_of(db: Database, job_id: int) -> str:
    by: str = await db.fetchval("SELECT assigned_by FROM jobs WHERE job_id = $1", job_id)
    return by


async def test_a_batch_sent_twice_at_once_is_stored_once(world_app: FastAPI, world: World) -> None:
    """A phone that retries while the first send is still in flight: marks sent = marks stored."""
    db = world.db
    driver = await make_user(db, Role.WASTE_CREW)
    plan_id = await three_bin_round(db)
    async with api_client(world_app) as op, api_client(world_app) as d:
        await login_as(op, db, Role.OPERATOR)
        job_id = (await op.post("/jobs", json={"kind": "bins", "plan_id": plan_id, "truck": 1,
                                               "assigned_to": driver.user_id})).json()["job_id"]
        await as_user(d, db, driver)
        now = datetime.now(UTC)
        body = batch(*(tap(BINS[i % 3], ("done", "pending")[i % 2], now - timedelta(seconds=i)) for i in range(60)),
                     *(tap(None, "note", now, note=f"note {i}") for i in range(40)))
        one, two = await asyncio.gather(d.post(f"/jobs/{job_id}/marks", json=body),
                                        d.post(f"/jobs/{job_id}/marks", json=body))
        assert one.status_code == two.status_code == 200, (one.text, two.text)
        outcomes = [[r["outcome"] for r in answer.json()["results"]] for answer in (one, two)]
        assert sorted(o.count("duplicate") for o in outcomes) == [0, 100]
    assert await db.fetchval("SELECT count(*) FROM job_marks WHERE job_id = $1", job_id) == 100


async def test_the_demo_waste_crew_works_its_round_a_bin_at_a_time(world_app: FastAPI, world: World) -> None:
    """The demo's crew (democity/worker.py) marks its round's bins in driving order, once each."""
    db = world.db
    waste = await create_user(db, username=f"{PREFIX}waste", password=None, role=Role.WASTE_CREW)
    plan_id = await three_bin_round(db)
    async with api_client(world_app) as op:
        await login_as(op, db, Role.OPERATOR)
        job_id = (await op.post("/jobs", json={"kind": "bins", "plan_id": plan_id, "truck": 1,
                                               "assigned_to": waste.user_id})).json()["job_id"]
        assert [await work_a_stop(db) for _ in range(4)] == [*BINS, None]
        job = (await op.get(f"/jobs/{job_id}")).json()
    assert job["state"] == "started" and job["progress"]["done"] == 3
    assert await db.fetchval("SELECT count(*) FROM job_marks WHERE job_id = $1", job_id) == 3
