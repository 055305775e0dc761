"""Crew jobs against a database of their own with real gritting and bins runs: assign, start,
complete (idempotent), the feedback the runners honour, who may see what, the job sheet."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from ops_api.deps import Role
from pipelines.bins.pipeline import run_bins
from tests.api_helpers import api_client, login_as, make_user
from tests.resources_helpers import BIN_NOW, FAST_BINS, World


async def test_a_gritting_job_from_assignment_to_treated_route(world_app: FastAPI, world: World) -> None:
    db = world.db
    crew = await make_user(db, Role.GRITTING_CREW)
    async with api_client(world_app) as op, api_client(world_app) as client:
        await login_as(op, db, Role.OPERATOR)
        created = await op.post("/jobs", json={"kind": "gritting", "route_id": "R1", "assigned_to": crew.user_id})
        assert created.status_code == 201, created.text
        job = created.json()
        assert (job["kind"], job["state"], job["route_id"], job["run_id"]) == ("gritting", "assigned", "R1",
                                                                               world.run_id)
        assert job["plan_id"] is not None and job["title"] == "Grit Main Road and Mill Street"
        again = await op.post("/jobs", json={"kind": "gritting", "route_id": "R1", "assigned_to": crew.user_id})
        assert again.status_code == 409 and "already has a job" in again.json()["error"]

        # the crew member (signed in as themselves) sees the job, its map in driving order and steps
        token_user = crew
        from ops_api.accounts.sessions import open_session
        client.headers["Authorization"] = f"Bearer {await open_session(db, token_user.user_id)}"
        mine = (await client.get("/jobs")).json()
        assert [j["job_id"] for j in mine] == [job["job_id"]]
        detail = (await client.get(f"/jobs/{job['job_id']}")).json()
        features = detail["geojson"]["features"]
        seqs = [f["properties"]["seq"] for f in features]
        assert seqs == sorted(seqs) and seqs[0] == 0 and features[0]["geometry"]["type"] == "Point"
        assert any(f["geometry"]["type"] == "LineString" for f in features)
        assert detail["steps"][0]["text"].startswith("Trip 1") and not any(s["done"] for s in detail["steps"])
        sheet = await client.get(f"/jobs/{job['job_id']}/sheet")
        assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/html")
        assert "<svg" in sheet.text and "<script" not in sheet.text and "http" not in sheet.text.replace(
            "http://www.w3.org/2000/svg", "")

        started = await client.post(f"/jobs/{job['job_id']}/start")
        assert started.status_code == 200 and started.json()["state"] == "started"
        done = await client.post(f"/jobs/{job['job_id']}/complete", json={"note": "all salted, icy by the mill"})
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "completed" and done.json()["already_completed"] is False
        twice = await client.post(f"/jobs/{job['job_id']}/complete", json={"note": "double tap"})
        assert twice.status_code == 200 and twice.json()["already_completed"] is True
        assert twice.json()["note"] == "all salted, icy by the mill"
        assert (await client.post(f"/jobs/{job['job_id']}/start")).status_code == 409
        # the history, oldest first, says who did what; completing settles the unmarked sections as done
        completed = (await client.get(f"/jobs/{job['job_id']}")).json()
        assert [(e["what"], e["by"]) for e in completed["events"]] == [
            ("assigned", job["assigned_by"]), ("started", crew.user_id), ("completed", crew.user_id)]
        assert completed["progress"]["done"] == completed["progress"]["total"] == len(completed["steps"]) > 0
        assert completed["crew"] == [] and completed["cancelled_at"] is None

        treatments = await db.fetch("SELECT * FROM gritting_treatments WHERE job_id = $1", job["job_id"])
        assert len(treatments) == 1 and treatments[0]["route_id"] == "R1" and treatments[0]["salt_kg"] > 0
        assert "s1" in treatments[0]["segments"]
        routes = {r["route_id"]: r for r in (await client.get("/gritting/routes")).json()["routes"]}
        assert routes["R1"]["treated_at"] is not None and routes["R1"]["open_job"] is None
        # a finished route can be sent again
        again = await op.post("/jobs", json={"kind": "gritting", "route_id": "R1", "assigned_to": crew.user_id})
        assert again.status_code == 201


async def test_a_bins_job_marks_its_bins_emptied_and_the_runner_honours_it(world_app: FastAPI, world: World) -> None:
    db = world.db
    crew = await make_user(db, Role.WASTE_CREW)
    before = await db.fetchrow("SELECT fill, mandatory FROM bin_priorities WHERE device_id = $1 "
                               "ORDER BY data_until DESC LIMIT 1", world.full_bin)
    assert before["fill"] > 0.9 and before["mandatory"]
    async with api_client(world_app) as op:
        await login_as(op, db, Role.OPERATOR)
        created = await op.post("/jobs", json={"kind": "bins", "plan_id": world.bin_plan_id, "truck": 1,
                                               "assigned_to": crew.user_id})
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["plan_id"] == world.bin_plan_id and job["truck"] == 1 and job["title"].startswith("Empty 1 bins")
        detail = (await op.get(f"/jobs/{job['job_id']}")).json()
        points = [f for f in detail["geojson"]["features"] if f["geometry"]["type"] == "Point"]
        assert [p["properties"]["device_id"] for p in points] == [world.full_bin]
        assert [s["seq"] for s in detail["steps"]] == [0, 1, 2] and world.full_bin in detail["steps"][1]["text"]
        bad = await op.post(f"/jobs/{job['job_id']}/complete", json={"note": "", "skipped": ["not-a-bin"]})
        assert bad.status_code == 422 and "not-a-bin" in bad.json()["error"]
        # staff may complete on a crew member's behalf
        done = await op.post(f"/jobs/{job['job_id']}/complete", json={"note": "done by 07:00"})
        assert done.status_code == 200 and done.json()["state"] == "completed"
        emptied = (await op.get(f"/jobs/{job['job_id']}")).json()["steps"][1]
        assert (emptied["stop"], emptied["status"], emptied["done"]) == (world.full_bin, "done", True)
    collected = await db.fetch("SELECT device_id, collected_at FROM bin_collections WHERE job_id = $1", job["job_id"])
    assert [c["device_id"] for c in collected] == [world.full_bin]

    # the runner, an hour after the recorded collection, sees the bin as just emptied
    at = collected[0]["collected_at"]
    await db.execute("UPDATE bin_collections SET collected_at = $2 WHERE job_id = $1", job["job_id"],
                     BIN_NOW + timedelta(hours=7))
    await run_bins(db, now=BIN_NOW + timedelta(hours=8), settings=FAST_BINS)
    after = await db.fetchrow("SELECT fill, mandatory, reasons FROM bin_priorities WHERE device_id = $1 "
                              "AND data_until = $2", world.full_bin, BIN_NOW + timedelta(hours=8))
    assert after["fill"] < 0.1 and not after["mandatory"], (at, dict(after))


async def test_who_may_do_what_with_jobs(world_app: FastAPI, world: World) -> None:
    db = world.db
    crew, other = await make_user(db, Role.WASTE_CREW), await make_user(db, Role.WASTE_CREW)
    async with api_client(world_app) as client:
        assert (await client.get("/jobs")).status_code == 401
        await login_as(client, db, Role.OPERATOR)
        wrong_role = await client.post("/jobs", json={"kind": "gritting", "route_id": "R2",
                                                      "assigned_to": crew.user_id})
        assert wrong_role.status_code == 422 and "gritting_crew" in wrong_role.json()["error"]
        no_route = await client.post("/jobs", json={"kind": "gritting", "route_id": "nope",
                                                    "assigned_to": (await make_user(db, Role.GRITTING_CREW)).user_id})
        assert no_route.status_code == 422 and "not in the latest gritting run" in no_route.json()["error"]
        no_truck = await client.post("/jobs", json={"kind": "bins", "plan_id": world.bin_plan_id, "truck": 9,
                                                    "assigned_to": crew.user_id})
        assert no_truck.status_code == 422 and "no truck 9" in no_truck.json()["error"]
        missing = await client.post("/jobs", json={"kind": "bins", "assigned_to": crew.user_id})
        assert missing.status_code == 422
        job_id = (await client.post("/jobs", json={"kind": "gritting", "route_id": "R2", "assigned_to": (
            gritter := await make_user(db, Role.GRITTING_CREW)).user_id})).json()["job_id"]
        assert (await client.get("/jobs/999999999")).status_code == 404

        await login_as(client, db, Role.HOUSEHOLDER)
        assert (await client.get("/jobs")).status_code == 403
        assert (await client.get(f"/jobs/{job_id}")).status_code == 403
        await login_as(client, db, Role.WASTE_CREW)                      # a crew member, not the assignee
        assert (await client.get(f"/jobs/{job_id}")).status_code == 404
        assert (await client.post(f"/jobs/{job_id}/complete", json={"note": "x"})).status_code == 404
        assert (await client.post("/jobs", json={"kind": "bins", "plan_id": 1, "truck": 1,
                                                 "assigned_to": other.user_id})).status_code == 403
        assert (await client.get("/jobs")).json() == []
    assert gritter.role is Role.GRITTING_CREW


async def test_an_unknown_route_is_dispatched_only_after_the_duty_officer_decides(world_app: FastAPI,
                                                                                  world: World) -> None:
    """Issue 17 fail-safe: 'unknown' is the duty officer's call. A crew cannot be sent on it until an officer
    overrides it to send (with a reason, in the decision log); then the job goes out, without a plan."""
    db = world.db
    await db.execute("UPDATE jobs SET state = 'completed', completed_at = now() WHERE kind = 'gritting' "
                     "AND state <> 'completed'")                     # earlier tests' jobs: the routes are free
    run_id = await db.fetchval(
        "INSERT INTO gritting_runs (as_of, window_start, window_end, inputs, warnings) "
        "VALUES (now(), now(), now() + interval '12 hours', '{}', '[]') RETURNING run_id")
    await db.execute(
        "INSERT INTO gritting_route_decisions (run_id, route_id, send, decision, reason, treat_segments, salt_kg) "
        "VALUES ($1, 'R1', false, 'unknown', 'UNKNOWN: no usable road temperature', 0, 0), "
        "($1, 'R2', false, 'not_needed', 'no segment needs treatment', 0, 0)", run_id)
    crew = await make_user(db, Role.GRITTING_CREW)
    async with api_client(world_app) as op:
        await login_as(op, db, Role.OPERATOR)
        refused = await op.post("/jobs", json={"kind": "gritting", "route_id": "R1", "assigned_to": crew.user_id})
        assert refused.status_code == 422 and "decided unknown" in refused.json()["error"]
        assert "override" in refused.json()["hint"]
        decided = await op.post(f"/gritting/runs/{run_id}/routes/R1/acknowledge",
                                json={"override": "send", "reason": "patrol found ice on Main Road"})
        assert decided.status_code == 201, decided.text
        sent = await op.post("/jobs", json={"kind": "gritting", "route_id": "R1", "assigned_to": crew.user_id})
        assert sent.status_code == 201, sent.text
        assert sent.json()["run_id"] == run_id and sent.json()["plan_id"] is None
        quiet = await op.post("/jobs", json={"kind": "gritting", "route_id": "R2", "assigned_to": crew.user_id})
        assert quiet.status_code == 422 and "decided not needed" in quiet.json()["error"]
