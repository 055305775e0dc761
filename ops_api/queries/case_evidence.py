"""A case's evidence pack, gathered: the case, its clocks and timeline (cases), the home's
readings and risk history and its diary (pipelines.damp), as a rules.cases.evidence.CasePack.

    landlord_pack     staff and the case's landlord: every entry, internal notes and the
                      officers' record included; another landlord's case is 404 as a missing one
    householder_pack  the householder's own case (open, or the latest): only what the tenant
                      may see (cases.lifecycle's householder view), nothing before their tenancy

The readings run from READINGS_BEFORE before the landlord became aware (the case's creation
for a suggestion) to the closure or now, at most MAX_PERIOD, and for a householder never
before their tenancy's start. A home with no frog box or no complete hour still gets its pack.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from cases import lifecycle
from cases import store as case_store
from cityops.errors import CityOpsError
from cityops.storage import Database
from ops_api.errors import NotFound
from ops_api.queries.scope import HouseholdView
from pipelines.damp import store as damp_store
from pipelines.damp.pipeline import load_evidence
from rules.cases.evidence import Audience, CasePack, DiaryLine, OfficersRecord, TimelineEntry
from rules.damp.report import EvidenceInput

READINGS_BEFORE = timedelta(days=30)
MAX_PERIOD = timedelta(days=366)
NO_READINGS = "No sensor readings could be shown for this period: {reason}"


def _details(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def _officer_text(details: dict[str, Any]) -> str:
    """Every detail of an entry in plain words: 'findings: mould; cause: no fan'."""
    parts = []
    for key, value in details.items():
        if value in (None, "", [], {}):
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(shown if key == "text" else f"{key.replace('_', ' ')}: {shown}")
    return "; ".join(parts)


def _entry(event: asyncpg.Record, audience: Audience) -> TimelineEntry:
    details = _details(event["details"])
    if audience == "landlord":
        return TimelineEntry(event["at"], event["kind"], event["summary"], _officer_text(details),
                             event["by_user"], event["visible_to_tenant"])
    # the tenant's own report and the summary sent to them, never an officer's reasoning
    text = str(details.get("text", "")) if event["kind"] in lifecycle.TENANT_TEXT_KINDS else ""
    return TimelineEntry(event["at"], event["kind"], event["summary"], text)


def _period(case: asyncpg.Record, now: datetime, since: datetime | None) -> tuple[datetime, datetime]:
    end = min(now, case["closed_at"]) if case["closed_at"] is not None else now
    start = max((case["aware_at"] or case["created_at"]) - READINGS_BEFORE, end - MAX_PERIOD)
    if since is not None:
        start = max(start, since)
    return min(start, end), end


async def _readings(db: Database, household_id: str, start: datetime, end: datetime, since: datetime | None
                    ) -> tuple[EvidenceInput | None, tuple[str, ...]]:
    try:
        return await load_evidence(db, household_id, start, end, not_before=since), ()
    except CityOpsError as exc:   # no frog box, no complete hour yet (pipelines' and rules' errors)
        return None, (NO_READINGS.format(reason=str(exc)),)


async def _diary(db: Database, household_id: str, start: datetime, end: datetime, since: datetime | None
                 ) -> tuple[DiaryLine, ...]:
    rows = await damp_store.diary_entries(db, household_id, start, end, since)
    return tuple(DiaryLine(r["ts"], r["activity"], r["minutes"], r["note"]) for r in reversed(rows))


async def _landlord_name(db: Database, landlord_id: str | None) -> str | None:
    if landlord_id is None:
        return None
    name = next((r["name"] for r in await case_store.landlords(db) if r["landlord_id"] == landlord_id), None)
    return f"{name} ({landlord_id})" if name else landlord_id


async def _pack(db: Database, case: asyncpg.Record, now: datetime, due_soon: timedelta, audience: Audience,
                since: datetime | None) -> CasePack:
    case_id, household_id = case["case_id"], case["household_id"]
    milestones = (await case_store.milestones(db, [case_id]))[case_id]
    clocks = lifecycle.clocks_of(case, milestones, now, due_soon)
    events = await case_store.events(db, case_id, tenant_only=audience == "householder", since=since)
    start, end = _period(case, now, since)
    readings, notes = await _readings(db, household_id, start, end, since)
    officers = None
    if audience == "landlord":
        alt = case["alt_accommodation"]
        officers = OfficersRecord(
            category_reason=case["category_reason"], vulnerabilities=tuple(case["vulnerabilities"] or ()),
            vulnerability_note=case["vulnerability_note"],
            alternative_accommodation=(f"{alt.replace('_', ' ')} ({case['alt_accommodation_at']:%d %b %Y})"
                                       + (f": {case['alt_accommodation_note']}" if case["alt_accommodation_note"]
                                          else "")) if alt else None,
            closed_reason=case["closed_reason"])
    return CasePack(
        audience=audience, case_id=case_id, home_label=case["home_label"] or f"Household {household_id}",
        landlord=await _landlord_name(db, case["landlord_id"]), state=case["state"], category=case["category"],
        aware_at=case["aware_at"], closed_at=case["closed_at"], period=(start, end), generated_at=now,
        clocks=tuple(clocks), timeline=tuple(_entry(e, audience) for e in events),
        diary=await _diary(db, household_id, start, end, since), readings=readings, officers=officers, notes=notes)


async def landlord_pack(db: Database, case_id: int, now: datetime, *, due_soon: timedelta,
                        landlord_id: str | None, all_landlords: bool) -> CasePack:
    """The full pack; the scope check (and its 404 wording) is the case view's."""
    await lifecycle.case_view(db, case_id, now, landlord_id=landlord_id, all_landlords=all_landlords)
    case = await case_store.get_case(db, case_id)
    assert case is not None
    return await _pack(db, case, now, due_soon, "landlord", None)


async def householder_pack(db: Database, view: HouseholdView, now: datetime, *, due_soon: timedelta) -> CasePack:
    """The householder's copy of their home's open (or latest) case; 404 when there is none."""
    case = await case_store.latest_case(db, view.household_id, ("open", "closed"), since=view.since)
    if case is None:
        raise NotFound("your home has no damp and mould case",
                       hint="report damp or mould with POST /households/me/reports")
    return await _pack(db, case, now, due_soon, "householder", view.since)
