"""Households against the real PostgreSQL: the householder's own page, history, diary (and its
422s), the evidence report, staff access, and never another household's data; the risk as one
message (a level, one sentence of why, the advice) and the platform's clock (cityops.clock)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI

from cityops.clock import ClockAnchor, platform_now, write_anchor
from cityops.settings import Settings
from cityops.storage import Database
from ops_api.deps import Role
from ops_api.queries.households import ADVICE, HEADLINES, why
from rules.damp.risk import Metrics, levels
from tests.api_helpers import api_client, login_as
from tests.resources_helpers import add_frog_readings


async def home(db: Database, unique: str, level: str = "high", hours: float = 48) -> tuple[str, str]:
    """A household with a frog box, `hours` of readings up to now and one assessment."""
    household, box = f"hh-{unique}", f"{unique}-frog"
    await db.execute("INSERT INTO devices (device_id, kind, household_id) VALUES ($1, 'frog', $2)", box, household)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await add_frog_readings(db, box, now - timedelta(hours=hours), hours)
    await db.execute(
        "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d, "
        "condensation_hours_7d, reasons, changes, faults, metrics) VALUES ($1, $2, $3, $4, 1.2, 40, 3, $5, '[]', "
        "'[]', '{}')", box, now.replace(minute=0), household, level,
        json.dumps(["The coldest wall was damp enough for mould to grow for 40 hours."]))
    return household, box


async def test_a_householder_sees_their_current_reading_risk_and_advice(app: FastAPI, db: Database,
                                                                         unique: str) -> None:
    household, box = await home(db, unique)
    async with api_client(app) as client:
        assert (await client.get("/households/me")).status_code == 401
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        body = (await client.get("/households/me")).json()
        assert body["household_id"] == household and body["devices"] == [box]
        current = body["current"]
        assert current["device_id"] == box and current["dew_point_c"] < current["air_temp_c"]
        assert datetime.fromisoformat(current["ts"]) > datetime.now(UTC) - timedelta(minutes=10)
        # no clock file in the settings: the platform runs on the real UTC time
        assert abs(datetime.fromisoformat(body["now"]) - datetime.now(UTC)) < timedelta(seconds=30)
        risk = body["risk"]
        assert risk["level"] == "high" and risk["colour"] == "#ef6c00" and "score_0_10" not in risk
        assert risk["headline"] == "High risk of mould" and risk["advice"] == ADVICE["high"]
        # mould index 1.2 >= 1: high (docs/damp.md), the first of the high rules it meets
        assert risk["why"] == "Mould has probably started to grow on the coldest wall, even if you cannot see it yet."
        assert risk["mould_index"] == 1.2 and "40 hours" in risk["reasons"][0]   # staff still get the details

        day = (await client.get("/households/me/history", params={"hours": 24})).json()
        assert day["bucket_s"] == 300 and 285 <= len(day["points"]) <= 290
        point = day["points"][-1]
        assert set(point) >= {"ts", "air_temp_c", "rh_pct", "dew_point_c"}
        assert point["dew_point_c"] < point["air_temp_c"]
        week = (await client.get("/households/me/history")).json()
        assert week["bucket_s"] == 1800 and len(week["points"]) <= 100           # 48 h of data in 30-min buckets
        for hours in (0, 400 * 24 + 1):
            too = await client.get("/households/me/history", params={"hours": hours})
            assert too.status_code == 422
        capped = await client.get("/households/me/history", params={"hours": 24, "bucket_s": 60})
        assert capped.status_code == 200 and capped.json()["bucket_s"] == 60


async def test_the_diary_adds_lists_deletes_and_refuses_bad_entries(app: FastAPI, db: Database, unique: str) -> None:
    household, _ = await home(db, unique)
    at = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    async with api_client(app) as client, api_client(app) as neighbour:
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        await login_as(neighbour, db, Role.HOUSEHOLDER)
        made = await client.post("/households/me/diary", json={"at": at.isoformat(), "activity": "shower",
                                                                "minutes": 10, "note": "long one"})
        assert made.status_code == 201, made.text
        entry = made.json()
        assert (entry["activity"], entry["minutes"], entry["note"]) == ("shower", 10, "long one")
        assert datetime.fromisoformat(entry["at"]) == at.replace(second=0)
        assert (await client.get("/households/me/diary")).json() == [entry]
        assert (await neighbour.get("/households/me/diary")).json() == []

        for bad, words in (({"at": at.isoformat(), "activity": "juggling"}, "unknown activity 'juggling'"),
                           ({"at": (at + timedelta(days=2)).isoformat(), "activity": "cooking"}, "in the future"),
                           ({"at": "2020-01-01T00:00:00Z", "activity": "cooking"}, "more than a year ago")):
            refused = await client.post("/households/me/diary", json=bad)
            assert refused.status_code == 422 and words in refused.json()["error"], refused.text
            assert refused.json()["hint"]
        for bad_body in ({"activity": "shower"}, {"at": "yesterday", "activity": "shower"},
                         {"at": at.isoformat(), "activity": "shower", "minutes": 0}):
            assert (await client.post("/households/me/diary", json=bad_body)).status_code == 422
        not_json = await client.post("/households/me/diary", content=b"{oops",
                                     headers={"content-type": "application/json"})
        assert not_json.status_code == 422

        assert (await neighbour.delete(f"/households/me/diary/{entry['id']}")).status_code == 404
        assert (await client.delete(f"/households/me/diary/{entry['id']}")).status_code == 204
        assert (await client.delete(f"/households/me/diary/{entry['id']}")).status_code == 404
        advice = (await client.get("/households/me/diary/advice")).json()
        assert advice["household_id"] == household and isinstance(advice["advice"], list)


async def test_the_evidence_report_is_a_printable_page(app: FastAPI, db: Database, unique: str) -> None:
    household, box = await home(db, unique)
    async with api_client(app) as client:
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        page = await client.get("/households/me/report", params={"days": 2, "reported_on": "2026-01-05"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Damp and mould evidence" in page.text and box in page.text and "<svg" in page.text
        assert "Mon 19 Jan 2026" in page.text                                   # 10 working days after
        await login_as(client, db, Role.HOUSEHOLDER)
        assert (await client.get("/households/me/report")).status_code == 404      # no frog box


async def test_another_household_is_404_crews_403_staff_see_it(app: FastAPI, db: Database, unique: str) -> None:
    household, box = await home(db, unique)
    async with api_client(app) as client:
        await login_as(client, db, Role.HOUSEHOLDER)
        for path in ("", "/history", "/diary", "/diary/advice", "/report"):
            response = await client.get(f"/households/{household}{path}")
            assert response.status_code == 404 and box not in response.text, path
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        assert (await client.get(f"/households/{household}")).json()["devices"] == [box]
        for crew in (Role.GRITTING_CREW, Role.WASTE_CREW):
            await login_as(client, db, crew)
            assert (await client.get(f"/households/{household}")).status_code == 403
            assert (await client.get("/households/me")).status_code == 403
        await login_as(client, db, Role.OPERATOR)
        assert (await client.get("/households/me")).status_code == 403
        staff_view = (await client.get(f"/households/{household}")).json()
        assert staff_view["risk"]["level"] == "high" and staff_view["current"] is not None
        assert len((await client.get(f"/households/{household}/history", params={"hours": 6})).json()["points"]) > 10
        assert (await client.get(f"/households/nobody-{unique}")).status_code == 404
        assert (await client.post("/households/me/diary", json={})).status_code == 403
        await login_as(client, db, Role.ADMIN)
        assert (await client.get("/households/me")).status_code == 404          # an admin has no household


# --- the risk as one message ---------------------------------------------------------------

def _metrics(m: dict[str, Any]) -> Metrics:
    """One home's Metrics (rules.damp.risk) from the numbers an assessment stores."""
    rh30, t30 = m.get("surface_rh_30d"), m.get("surface_t_30d")
    ashrae = rh30 is not None and t30 is not None and rh30 >= 80 and 5 <= t30 <= 40   # ASHRAE 160, docs/damp.md
    one = lambda key, default=0.0: np.array([m.get(key, default)])  # noqa: E731
    return Metrics(usable_hours_7d=one("usable_hours_7d", 168).astype(np.int64),
                   damp_hours_7d=one("damp_hours_7d").astype(np.int64),
                   condensation_hours_7d=one("condensation_hours_7d").astype(np.int64),
                   damp_hours_30d=one("damp_hours_7d").astype(np.int64),
                   condensation_hours_30d=one("condensation_hours_7d").astype(np.int64),
                   surface_rh_30d=np.array([rh30 if rh30 is not None else np.nan]),
                   surface_t_30d=np.array([t30 if t30 is not None else np.nan]),
                   indoor_t_7d=np.array([19.0]), indoor_rh_7d=one("indoor_rh_7d", 50.0),
                   ashrae_exceeded=np.array([ashrae]))


# Each row sits on one threshold of docs/damp.md's table of levels ("first that applies"),
# the same as rules/damp/risk.py's docstring and `levels`; the sentence is the rule's own.
THRESHOLDS = [
    ("severe", {"mould_index": 3.0}, "Mould you can see is likely on the coldest wall."),
    ("severe", {"mould_index": 1.0, "condensation_hours_7d": 48, "damp_hours_7d": 60},
     "Water formed on the coldest wall for 48 hours in the last 7 days, and mould has probably started to "
     "grow there."),
    ("high", {"mould_index": 2.99}, "Mould has probably started to grow on the coldest wall, even if you cannot "
                                     "see it yet."),
    ("high", {"mould_index": 0.99, "condensation_hours_7d": 24, "damp_hours_7d": 24},
     "Water formed on the coldest wall for 24 hours in the last 7 days."),
    ("high", {"damp_hours_7d": 84, "surface_rh_30d": 80.0, "surface_t_30d": 5.0},
     "Over the last 30 days the coldest wall has been damp enough for mould on average, and for 84 hours in "
     "the last 7 days."),
    ("medium", {"mould_index": 0.5}, "The coldest wall has been damp for long enough for mould to start growing."),
    ("medium", {"damp_hours_7d": 24}, "The coldest wall was damp enough for mould to grow for 24 hours in the "
                                      "last 7 days."),
    ("medium", {"condensation_hours_7d": 1, "damp_hours_7d": 1},
     "Water formed on the coldest wall for 1 hour in the last 7 days."),
    ("medium", {"damp_hours_7d": 23, "surface_rh_30d": 80.0, "surface_t_30d": 12.0},
     "Over the last 30 days the coldest wall has been damp enough for mould on average."),
    ("low", {"damp_hours_7d": 23, "mould_index": 0.49},
     "The coldest wall was damp enough for mould to grow for 23 hours in the last 7 days."),
    ("low", {"indoor_rh_7d": 60.0}, "The air indoors was humid in the last 7 days: 60 % on average."),
    ("low", {"mould_index": 0.02}, "The coldest wall was damp enough for mould earlier and has not fully "
                                   "dried out."),
    ("none", {"indoor_rh_7d": 59.9, "mould_index": 0.01, "surface_rh_30d": 79.9, "surface_t_30d": 12.0},
     "The coldest wall stayed too dry for mould to grow in the last 7 days."),
    ("unknown", {"usable_hours_7d": 83, "mould_index": 4.0},
     "Your monitor sent good readings for only 83 hours of the last 168 hours."),
]


@pytest.mark.parametrize(("level", "numbers", "sentence"), THRESHOLDS)
def test_the_sentence_of_why_is_the_rule_that_set_the_level(level: str, numbers: dict[str, Any],
                                                             sentence: str) -> None:
    assert str(levels(_metrics(numbers), np.array([numbers.get("mould_index", 0.0)]))[0]) == level  # the rules agree
    assert why(level, numbers, ["the first reason"]) == sentence


def _hour_counts(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"(\d+) hours?\b", text)]


def test_a_high_level_never_sits_beside_a_low_looking_number_nor_a_low_level_beside_a_high_one() -> None:
    """Every combination around the thresholds of docs/damp.md: the level from rules.damp.risk,
    then the page's message (headline and why). High and severe are set by 24 h or more of
    condensation, 84 h damp with the 30-day limit, or the mould index (then no number is shown):
    any hours they show are at least 24. Low and none need fewer than 24 damp hours, no
    condensation and a mould index under 0.5: any hours they show are under 24. No message
    shows the mould index or a score."""
    grid = [(m, wet, damp, rh30, rh)
            for m in (0.0, 0.02, 0.49, 0.5, 0.99, 1.0, 2.99, 3.0, 4.5)
            for wet in (0, 1, 23, 24, 47, 48, 120)
            for damp in (0, 1, 23, 24, 83, 84, 168)
            for rh30 in (None, 79.9, 80.0)
            for rh in (45.0, 60.0) if wet <= damp]   # condensation (>= 100 %) is damp (>= 80 %) too
    seen = set()
    for m, wet, damp, rh30, rh in grid:
        numbers = {"mould_index": m, "condensation_hours_7d": wet, "damp_hours_7d": damp,
                   "surface_rh_30d": rh30, "surface_t_30d": 12.0, "indoor_rh_7d": rh}
        level = str(levels(_metrics(numbers), np.array([m]))[0])
        message = f"{HEADLINES[level]}. {why(level, numbers, ['FALLBACK'])}"
        seen.add(level)
        assert "FALLBACK" not in message, (level, numbers)            # one of the level's own rules said why
        assert m == 0.0 or str(m) not in message, (level, numbers)   # the mould index is not shown
        assert "score" not in message and " of 10" not in message and " of 6" not in message
        hours = _hour_counts(message)
        if level in ("high", "severe"):
            assert all(h >= 24 for h in hours), (level, numbers, message)
        if level in ("low", "none"):
            assert all(h < 24 for h in hours), (level, numbers, message)
    assert seen == {"none", "low", "medium", "high", "severe"}


# --- the platform's clock --------------------------------------------------------------------

def test_a_clock_file_runs_at_its_rate_and_never_past_the_real_clock(tmp_path: Path) -> None:
    real = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
    town = ClockAnchor(at=real - timedelta(hours=26), real=real, rate=60.0)   # the demo's default speed
    path = tmp_path / "clock.json"
    write_anchor(path, town)
    # a real minute is a simulated hour at 60 s per s (docs/demo.md): 26 h behind, it catches up
    # with the real clock after 26 h / 59 = 26.4 real minutes, then follows it
    assert platform_now(path, real + timedelta(minutes=1)) == real - timedelta(hours=25)
    assert platform_now(path, real + timedelta(minutes=26)) == real            # 26 min later, 26 h on
    assert platform_now(path, real + timedelta(minutes=30)) == real + timedelta(minutes=30)
    write_anchor(path, ClockAnchor(at=real - timedelta(days=3), real=real, rate=0.0))   # standing still
    assert platform_now(path, real + timedelta(hours=5)) == real - timedelta(days=3)
    assert platform_now(None, real) == real                                           # production: real UTC
    path.write_text("{not json")
    assert platform_now(path, real) == real                                           # unreadable: the real clock
    with pytest.raises(ValueError):
        ClockAnchor(at=real.replace(tzinfo=None), real=real)


def test_the_demo_keeps_the_town_clock_where_its_furthest_device_process_is(tmp_path: Path) -> None:
    """democity.stack.Story.town_clock, which `cityops demo` writes to the API's clock file."""
    from democity.fleet import write_json
    from democity.stack import Story, StoryOptions
    from democity.story import Timeline

    timeline = Timeline.ending_before(datetime(2026, 12, 7, 20, 0, tzinfo=UTC))   # live from 18:00 (story.py)
    story = Story("postgresql://unused", "mqtt://unused", tmp_path, timeline, StoryOptions(speed=60.0))
    before = story.town_clock()
    assert (before.at, before.rate) == (timeline.start, 0.0)           # no device has reported: the week's start
    for part in range(story.parts):
        sim_now = timeline.live_from + timedelta(minutes=30 + part)
        write_json(story._progress_path(part), {"sim_now": sim_now.isoformat(), "live": True, "done": False,
                                                "backlog_done": 1.0, "produced": 1, "acked": 1})
    live = story.town_clock()
    # the furthest process (so no reading is later than the town's time), running at --speed
    assert (live.at, live.rate) == (timeline.live_from + timedelta(minutes=30 + story.parts - 1), 60.0)
    for part in range(story.parts):
        write_json(story._progress_path(part), {"sim_now": timeline.live_from.isoformat(), "live": True,
                                                "done": True, "backlog_done": 1.0, "produced": 1, "acked": 1})
    assert story.town_clock().rate == 0.0                              # --until reached: the town's clock stops
    story.write_clock()                                                # what the API reads
    assert platform_now(story.clock_path) == timeline.live_from


async def test_the_household_page_reads_the_platform_clock(db: Database, database_url: str, unique: str,
                                                           tmp_path: Path) -> None:
    """Readings up to 10 minutes before a platform clock three days behind the real one: the
    page's `now`, history window and diary checks all count from the platform's time."""
    from ops_api.app import create_app

    household, box = f"hh-{unique}", f"{unique}-frog"
    town_now = (datetime.now(UTC) - timedelta(days=3)).replace(second=0, microsecond=0)
    await db.execute("INSERT INTO devices (device_id, kind, household_id) VALUES ($1, 'frog', $2)", box, household)
    await add_frog_readings(db, box, town_now - timedelta(hours=6, minutes=5), 6)  # the last at town_now - 10 min
    clock = tmp_path / "clock.json"
    write_anchor(clock, ClockAnchor(at=town_now, real=datetime.now(UTC), rate=0.0))
    settings = Settings(database_url=database_url)  # type: ignore[arg-type]
    app = create_app(settings.model_copy(update={"api": settings.api.model_copy(update={"clock_file": clock})}),
                     db=db)
    async with api_client(app) as client:
        await login_as(client, db, Role.HOUSEHOLDER, household_id=household)
        body = (await client.get("/households/me")).json()
        assert datetime.fromisoformat(body["now"]) == town_now
        assert town_now - datetime.fromisoformat(body["current"]["ts"]) <= timedelta(minutes=10)
        history = (await client.get("/households/me/history", params={"hours": 24})).json()
        end = datetime.fromisoformat(history["end"])   # the window ends at the bucket holding town_now
        assert timedelta(0) <= end - town_now < timedelta(seconds=history["bucket_s"])
        assert len(history["points"]) > 60                                             # 6 h in 5-minute buckets
        an_hour_ahead = {"at": (town_now + timedelta(hours=1)).isoformat(), "activity": "shower"}
        refused = await client.post("/households/me/diary", json=an_hour_ahead)
        assert refused.status_code == 422 and "in the future" in refused.json()["error"]   # of the town's time
        made = await client.post("/households/me/diary", json={"at": town_now.isoformat(), "activity": "shower"})
        assert made.status_code == 201, made.text
        assert [e["id"] for e in (await client.get("/households/me/diary")).json()] == [made.json()["id"]]
