"""A household: the current reading, damp risk and advice, history, the diary, the evidence report.

    GET    /households/me                     householder: their own household, with `now`, the
                                              time the platform runs on (cityops.clock)
    GET    /households/me/history?hours=168   indoor temperature, humidity, dew point in buckets
    GET    /households/me/diary?days=30       diary entries, newest first
    POST   /households/me/diary               {at, activity, minutes?, note?}; 422 says what is wrong
    DELETE /households/me/diary/{entry_id}
    GET    /households/me/diary/advice?days=7 humidity rises, what explains them, advice
    GET    /households/me/report?days=30      the landlord evidence page (HTML)
    POST   /households/me/reports             report damp or mould (multipart: text, photos 0..5):
                                              opens the home's case or adds to it; 201 the case
    GET    /households/me/case                the home's open (or latest) damp and mould case as
                                              the householder may see it, or null (200) for none
    GET    /households/me/case/photos/{photo_id}   one of that case's photos (the image bytes)
    GET    /households/me/case/evidence.pdf|.csv   that case's evidence pack, the householder's
                                              copy (ops_api.queries.case_evidence)
    GET    /households/{household_id}[/history|/diary|/diary/advice|/report]
                                              staff (and the householder for their own id);
                                              another household's id is 404, crews 403
    GET    /households/{household_id}/tenancies   staff: who was a member, from when to when

A householder's tenancy is looked up on every request: with none open they see nothing
(404), and with one they see only what lies after its start (ops_api.queries.scope).
"Now" is the platform's clock (cityops.clock: the real UTC time in production, the town's
in the demo), for the windows, the diary's checks and the page's "last reported".

A report's photos are all checked (cases.photos: decoded, re-encoded without EXIF) before
any is written, so a refused file stores nothing; its body may be larger than other routes'
(`report_body_limit`, given to the BodyLimit guard), and a household may send at most
`cases.reports_per_day` reports in any 24 hours (429 beyond).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from cases import lifecycle
from cases.errors import PhotoDamaged
from cases.photos import CheckedPhoto, StoredPhoto, check_count, check_photos, open_photo, save_photo
from cityops.clock import platform_now
from cityops.settings import CasesSettings
from cityops.storage import Database
from ops_api.accounts import tenancies
from ops_api.accounts.roles import Role
from ops_api.deps import DB, AppSettings, CurrentUser, Staff, User, allow
from ops_api.errors import InvalidRequest, TooManyRequests
from ops_api.evidence_files import CSV_RESPONSES, PDF_RESPONSES, csv_response, pdf_response
from ops_api.queries import case_evidence
from ops_api.queries import households as q
from ops_api.queries.readings import plan_window
from ops_api.queries.scope import HouseholdView, household_for, own_household

log = logging.getLogger("ops_api.households")
router = APIRouter(prefix="/households", tags=["households"])
REPORT_PATH = "/households/me/reports"
REPORT_TEXT_MAX = 2000
MULTIPART_ROOM = 64 * 1024   # the text, the field names and the multipart boundaries
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


# --- a damp and mould report, and the householder's case ----------------------------------

def report_body_limit(cases: CasesSettings) -> int:
    """The largest body POST /households/me/reports takes: every photo at its limit, and room."""
    return cases.photos_per_report * cases.photo_max_bytes + MULTIPART_ROOM


_REPORT_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["text"],
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": REPORT_TEXT_MAX,
                 "description": "what you see, where, and since when"},
        "photos": {"type": "array", "maxItems": 5, "items": {"type": "string", "format": "binary"},
                   "description": "JPEG, PNG or WebP photos, each at most 5 MB (cases.photo_max_bytes)"}}}}}}}


def _report_text(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidRequest("say what you see and where (1 to 2000 characters)", field="text")
    if len(text) > REPORT_TEXT_MAX:
        raise InvalidRequest(f"{len(text)} characters; the most is {REPORT_TEXT_MAX}", field="text",
                             hint="shorten it, or send a second report")
    return text


def _file_name(upload: UploadFile) -> str | None:
    """The name the browser gave, for messages only (never used on disk)."""
    name = "".join(c for c in (upload.filename or "") if c.isprintable())
    return name[:80] or None


def _saved_photos(folder: Path, checked: list[CheckedPhoto]) -> list[StoredPhoto]:
    return [save_photo(folder, photo) for photo in checked]


@router.post("/me/reports", status_code=201, openapi_extra=_REPORT_FORM,
             summary="Report damp or mould, with up to 5 photos: opens your home's case or adds to it")
async def report_damp(request: Request, db: DB, user: Householder, now: Now, settings: AppSettings
                      ) -> dict[str, Any]:
    cases = settings.cases
    view = await _mine(db, user)
    async with request.form(max_files=50, max_fields=20) as form:   # closes the spooled files
        text = _report_text(form.get("text"))
        sent = form.getlist("photos")
        if any(not isinstance(item, UploadFile) for item in sent):
            raise InvalidRequest("send each photo as a file", field="photos")
        files = [item for item in sent if isinstance(item, UploadFile)
                 and (item.filename or item.size)]  # a file input left empty sends a nameless empty part
        check_count(len(files), cases.photos_per_report)   # before reading them
        recent = await q.reports_since(db, view.household_id, now - timedelta(days=1))
        if recent >= cases.reports_per_day:
            raise TooManyRequests(f"your home has sent {recent} reports in the last 24 hours; the most is "
                                  f"{cases.reports_per_day}", retry_after_s=3600,
                                  hint="add to your case tomorrow, or phone your landlord if it is urgent")
        uploads = [(await f.read(cases.photo_max_bytes + 1), f.content_type, _file_name(f)) for f in files]
    checked = await asyncio.to_thread(check_photos, uploads, max_bytes=cases.photo_max_bytes,
                                      most=cases.photos_per_report)   # every file before any is written
    stored = await asyncio.to_thread(_saved_photos, cases.photo_dir, checked)
    case = await lifecycle.householder_report(db, view.household_id, user.user_id, text, stored, now,
                                              since=view.since)   # from their tenancy
    return case


@router.get("/me/case", summary="Your home's damp and mould case (open, or the latest), or null for none")
async def my_case(db: DB, user: Householder, now: Now) -> dict[str, Any] | None:
    view = await _mine(db, user)
    return await lifecycle.household_case(db, view.household_id, now, since=view.since)


@router.get("/me/case/evidence.pdf", response_class=Response, responses=PDF_RESPONSES,
            summary="Your case's evidence pack as a PDF (your copy: no officers' internal notes)")
async def my_case_evidence_pdf(db: DB, user: Householder, now: Now, settings: AppSettings) -> Response:
    pack = await case_evidence.householder_pack(db, await _mine(db, user), now,
                                                due_soon=settings.cases.due_soon)
    return await pdf_response(pack, sandbox=settings.api.pdf_sandbox)


@router.get("/me/case/evidence.csv", response_class=Response, responses=CSV_RESPONSES,
            summary="Your case's timeline and clocks as CSV (your copy)")
async def my_case_evidence_csv(db: DB, user: Householder, now: Now, settings: AppSettings) -> Response:
    pack = await case_evidence.householder_pack(db, await _mine(db, user), now,
                                                due_soon=settings.cases.due_soon)
    return csv_response(pack)


@router.get("/me/case/photos/{photo_id}", response_class=Response,
            responses={200: {"content": {m: {} for m in ("image/jpeg", "image/png", "image/webp")}}},
            summary="A photo of your home's case (only from your tenancy)")
async def my_case_photo(photo_id: int, db: DB, user: Householder, settings: AppSettings) -> Response:
    view = await _mine(db, user)
    photo = await q.case_photo(db, view, photo_id)
    try:
        data = await asyncio.to_thread(open_photo, settings.cases.photo_dir, photo)
    except PhotoDamaged as exc:
        log.error("case photo %s (%s): %s", photo_id, photo.path, exc)
        return JSONResponse({"error": "this photo cannot be shown: the stored file is damaged or missing",
                             "hint": "send the photo again with a new report"},
                            status_code=500)
    return Response(data, media_type=photo.media_type, headers=PHOTO_HEADERS | {
        "Content-Disposition": f'inline; filename="photo-{photo_id}.{photo.path.rsplit(".", 1)[-1]}"'})


# An image served as itself and nothing else: never sniffed as HTML, never run, never cached
# where the next person at a shared computer could find it.
PHOTO_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
                 "Cache-Control": "private, no-store", "Cross-Origin-Resource-Policy": "same-origin"}


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
