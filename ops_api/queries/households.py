"""A household's page: its devices, the current reading, the damp risk in plain words, history,
the activity diary and the landlord evidence report (rules.damp does the judging).

Every function takes a HouseholdView (ops_api.queries.scope): staff see the whole history, a
householder only from their tenancy's start (`view.since`). Readings, diary entries and
reports before it are left out; the runner's risk is shown once it rests on the tenancy's
own readings alone (RISK_HISTORY after the start).

The risk is one message (docs/damp.md, "What the householder's page shows"): the level's
headline, one sentence of why (`why`: the first of that level's rules in rules.damp.risk that
the assessment's numbers meet, in plain words) and the advice for the level. No score beside
it: a number on the page is one the sentence names (hours of a week), never a rescaled index."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import asyncpg

from cases import store as case_store
from cases.photos import StoredPhoto
from cityops.storage import Database
from ops_api.errors import InvalidRequest, NotFound
from ops_api.queries.readings import Window, dew_points, series
from ops_api.queries.scope import HouseholdView
from pipelines.damp import store as damp_store
from pipelines.damp.pipeline import diary_analysis, load_evidence
from pipelines.errors import PipelineError
from rules.damp.diary import Activity, DiaryEntry, as_utc_minute
from rules.damp.report import LEVEL_COLOURS, evidence_report
from rules.damp.risk import (
    ASHRAE_RH_LIMIT,
    ASHRAE_T_RANGE_C,
    DAMP_INDOOR_RH,
    LEVELS,
    UNKNOWN,
    WEEK_H,
)
from rules.errors import InvalidDiaryEntry, RulesError

HEADLINES = {   # the level alone: the sentence of why says the rest (`why`)
    "none": "No sign of damp",
    "low": "Low risk of mould",
    "medium": "Medium risk of mould",
    "high": "High risk of mould",
    "severe": "Severe risk: mould is likely",
    "unknown": "Not enough readings yet to judge the risk",
}
ADVICE = {
    "none": ["Keep heating and airing the home as you do now."],
    "low": ["Open a window for a few minutes after showers and cooking.",
            "Dry clothes outside, or in one room with the door shut and a window open a little."],
    "medium": ["Run the extractor fan during and for 20 minutes after a shower, with the door shut.",
               "Put lids on pans and use the cooker hood.",
               "Keep the heating on low (at least 16 °C) rather than off, so walls stay warmer.",
               "Leave a gap between furniture and cold outside walls."],
    "high": ["Do all you can to keep moisture down: extractor fans, lids on pans, no drying clothes indoors.",
             "Keep the heating on low (at least 16 °C) and open windows a little after showers and cooking.",
             "Report the damp to your landlord in writing and keep the evidence report from this page."],
    "severe": ["Report the damp and mould to your landlord in writing now, with the evidence report from this page.",
               "Social landlords in England must investigate within 10 working days (Awaab's Law).",
               "Wipe visible mould with a damp cloth and keep the room aired and heated."],
    "unknown": ["Check the frog box is plugged in and within reach of the Wi-Fi."],
}
DIARY_PAST = timedelta(days=366)
DIARY_FUTURE = timedelta(minutes=10)
RISK_HISTORY = timedelta(days=30)   # the longest window an assessment reads (ASHRAE 160's 30-day means)
ADVICE_LEAD = timedelta(hours=1) + DIARY_FUTURE  # diary_analysis reads the diary from an hour before its start


async def household_devices(db: Database, household_id: str) -> list[str]:
    rows = await db.fetch("SELECT device_id FROM devices WHERE household_id = $1 AND status = 'active' "
                          "ORDER BY device_id", household_id)
    return [r["device_id"] for r in rows]


async def known_household(db: Database, household_id: str) -> bool:
    """A household exists when a device, its damp settings or a user name it."""
    return bool(await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM devices WHERE household_id = $1) "
        "OR EXISTS (SELECT 1 FROM damp_home_settings WHERE household_id = $1) "
        "OR EXISTS (SELECT 1 FROM users WHERE household_id = $1)", household_id))


async def frog_box(db: Database, household_id: str) -> str | None:
    """The household's frog box (the first by id when there are several)."""
    return await damp_store.household_box(db, household_id)


async def current_reading(db: Database, devices: list[str], since: datetime | None = None
                          ) -> dict[str, Any] | None:
    """The newest frog reading among the devices (none before `since`), with its dew point."""
    row = await db.fetchrow(
        "SELECT r.device_id, r.ts, r.air_temp_c, r.rh_pct FROM unnest($1::text[]) AS d(id) CROSS JOIN LATERAL "
        "(SELECT device_id, ts, air_temp_c, rh_pct FROM frog_readings WHERE device_id = d.id "
        "AND ($2::timestamptz IS NULL OR ts >= $2) ORDER BY ts DESC LIMIT 1) r ORDER BY r.ts DESC LIMIT 1",
        devices, since)
    if row is None:
        return None
    [dew] = dew_points([row["air_temp_c"]], [row["rh_pct"]])
    return {"ts": row["ts"].isoformat(), "device_id": row["device_id"],  # real columns: 15.69, not 15.6899995
            "air_temp_c": round(row["air_temp_c"], 2), "rh_pct": round(row["rh_pct"], 1), "dew_point_c": dew}


def _hours(count: int) -> str:
    return f"{count} hour" if count == 1 else f"{count} hours"


def why(level: str, numbers: dict[str, Any], reasons: list[str]) -> str:
    """One plain sentence on why the assessment is at `level`: the first of that level's rules
    (rules.damp.risk.levels, in its order) that its numbers meet. With none met (numbers
    missing), the assessment's own first reason."""
    m = float(numbers.get("mould_index") or 0.0)
    damp = int(numbers.get("damp_hours_7d") or 0)
    wet = int(numbers.get("condensation_hours_7d") or 0)
    usable = int(numbers.get("usable_hours_7d") or 0)
    indoor_rh = numbers.get("indoor_rh_7d")
    rh30, t30 = numbers.get("surface_rh_30d"), numbers.get("surface_t_30d")
    ashrae = (rh30 is not None and t30 is not None and rh30 >= ASHRAE_RH_LIMIT
              and ASHRAE_T_RANGE_C[0] <= t30 <= ASHRAE_T_RANGE_C[1])
    week = "in the last 7 days"
    wet_week = f"Water formed on the coldest wall for {_hours(wet)} {week}."
    damp_week = f"The coldest wall was damp enough for mould to grow for {_hours(damp)} {week}."
    damp_month = "Over the last 30 days the coldest wall has been damp enough for mould on average"
    rules: dict[str, list[tuple[bool, str]]] = {
        "severe": [(m >= 3, "Mould you can see is likely on the coldest wall."),
                   (m >= 1 and wet >= 48, f"Water formed on the coldest wall for {_hours(wet)} {week}, "
                                          "and mould has probably started to grow there.")],
        "high": [(m >= 1, "Mould has probably started to grow on the coldest wall, even if you cannot see it yet."),
                 (wet >= 24, wet_week),
                 (ashrae and damp >= WEEK_H // 2, f"{damp_month}, and for {_hours(damp)} {week}.")],
        "medium": [(m >= 0.5, "The coldest wall has been damp for long enough for mould to start growing."),
                   (damp >= 24, damp_week), (wet > 0, wet_week), (ashrae, f"{damp_month}.")],
        "low": [(damp > 0, damp_week),
                (indoor_rh is not None and indoor_rh >= DAMP_INDOOR_RH,
                 f"The air indoors was humid {week}: {float(indoor_rh or 0):.0f} % on average."),
                (m > 0.01, "The coldest wall was damp enough for mould earlier and has not fully dried out.")],
        "none": [(True, f"The coldest wall stayed too dry for mould to grow {week}.")],
        UNKNOWN: [(usable > 0, f"Your monitor sent good readings for only {_hours(usable)} of the last "
                               f"{WEEK_H} hours."),
                  (True, f"Your monitor sent no good readings {week}.")],
    }
    sentence = next((text for met, text in rules.get(level, []) if met), None)
    return sentence or (reasons[0] if reasons else HEADLINES.get(level, HEADLINES[UNKNOWN]))


def risk_json(row: asyncpg.Record, numbers: dict[str, Any]) -> dict[str, Any]:
    """The risk as the page shows it (headline, why, advice) and, for staff, the assessment's
    mould index, reasons and changes. `numbers`: the assessment's metrics."""
    level = row["level"]
    reasons = _json_list(row["reasons"])
    return {"level": level, "colour": LEVEL_COLOURS.get(level, LEVEL_COLOURS[UNKNOWN]),
            "headline": HEADLINES.get(level, HEADLINES[UNKNOWN]), "why": why(level, numbers, reasons),
            "advice": ADVICE.get(level, ADVICE[UNKNOWN]), "mould_index": round(float(row["mould_index"]), 2),
            "reasons": reasons, "changes": _json_list(row["changes"]), "data_until": row["data_until"].isoformat(),
            "device_id": row["device_id"]}


def _json_list(value: Any) -> list[str]:
    return list(json.loads(value)) if isinstance(value, str) else list(value or [])


def _json_dict(value: Any) -> dict[str, Any]:
    return dict(json.loads(value)) if isinstance(value, str) else dict(value or {})


async def assessment_numbers(db: Database, device_id: str, data_until: datetime) -> dict[str, Any]:
    """One assessment's metrics (rules.damp.risk.describe's numbers), its columns winning."""
    row = await db.fetchrow(
        "SELECT mould_index, damp_hours_7d, condensation_hours_7d, surface_rh_30d, surface_t_30d, metrics "
        "FROM damp_assessments WHERE device_id = $1 AND data_until = $2", device_id, data_until)
    if row is None:
        return {}
    columns = {key: row[key] for key in ("mould_index", "damp_hours_7d", "condensation_hours_7d",
                                         "surface_rh_30d", "surface_t_30d") if row[key] is not None}
    return {**_json_dict(row["metrics"]), **columns}


def _severity(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else -1


async def latest_risk(db: Database, household_id: str, devices: list[str], since: datetime | None = None
                      ) -> dict[str, Any] | None:
    """The worst of the household's boxes' latest assessments (one index probe per box); with
    `since`, only assessments whose windows lie wholly after it."""
    rows = await damp_store.latest_assessments(db, household_id, devices,
                                               since + RISK_HISTORY if since is not None else None)
    if not rows:
        return None
    worst = max(rows, key=lambda r: (_severity(r["level"]), r["mould_index"]))
    return risk_json(worst, await assessment_numbers(db, worst["device_id"], worst["data_until"]))


async def summary(db: Database, view: HouseholdView, now: datetime) -> dict[str, Any]:
    """`now`: the platform's clock (cityops.clock), for the page to judge the reading's age by."""
    household_id, since = view.household_id, view.since
    devices = await household_devices(db, household_id)
    if not devices and not await known_household(db, household_id):
        raise NotFound("no such household")
    return {"household_id": household_id, "now": now.isoformat(), "devices": devices,
            "member_since": since.isoformat() if since is not None else None,
            "current": await current_reading(db, devices, since) if devices else None,
            "risk": await latest_risk(db, household_id, devices, since) if devices else None}


async def history(db: Database, view: HouseholdView, window: Window) -> dict[str, Any]:
    box = await frog_box(db, view.household_id)
    points = await series(db, "frog", box, window, since=view.since) if box else []
    return {"household_id": view.household_id, "device_id": box, "start": view.clip(window.start).isoformat(),
            "end": window.end.isoformat(), "bucket_s": window.bucket_s,
            "points": points}  # ts, readings, air_temp_c, rh_pct, dew_point_c


# --- the diary -----------------------------------------------------------------------------

def diary_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "at": row["ts"].isoformat(), "activity": row["activity"], "minutes": row["minutes"],
            "note": row["note"]}


def check_entry(at: datetime, activity: str, minutes: int | None, now: datetime,
                since: datetime | None = None) -> DiaryEntry:
    """rules.damp's own checks plus the API's: not in the future, not over a year old, not
    before the writer's tenancy began (that period is a previous tenant's)."""
    try:
        entry = DiaryEntry(as_utc_minute(at), cast(Activity, activity), minutes)   # DiaryEntry checks the activity
    except InvalidDiaryEntry as exc:
        raise InvalidRequest(str(exc), hint=exc.hint) from None
    moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    if moment > now + DIARY_FUTURE:
        raise InvalidRequest(f"{moment.isoformat()} is in the future", field="at",
                             hint="log what has happened, with the time it happened")
    if moment < now - DIARY_PAST:
        raise InvalidRequest(f"{moment.isoformat()} is more than a year ago", field="at")
    if since is not None and moment < since:
        raise InvalidRequest(f"{moment.isoformat()} is before your tenancy began ({since.isoformat()})", field="at",
                             hint="log what happened since you joined")
    return entry


async def diary(db: Database, view: HouseholdView, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The entries of the view's tenancy (an entry is a tenant's when it is dated and was written
    within their tenancy: a previous tenant's last entries, dated up to DIARY_FUTURE ahead, are not)."""
    rows = await damp_store.diary_entries(db, view.household_id, start, end, view.since)
    return [diary_json(r) for r in rows]


async def add_diary(db: Database, view: HouseholdView, entry: DiaryEntry, note: str | None,
                    membership_id: int | None) -> dict[str, Any]:
    """Keep an entry, as the writer's membership's (None: staff)."""
    at = datetime.fromisoformat(str(entry.at)).replace(tzinfo=UTC)
    row = await damp_store.add_diary_entry(db, view.household_id, at, entry.activity.value, entry.minutes, note,
                                           membership_id)
    return diary_json(row)


async def delete_diary(db: Database, view: HouseholdView, entry_id: int) -> None:
    if not await damp_store.delete_diary_entry(db, view.household_id, entry_id, view.since):
        raise NotFound(f"no diary entry {entry_id}")


async def diary_advice(db: Database, view: HouseholdView, start: datetime, end: datetime) -> dict[str, Any]:
    """Rises and advice over [start, end); for a tenant, from an hour after their start, so that
    the hour of diary the analysis reads before its start is theirs too."""
    start = view.clip(start) if view.since is None else max(start, view.since + ADVICE_LEAD)
    if start >= end:
        return {"household_id": view.household_id, "start": start.isoformat(), "end": end.isoformat(),
                "spikes": 0, "explained": 0, "advice": []}
    try:
        analysis = await diary_analysis(db, view.household_id, start, end)
    except (RulesError, PipelineError) as exc:
        raise NotFound(str(exc), hint=exc.hint) from None
    explained = sum(1 for s in analysis.spikes if s.explained_by is not None)
    return {"household_id": view.household_id, "start": start.isoformat(), "end": end.isoformat(),
            "spikes": len(analysis.spikes), "explained": explained, "advice": analysis.advice}


async def report_html(db: Database, view: HouseholdView, start: datetime, end: datetime,
                      reported_on: date | None) -> str:
    """The evidence page over [start, end); for a tenant, nothing before their tenancy is read,
    not even as the mould index's warm-up."""
    try:
        evidence = await load_evidence(db, view.household_id, view.clip(start), end, reported_on=reported_on,
                                       not_before=view.since)
    except (RulesError, PipelineError) as exc:
        raise NotFound(str(exc), hint=exc.hint) from None
    return evidence_report(evidence)


# --- the householder's damp and mould case ---------------------------------------------------

async def reports_since(db: Database, household_id: str, since: datetime) -> int:
    """How many reports the household has sent since then (the daily limit counts them)."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM case_events e JOIN damp_cases c USING (case_id) "
        "WHERE c.household_id = $1 AND e.kind = 'report' AND e.at >= $2", household_id, since)
    return count


async def case_photo(db: Database, view: HouseholdView, photo_id: int) -> StoredPhoto:
    """A photo of the household's case that the view may see (from the tenancy's start, as
    household_case lists them); anything else, another home's included, is 404."""
    row = await case_store.photo(db, photo_id)
    case = None if row is None else await case_store.get_case(db, row["case_id"])
    if (row is None or case is None or case["household_id"] != view.household_id
            or view.clip(row["uploaded_at"]) != row["uploaded_at"]):
        raise NotFound(f"no photo {photo_id} in your home's case")
    return StoredPhoto(sha256=row["sha256"], media_type=row["media_type"], bytes=row["bytes"], path=row["path"])
