"""Damp and mould cases: suggest, open, triage, record each step, close; the householder's
report and their view of their case. The orchestrator (the SQL is cases.store's, the
clocks are rules.cases.clocks').

A case belongs to a home (homes.household_id) and so to the home's landlord. It starts
    suggested  by the sensors (`suggest_from_sensors`): damp high or severe on each of the last
               N days; no clock runs (unless sensor awareness is configured: then its time is
               the awareness an accepted suggestion keeps), an officer triages it: accepted it
               becomes open with a category and the reasoning, dismissed it ends with a reason
    open       by an officer (`open_case`) or a householder's report (`householder_report`:
               significant until an officer triages it; awareness is the report's time)
and is closed with a reason. Every step is one timeline entry (case_events); the steps the
clocks count carry their milestone. Internal notes, vulnerability flags and officers'
reasoning are never in the householder's view (`household_case`), which also starts at
their tenancy: a previous tenant's reports and photos are not theirs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from cases import store
from cases.errors import CaseConflict, CaseNotFound, InvalidCase
from cityops.storage import Database
from cityops.storage.database import Connection
from rules.cases.clocks import Clock, case_clocks, due_in_words, next_clock

if TYPE_CHECKING:
    from cases.photos import StoredPhoto

AwareHow = Literal["sensor", "householder", "officer", "other"]
VULNERABILITIES = ("child_under_5", "over_65", "respiratory_condition", "disability", "pregnancy", "other")
ALT_ACCOMMODATION = ("not_needed", "offered", "accepted", "declined", "in_place", "ended")
DUE_SOON = timedelta(days=2)
SKEW = timedelta(minutes=5)   # a step's time may be this far ahead of the server's clock
UNTRIAGED = "reported by the householder; an officer has not triaged it yet"

# kind -> (what the tenant sees of it, is it visible to the tenant by default)
TENANT_TEXT_KINDS = ("report", "summary_sent")   # the tenant's own words, and the summary sent to them


def _not_found(case_id: int) -> CaseNotFound:
    """Worded the same whether the case is missing or another landlord's."""
    return CaseNotFound(f"no case {case_id}", hint="GET /cases lists the cases you may see")


def _check_time(at: datetime, now: datetime, field: str = "at") -> datetime:
    if at.tzinfo is None:
        raise InvalidCase("give the time with its UTC offset", field=field)
    if at > now + SKEW:
        raise InvalidCase("is in the future", field=field, hint="record a step once it has happened")
    return at.astimezone(UTC)


# --- reading a case -----------------------------------------------------------------------

def clocks_of(case: Mapping[str, Any] | asyncpg.Record, milestones: Mapping[str, datetime], now: datetime,
              due_soon: timedelta = DUE_SOON) -> list[Clock]:
    """The case's clocks; none while it is a suggestion or was dismissed (no clock runs). A
    closed case's clocks stand as they were when it closed (a clock left unmet then is not
    'overdue' for ever after; its `met_at` stays empty)."""
    if case["state"] not in ("open", "closed") or case["category"] is None or case["aware_at"] is None:
        return []
    if case["closed_at"] is not None:
        now = min(now, case["closed_at"])
    return case_clocks(case["category"], {**milestones, "aware": case["aware_at"]}, now, due_soon=due_soon)


def clock_json(clock: Clock, now: datetime) -> dict[str, Any]:
    return {"key": clock.key, "label": clock.label, "starts_from": clock.starts_from,
            "due": clock.due.isoformat() if clock.due else None,
            "due_in_words": due_in_words(clock.due) if clock.due else None,
            "time_left_s": int((clock.due - now).total_seconds()) if clock.due and clock.met_at is None else None,
            "met_at": clock.met_at.isoformat() if clock.met_at else None, "state": clock.state, "source": clock.source}


def _next_step(clocks: Sequence[Clock]) -> dict[str, Any] | None:
    clock = next_clock(clocks)
    if clock is None or clock.due is None:
        return None
    return {"label": clock.label, "due": clock.due.isoformat(), "due_in_words": due_in_words(clock.due),
            "state": clock.state}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _case_json(case: asyncpg.Record) -> dict[str, Any]:
    return {"case_id": case["case_id"], "household_id": case["household_id"], "landlord_id": case["landlord_id"],
            "home_label": case["home_label"], "social_housing": case["social_housing"], "state": case["state"],
            "category": case["category"], "category_reason": case["category_reason"],
            "created_at": _iso(case["created_at"]), "opened_at": _iso(case["opened_at"]),
            "aware_at": _iso(case["aware_at"]), "aware_how": case["aware_how"], "opened_by": case["opened_by"],
            "suggestion": case["suggestion"] if not isinstance(case["suggestion"], str) else
            json.loads(case["suggestion"]),
            "vulnerabilities": list(case["vulnerabilities"]), "vulnerability_note": case["vulnerability_note"],
            "vulnerabilities_by": case["vulnerabilities_by"],
            "alternative_accommodation": {"decision": case["alt_accommodation"],
                                          "at": _iso(case["alt_accommodation_at"]),
                                          "note": case["alt_accommodation_note"]},
            "closed_at": _iso(case["closed_at"]), "closed_by": case["closed_by"],
            "closed_reason": case["closed_reason"]}


def _event_json(event: asyncpg.Record) -> dict[str, Any]:
    details = event["details"]
    if isinstance(details, str):
        details = json.loads(details)
    return {"event_id": event["event_id"], "kind": event["kind"], "at": event["at"].isoformat(),
            "recorded_at": event["recorded_at"].isoformat(), "by": event["by_user"],
            "visible_to_tenant": event["visible_to_tenant"], "milestone": event["milestone"],
            "summary": event["summary"], "details": details}


def _tenant_event_json(event: asyncpg.Record) -> dict[str, Any]:
    """What a tenant sees of an entry: when, what, one line; the text only of their own
    report and of the summary sent to them (never an officer's reasoning or details)."""
    entry = {"at": event["at"].isoformat(), "kind": event["kind"], "summary": event["summary"]}
    if event["kind"] in TENANT_TEXT_KINDS:
        details = event["details"]
        if isinstance(details, str):
            details = json.loads(details)
        entry["text"] = details.get("text", "")
    return entry


async def case_view(db: Database, case_id: int, now: datetime, *, landlord_id: str | None = None,
                    all_landlords: bool = True, due_soon: timedelta = DUE_SOON) -> dict[str, Any]:
    """An officer's view: the case, its clocks, the whole timeline and the photos. A landlord
    officer (`all_landlords=False`) sees only their organisation's cases; any other is missing."""
    case = await store.get_case(db, case_id)
    if case is None or not (all_landlords or (landlord_id is not None and case["landlord_id"] == landlord_id)):
        raise _not_found(case_id)
    milestones = (await store.milestones(db, [case_id]))[case_id]
    clocks = clocks_of(case, milestones, now, due_soon)
    return {**_case_json(case), "clocks": [clock_json(c, now) for c in clocks], "next_step": _next_step(clocks),
            "timeline": [_event_json(e) for e in await store.events(db, case_id)],
            "photos": [{"photo_id": p["photo_id"], "media_type": p["media_type"], "bytes": p["bytes"],
                        "sha256": p["sha256"], "uploaded_by": p["uploaded_by"],
                        "uploaded_at": p["uploaded_at"].isoformat()} for p in await store.photos(db, case_id)]}


async def list_cases(db: Database, now: datetime, *, landlord_id: str | None, all_landlords: bool,
                     state: str | None = None, due_soon: timedelta = DUE_SOON) -> list[dict[str, Any]]:
    """Cases sorted by their nearest running clock (overdue first), then the suggestions, then
    the rest newest first."""
    rows = await store.list_cases(db, landlord_id=landlord_id, all_landlords=all_landlords, state=state)
    milestones = await store.milestones(db, [r["case_id"] for r in rows])
    listed = []
    for row in rows:
        clocks = clocks_of(row, milestones[row["case_id"]], now, due_soon)
        nearest = next_clock(clocks)
        listed.append((nearest.due if nearest and nearest.due else None, row, clocks))
    far = datetime.max.replace(tzinfo=UTC)
    listed.sort(key=lambda item: (item[0] is None, item[0] or far, item[1]["state"] != "suggested",
                                  -item[1]["created_at"].timestamp()))
    return [{**_case_json(row), "next_step": _next_step(clocks),
             "clocks": [clock_json(c, now) for c in clocks]} for _, row, clocks in listed]


# --- landlords and homes ------------------------------------------------------------------

async def landlords(db: Database) -> list[dict[str, Any]]:
    return [dict(r) for r in await store.landlords(db)]


async def add_landlord(db: Database, landlord_id: str, name: str, kind: str, social: bool) -> dict[str, Any]:
    row = await store.insert_landlord(db, landlord_id, name, kind, social)
    if row is None:
        raise CaseConflict(f"landlord {landlord_id!r} exists already", hint="GET /landlords lists them")
    return dict(row)


async def put_home(db: Database, household_id: str, landlord_id: str | None, label: str, social_housing: bool,
                   now: datetime) -> dict[str, Any]:
    if landlord_id is not None and not await store.landlord_exists(db, landlord_id):
        raise InvalidCase(f"no landlord {landlord_id!r}", field="landlord_id", hint="POST /landlords adds one")
    return dict(await store.put_home(db, household_id, landlord_id, label, social_housing, now))


# --- starting a case ----------------------------------------------------------------------

async def suggest_from_sensors(db: Database, now: datetime, *, days: int, sensor_is_awareness: bool = False
                               ) -> list[int]:
    """A suggested case for each home whose damp was high or severe on each of the last `days`
    days and that has none (cases.store.persistently_damp). Idempotent: a home with a suggested
    or open case, or one dismissed or closed within those days, gets none. The new case ids."""
    created = []
    for home in await store.persistently_damp(db, now, days):
        evidence = {"days": days, "latest_level": home["latest_level"], "latest_at": home["latest_at"].isoformat(),
                    "worst_level": home["worst_level"], "through": now.isoformat()}
        async with db.transaction() as conn:
            await store.ensure_home(conn, home["household_id"])
            case_id = await store.insert_case(conn, {
                "household_id": home["household_id"], "state": "suggested", "created_at": now,
                "opened_by": "sensor", "suggestion": json.dumps(evidence),
                "aware_at": now if sensor_is_awareness else None,
                "aware_how": "sensor" if sensor_is_awareness else None})
            if case_id is None:
                continue
            await store.add_event(conn, case_id, "suggested", now, None,
                                  f"The sensors suggest a case: damp {home['worst_level']} on each of the last "
                                  f"{days} days", visible_to_tenant=False, details=evidence,
                                  milestone="aware" if sensor_is_awareness else None)
        created.append(case_id)
    return created


async def _home_for(conn: Connection | Database, household_id: str, landlord_id: str | None, all_landlords: bool
                    ) -> asyncpg.Record:
    home = await store.home(conn, household_id)
    if home is None or not (all_landlords or (landlord_id is not None and home["landlord_id"] == landlord_id)):
        raise CaseNotFound(f"no home {household_id!r}", hint="an admin adds homes with PUT /homes/{household_id}")
    return home


async def open_case(db: Database, household_id: str, by: str, now: datetime, *, category: str, reason: str,
                    aware_at: datetime | None = None, aware_how: AwareHow = "officer", text: str = "",
                    landlord_id: str | None = None, all_landlords: bool = True) -> int:
    """An officer opens a case for a home of theirs; awareness defaults to now."""
    aware = _check_time(aware_at, now, "aware_at") if aware_at is not None else now
    async with db.transaction() as conn:
        await _home_for(conn, household_id, landlord_id, all_landlords)
        active = await store.active_case(conn, household_id)
        if active is not None:
            what = "a suggested case: triage it" if active["state"] == "suggested" else "an open case"
            raise CaseConflict(f"home {household_id} has {what} ({active['case_id']})",
                               hint=f"POST /cases/{active['case_id']}/events records a step on it")
        case_id = await store.insert_case(conn, {
            "household_id": household_id, "state": "open", "category": category, "category_reason": reason,
            "created_at": now, "opened_at": now, "aware_at": aware, "aware_how": aware_how, "opened_by": by})
        if case_id is None:
            raise CaseConflict(f"home {household_id} has a case already", hint="GET /cases lists it")
        await store.add_event(conn, case_id, "opened", aware, by,
                              f"Case opened: a {category} damp and mould hazard", visible_to_tenant=True,
                              milestone="aware", details={"category": category, "reason": reason,
                                                          "aware_how": aware_how, "text": text})
    return case_id


async def triage(db: Database, case_id: int, by: str, now: datetime, *, decision: Literal["accept", "dismiss"],
                 reason: str, category: str | None = None, landlord_id: str | None = None,
                 all_landlords: bool = True, sensor_is_awareness: bool = False) -> None:
    """Accept a suggestion (open, with the category and reasoning; awareness is now, or the
    suggestion's time when sensor alerts count as awareness) or dismiss it with a reason.
    On an open case, `accept` re-categorises it (a householder's report starts significant)."""
    async with db.transaction() as conn:
        case = await store.lock_case(conn, case_id)
        if case is None or not (all_landlords or (landlord_id is not None and case["landlord_id"] == landlord_id)):
            raise _not_found(case_id)
        if decision == "accept" and category is None:
            raise InvalidCase("accepting needs the category: emergency or significant", field="category")
        if case["state"] == "open" and decision == "accept":
            await store.update_case(conn, case_id, {"category": category, "category_reason": reason})
            await store.add_event(conn, case_id, "triage", now, by, f"Classed as a {category} hazard",
                                  visible_to_tenant=True, details={"category": category, "reason": reason,
                                                                   "was": case["category"]})
            return
        if case["state"] != "suggested":
            raise CaseConflict(f"case {case_id} is {case['state']}: only a suggestion is triaged"
                               + (" (an open case is closed with a reason)" if case["state"] == "open" else ""))
        if decision == "dismiss":
            await store.update_case(conn, case_id, {"state": "dismissed", "closed_at": now, "closed_by": by,
                                                    "closed_reason": reason, "aware_at": None, "aware_how": None})
            await store.add_event(conn, case_id, "dismissed", now, by, "Suggestion dismissed",
                                  visible_to_tenant=False, details={"reason": reason})
            return
        aware = case["aware_at"] if sensor_is_awareness and case["aware_at"] is not None else now
        await store.update_case(conn, case_id, {"state": "open", "category": category, "category_reason": reason,
                                                "opened_at": now, "aware_at": aware, "aware_how": "sensor"})
        await store.add_event(conn, case_id, "triage", now, by, f"Case opened from the sensors' suggestion: "
                              f"a {category} damp and mould hazard", visible_to_tenant=True,
                              milestone=None if aware != now else "aware",
                              details={"category": category, "reason": reason, "aware_at": aware.isoformat()})


# --- recording the steps ------------------------------------------------------------------

def _step(kind: str, body: Mapping[str, Any]) -> tuple[str, str | None, bool, dict[str, Any]]:
    """(one-line summary, milestone, visible to the tenant by default, details) of a step."""
    text = body.get("text") or ""
    if kind == "contact":
        return f"Contact with the household ({body['how']})", None, True, dict(body)
    if kind == "investigation":
        return "The home was inspected", "investigated", True, dict(body)
    if kind == "summary_sent":
        return f"A written summary of the findings was sent ({body.get('how', 'letter')})", "summary_sent", True, \
            dict(body)
    if kind == "made_safe":
        return "The home was made safe", "made_safe", True, dict(body)
    if kind == "safety_works":
        done = body["stage"] == "done"
        return ("Safety work finished" if done else "Safety work booked"), \
            ("safety_works_done" if done else None), True, dict(body)
    if kind == "further_works":
        stage = body["stage"]
        words = {"begun": "Work to stop the damp coming back: first steps taken",
                 "started": "Work to stop the damp coming back started on site",
                 "done": "Work to stop the damp coming back finished"}[stage]
        return words, {"begun": "further_works_begun", "started": "further_works_started"}.get(stage), True, \
            dict(body)
    if kind == "alternative_accommodation":
        return f"Alternative accommodation: {str(body['decision']).replace('_', ' ')}", None, True, dict(body)
    if kind == "vulnerability":
        return "Household vulnerability recorded", None, False, dict(body)
    if kind == "note":
        return "Internal note", None, False, {"text": text}
    raise InvalidCase(f"no such step {kind!r}", field="kind")


STEP_KINDS = ("contact", "investigation", "summary_sent", "made_safe", "safety_works", "further_works",
              "alternative_accommodation", "vulnerability", "note")


async def record_step(db: Database, case_id: int, by: str, now: datetime, kind: str, body: Mapping[str, Any], *,
                      landlord_id: str | None = None, all_landlords: bool = True) -> int:
    """One step on a case as a timeline entry (the event id). Steps go on open cases; a
    suggestion takes contacts, notes and vulnerability flags only; a closed case nothing.
    `body["at"]` is when it happened (default now; never in the future)."""
    if kind not in STEP_KINDS:
        raise InvalidCase(f"no such step {kind!r}; one of {', '.join(STEP_KINDS)}", field="kind")
    at = _check_time(body["at"], now) if body.get("at") is not None else now
    summary, milestone, visible, details = _step(kind, body)
    details.pop("at", None)
    details.pop("visible_to_tenant", None)
    if kind in ("note", "vulnerability"):
        visible = False       # internal, whatever the body says
    elif body.get("visible_to_tenant") is not None:
        visible = bool(body["visible_to_tenant"])
    async with db.transaction() as conn:
        case = await store.lock_case(conn, case_id)
        if case is None or not (all_landlords or (landlord_id is not None and case["landlord_id"] == landlord_id)):
            raise _not_found(case_id)
        if case["state"] in ("closed", "dismissed"):
            raise CaseConflict(f"case {case_id} is {case['state']}: nothing more is recorded on it",
                               hint="a new report or POST /cases opens a new case")
        if case["state"] == "suggested" and kind not in ("contact", "note", "vulnerability"):
            raise CaseConflict(f"case {case_id} is a suggestion: triage it before recording {kind}",
                               hint=f"POST /cases/{case_id}/triage")
        if kind == "vulnerability":
            flags = sorted(set(body.get("flags") or ()))
            unknown = [f for f in flags if f not in VULNERABILITIES]
            if unknown:
                raise InvalidCase(f"unknown flag {', '.join(unknown)}; one of {', '.join(VULNERABILITIES)}",
                                  field="flags")
            await store.update_case(conn, case_id, {"vulnerabilities": flags,
                                                    "vulnerability_note": body.get("note") or None,
                                                    "vulnerabilities_by": by})
        if kind == "alternative_accommodation":
            if body["decision"] not in ALT_ACCOMMODATION:
                raise InvalidCase(f"one of {', '.join(ALT_ACCOMMODATION)}", field="decision")
            await store.update_case(conn, case_id, {"alt_accommodation": body["decision"],
                                                    "alt_accommodation_at": at,
                                                    "alt_accommodation_note": body.get("note") or None})
        if kind == "investigation" and body.get("category") and body["category"] != case["category"]:
            await store.update_case(conn, case_id, {"category": body["category"],
                                                    "category_reason": body.get("findings") or case["category_reason"]})
        return await store.add_event(conn, case_id, kind, at, by, summary, visible_to_tenant=visible,
                                     milestone=milestone, details=details)


async def close_case(db: Database, case_id: int, by: str, now: datetime, reason: str, *,
                     landlord_id: str | None = None, all_landlords: bool = True) -> None:
    async with db.transaction() as conn:
        case = await store.lock_case(conn, case_id)
        if case is None or not (all_landlords or (landlord_id is not None and case["landlord_id"] == landlord_id)):
            raise _not_found(case_id)
        if case["state"] != "open":
            raise CaseConflict(f"case {case_id} is {case['state']}: only an open case is closed"
                               + (" (a suggestion is dismissed at triage)" if case["state"] == "suggested" else ""))
        await store.update_case(conn, case_id, {"state": "closed", "closed_at": now, "closed_by": by,
                                                "closed_reason": reason})
        await store.add_event(conn, case_id, "closed", now, by, "Case closed", visible_to_tenant=True,
                              details={"reason": reason})


# --- the householder ----------------------------------------------------------------------

async def add_photos(conn_or_db: Connection | Database, case_id: int, photos: Sequence[StoredPhoto], by: str,
                     now: datetime) -> None:
    """Record stored photos on a case, with one timeline entry for them."""
    if not photos:
        return
    ids = await store.insert_photos(conn_or_db, case_id, photos, by, now)
    await store.add_event(conn_or_db, case_id, "photo", now, by,
                          f"{len(ids)} photo{'s' if len(ids) != 1 else ''} added", visible_to_tenant=True,
                          details={"photo_ids": ids})


async def householder_report(db: Database, household_id: str, user_id: str, text: str,
                             photos: Sequence[StoredPhoto], now: datetime, *, since: datetime | None = None
                             ) -> dict[str, Any]:
    """A householder reports damp or mould: it opens a case for the home (awareness now,
    significant until an officer triages it), or joins the home's case; a sensors' suggestion
    becomes an open case (the report makes the landlord aware). Their view of the case, from
    `since` (the start of their tenancy: an earlier tenant's entries are not theirs)."""
    text = text.strip()
    if not text and not photos:
        raise InvalidCase("say what you see, or add a photo", field="text")
    async with db.transaction() as conn:
        await store.ensure_home(conn, household_id)
        case = await store.active_case(conn, household_id, lock=True)
        if case is None:
            case_id = await store.insert_case(conn, {
                "household_id": household_id, "state": "open", "category": "significant",
                "category_reason": UNTRIAGED, "created_at": now, "opened_at": now, "aware_at": now,
                "aware_how": "householder", "opened_by": user_id})
            if case_id is None:   # another report won the race: the two queue on the unique index
                raise CaseConflict("your home's case was opened a moment ago", hint="send the report again")
            milestone: str | None = "aware"
        else:
            case_id = case["case_id"]
            milestone = None
            if case["state"] == "suggested":
                aware = case["aware_at"] or now
                await store.update_case(conn, case_id, {"state": "open", "category": "significant",
                                                        "category_reason": UNTRIAGED, "opened_at": now,
                                                        "aware_at": aware, "aware_how": case["aware_how"] or
                                                        "householder"})
                milestone = "aware" if case["aware_at"] is None else None
        await store.add_event(conn, case_id, "report", now, user_id, "You reported damp or mould",
                              visible_to_tenant=True, milestone=milestone, details={"text": text})
        await add_photos(conn, case_id, photos, user_id, now)
    view = await household_case(db, household_id, now, since=since)
    assert view is not None
    return view


async def household_case(db: Database, household_id: str, now: datetime, *, since: datetime | None = None,
                         due_soon: timedelta = DUE_SOON) -> dict[str, Any] | None:
    """The home's open (or most recent) case as its householder may see it: never a suggestion
    nor a dismissed one, no internal entry or officer's reasoning, nothing before `since` (their
    tenancy's start); None when there is none."""
    case = await store.latest_case(db, household_id, ("open", "closed"), since=since)
    if case is None:
        return None
    milestones = (await store.milestones(db, [case["case_id"]]))[case["case_id"]]
    clocks = clocks_of(case, milestones, now, due_soon)
    return {"case_id": case["case_id"], "state": case["state"], "category": case["category"],
            "opened_at": _iso(case["opened_at"]), "aware_at": _iso(case["aware_at"]),
            "next_step": _next_step(clocks) if case["state"] == "open" else None,
            "clocks": [{"key": c.key, "label": c.label, "due": _iso(c.due),
                        "due_in_words": due_in_words(c.due) if c.due else None, "met_at": _iso(c.met_at),
                        "state": c.state} for c in clocks],
            "timeline": [_tenant_event_json(e) for e in
                         await store.events(db, case["case_id"], tenant_only=True, since=since)],
            "photos": [{"photo_id": p["photo_id"], "media_type": p["media_type"], "bytes": p["bytes"],
                        "uploaded_at": p["uploaded_at"].isoformat()}
                       for p in await store.photos(db, case["case_id"], since=since)]}
