"""A household: the current reading, damp risk and advice, history, the diary, the evidence report.

    GET    /households/me                     householder: their own household, with `now`, the
                                              time the platform runs on (cityops.clock)
    GET    /households/me/history?hours=168   indoor temperature, humidity, dew point in buckets
    GET    /households/me/diary?days=30       diary entries, newest first
    POST   /households/me/diary               {at, activity, minutes?, note?}; 422 says what is wrong
    DELETE /households/me/diary/{entry_id}
    GET    /households/me/diary/advice?days=7 humidity rises, what explains them, advice
    GET    /households/me/report?days=30      the landlord evidence page (HTML)
    GET    /households/{household_id}[/history|/diary|/diary/advice|/report]
                                              staff (and the householder for their own id);
                                              another household's id is 404, crews 403
    GET    /households/{household_id}/tenancies   staff: who was a member, from when to when

A householder's tenancy is looked up on every request: with none open they see nothing
(404), and with one they see only what lies after its start (ops_api.queries.scope).
"Now" is the platform's clock (cityops.clock: the real UTC time in production, the town's
in the demo), for the windows, the diary's checks and the page's "last reported".
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from cityops.clock import platform_now
from cityops.storage import Database
from ops_api.accounts import tenancies
from ops_api.accounts.roles import Role
from ops_api.deps import DB, AppSettings, CurrentUser, Staff, User, allow
from ops_api.queries import households as q
from ops_api.queries.readings import plan_window
from ops_api.queries.scope import HouseholdView, household_for, own_household

router = APIRouter(prefix="/households", tags=["households"])
Householder = Annotated[User, Depends(allow(Role.HOUSEHOLDER))]
Hours = Annotated[int, Query(ge=1, le=400 * 24, description="hours back from now (at most 400 days)")]
Days = Annotated[int, Query(ge=1, le=400, description="days back from now")]


class DiaryIn(BaseModel):
    at: datetime = Field(description="when it happened (ISO 8601; naive is UTC)")
    activity: str = Field(max_length=40, description="shower, cooking, drying_clothes, windows_opened, "
                                                     "heating_on or heating_off")
    minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    note: str | None = Field(default=None, max_length=500)


async def platform_clock(settings: AppSettings) -> datetime:
    """This request's "now": the real UTC time, or the clock file's when one is set (cityops.clock)."""
    return platform_now(settings.api.clock_file)


Now = Annotated[datetime, Depends(platform_clock)]


def _since(now: datetime, days: int) -> tuple[datetime, datetime]:
    return now - timedelta(days=days), now + q.DIARY_FUTURE


async def _mine(db: Database, user: User) -> HouseholdView:
    return own_household(user, await tenancies.current(db, user))


async def _theirs(db: Database, user: User, household_id: str) -> HouseholdView:
    return household_for(user, household_id, await tenancies.current(db, user))


async def _history(db: Database, view: HouseholdView, now: datetime, hours: int, bucket_s: int | None
                   ) -> dict[str, Any]:
    window = plan_window(now - timedelta(hours=hours), now, bucket_s, now=now)
    return await q.history(db, view, window)


async def _report(db: Database, view: HouseholdView, end: datetime, days: int, reported_on: date | None
                  ) -> HTMLResponse:
    return HTMLResponse(await q.report_html(db, view, end - timedelta(days=days), end, reported_on))


# --- the householder's own ------------------------------------------------------------------

@router.get("/me", summary="Your household: devices, current reading with dew point, damp risk and advice")
async def my_household(db: DB, user: Householder, now: Now) -> dict[str, Any]:
    return await q.summary(db, await _mine(db, user), now)


@router.get("/me/history", summary="Your indoor readings in time buckets")
async def my_history(db: DB, user: Householder, now: Now, hours: Hours = 168,
                     bucket_s: Annotated[int | None, Query(ge=60, le=7 * 86_400)] = None) -> dict[str, Any]:
    return await _history(db, await _mine(db, user), now, hours, bucket_s)


@router.get("/me/diary", summary="Your diary entries, newest first")
async def my_diary(db: DB, user: Householder, now: Now, days: Days = 30) -> list[dict[str, Any]]:
    return await q.diary(db, await _mine(db, user), *_since(now, days))


@router.post("/me/diary", status_code=201, summary="Add a diary entry")
async def add_diary_entry(entry: DiaryIn, db: DB, user: Householder, now: Now) -> dict[str, Any]:
    tenancy = await tenancies.current(db, user)
    view = own_household(user, tenancy)
    checked = q.check_entry(entry.at, entry.activity, entry.minutes, now, view.since)
    return await q.add_diary(db, view, checked, entry.note, tenancy.membership_id if tenancy else None)


@router.delete("/me/diary/{entry_id}", status_code=204, summary="Delete one of your diary entries")
async def delete_diary_entry(entry_id: int, db: DB, user: Householder) -> Response:
    await q.delete_diary(db, await _mine(db, user), entry_id)
    return Response(status_code=204)


@router.get("/me/diary/advice", summary="Humidity rises, what explains them, and advice")
async def my_diary_advice(db: DB, user: Householder, now: Now, days: Annotated[int, Query(ge=1, le=31)] = 7
                          ) -> dict[str, Any]:
    return await q.diary_advice(db, await _mine(db, user), *_since(now, days))


@router.get("/me/report", response_class=HTMLResponse, summary="Your damp evidence report for a landlord (HTML)")
async def my_report(db: DB, user: Householder, now: Now, days: Annotated[int, Query(ge=1, le=366)] = 30,
                    reported_on: date | None = None) -> HTMLResponse:
    return await _report(db, await _mine(db, user), now, days, reported_on)


# --- any household, for staff --------------------------------------------------------------

@router.get("/{household_id}", summary="A household (staff; a householder only their own)")
async def household(household_id: str, db: DB, user: CurrentUser, now: Now) -> dict[str, Any]:
    return await q.summary(db, await _theirs(db, user, household_id), now)


@router.get("/{household_id}/history", summary="A household's indoor readings in time buckets")
async def household_history(household_id: str, db: DB, user: CurrentUser, now: Now, hours: Hours = 168,
                            bucket_s: Annotated[int | None, Query(ge=60, le=7 * 86_400)] = None) -> dict[str, Any]:
    view = await _theirs(db, user, household_id)
    await q.summary(db, view, now)  # 404 for an unknown household
    return await _history(db, view, now, hours, bucket_s)


@router.get("/{household_id}/diary", summary="A household's diary entries")
async def household_diary(household_id: str, db: DB, user: CurrentUser, now: Now, days: Days = 30
                          ) -> list[dict[str, Any]]:
    return await q.diary(db, await _theirs(db, user, household_id), *_since(now, days))


@router.get("/{household_id}/diary/advice", summary="A household's humidity rises and advice")
async def household_diary_advice(household_id: str, db: DB, user: CurrentUser, now: Now,
                                 days: Annotated[int, Query(ge=1, le=31)] = 7) -> dict[str, Any]:
    return await q.diary_advice(db, await _theirs(db, user, household_id), *_since(now, days))


@router.get("/{household_id}/report", response_class=HTMLResponse, summary="A household's evidence report (HTML)")
async def household_report(household_id: str, db: DB, user: CurrentUser, now: Now,
                           days: Annotated[int, Query(ge=1, le=366)] = 30,
                           reported_on: date | None = None) -> HTMLResponse:
    return await _report(db, await _theirs(db, user, household_id), now, days, reported_on)


@router.get("/{household_id}/tenancies", summary="A household's memberships, newest first (staff)")
async def household_tenancies(household_id: str, db: DB, user: Staff) -> list[dict[str, Any]]:
    return [t.as_json() for t in await tenancies.listing(db, household_id=household_id)]
