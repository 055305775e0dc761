"""Damp and mould cases (Awaab's Law), landlords and their homes: the officers' routes.

    GET  /cases?state=                  council officers: every case; a landlord officer: their
                                        organisation's; sorted by the nearest due clock
    POST /cases                         open a case for a home: {household_id, category, reason,
                                        aware_at?, aware_how?, text?}
    GET  /cases/stats?months=12         the clocks met on time, met late and missed per category and
                                        month (the same scope as GET /cases)
    GET  /cases/{case_id}               the case, its clocks (due, time left, state), its timeline
                                        (internal notes included) and photos
    POST /cases/{case_id}/triage        {decision: accept|dismiss, category?, reason}: a suggestion
                                        opened or dismissed; an open case re-categorised
    POST /cases/{case_id}/events        one step, typed by `kind` (contact, investigation,
                                        summary_sent, made_safe, safety_works, further_works,
                                        alternative_accommodation, vulnerability, note)
    POST /cases/{case_id}/close         {reason}
    GET  /cases/{case_id}/evidence.pdf|.csv   the case's full evidence pack (readings and risk,
                                        clocks met or not, the whole timeline, the diary)
    GET  /landlords, POST /landlords    admins: the landlord organisations
    PUT  /homes/{household_id}          admins: a home's landlord, label and social housing flag

Householders never use these: their report and their view of their case are
/households/me/reports and /households/me/case. Another landlord's case or home answers 404
worded as a missing one (ops_api.queries.cases). The lifecycle is cases.lifecycle; its
errors become 404, 409 and 422 (ops_api/errors.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, Field

from cases import lifecycle
from ops_api.accounts.roles import Role
from ops_api.deps import DB, Admin, AppSettings, User, allow
from ops_api.evidence_files import CSV_RESPONSES, PDF_RESPONSES, csv_response, pdf_response
from ops_api.queries import case_evidence
from ops_api.queries import cases as cases_query
from ops_api.queries.cases import case_scope

router = APIRouter(tags=["cases"])
CaseWorker = Annotated[User, Depends(allow(Role.OPERATOR, Role.LANDLORD))]
Category = Literal["emergency", "significant"]
Reason = Annotated[str, Field(min_length=3, max_length=2000)]
Text = Annotated[str, Field(max_length=8000)]
Who = Annotated[str, Field(max_length=200)]
When = Annotated[AwareDatetime | None, Field(description="when it happened (default now); never in the future")]
Vulnerability = Literal["child_under_5", "over_65", "respiratory_condition", "disability", "pregnancy", "other"]


class NewCase(BaseModel):
    household_id: str = Field(min_length=1, max_length=64)
    category: Category
    reason: Reason = Field(description="why this category: what was seen, who lives there")
    aware_at: When = None
    aware_how: Literal["householder", "officer", "sensor", "other"] = "officer"
    text: Text = ""


class Triage(BaseModel):
    decision: Literal["accept", "dismiss"]
    category: Category | None = Field(default=None, description="accept: emergency or significant")
    reason: Reason


class Closing(BaseModel):
    reason: Reason


class Contact(BaseModel):
    kind: Literal["contact"]
    at: When = None
    how: Literal["phone", "visit", "letter", "email", "text_message", "in_person", "other"]
    text: Annotated[str, Field(min_length=1, max_length=4000)]
    visible_to_tenant: bool = True


class Investigation(BaseModel):
    kind: Literal["investigation"]
    at: When = None
    investigator: Annotated[str, Field(min_length=1, max_length=200)]
    findings: Annotated[str, Field(min_length=1, max_length=8000)]
    cause: Text = ""
    category: Category | None = Field(default=None, description="the category the investigation found")


class SummarySent(BaseModel):
    kind: Literal["summary_sent"]
    at: When = None
    how: Literal["letter", "email", "by_hand", "other"] = "letter"
    text: Annotated[str, Field(min_length=1, max_length=8000)]


class MadeSafe(BaseModel):
    kind: Literal["made_safe"]
    at: When = None
    text: Text = ""


class SafetyWorks(BaseModel):
    kind: Literal["safety_works"]
    stage: Literal["booked", "done"]
    at: When = None
    contractor: Who = ""
    text: Text = ""


class FurtherWorks(BaseModel):
    kind: Literal["further_works"]
    stage: Literal["begun", "started", "done"]
    at: When = None
    contractor: Who = ""
    text: Text = ""


class AlternativeAccommodation(BaseModel):
    kind: Literal["alternative_accommodation"]
    decision: Literal["not_needed", "offered", "accepted", "declined", "in_place", "ended"]
    at: When = None
    note: Text = ""


class VulnerabilityFlags(BaseModel):
    kind: Literal["vulnerability"]
    flags: list[Vulnerability] = Field(max_length=6)
    note: Annotated[str, Field(max_length=2000)] = ""


class Note(BaseModel):
    kind: Literal["note"]
    at: When = None
    text: Annotated[str, Field(min_length=1, max_length=8000)]


Step = Annotated[Contact | Investigation | SummarySent | MadeSafe | SafetyWorks | FurtherWorks
                 | AlternativeAccommodation | VulnerabilityFlags | Note, Field(discriminator="kind")]


class NewLandlord(BaseModel):
    landlord_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["council", "housing_association", "private"]
    social: bool = Field(description="a social landlord: Awaab's Law applies to its homes")


class Home(BaseModel):
    landlord_id: str | None = Field(default=None, max_length=64)
    label: str = Field(default="", max_length=200)
    social_housing: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/cases", summary="Damp and mould cases, nearest due clock first")
async def list_cases(db: DB, user: CaseWorker, settings: AppSettings,
                     state: Literal["suggested", "open", "closed", "dismissed"] | None = None) -> dict[str, Any]:
    scope = await case_scope(db, user)
    cases = await lifecycle.list_cases(db, _now(), state=state, due_soon=settings.cases.due_soon, **scope.kwargs())
    return {"cases": cases}


@router.post("/cases", status_code=201, summary="Open a case for a home")
async def open_case(body: NewCase, db: DB, user: CaseWorker, settings: AppSettings) -> dict[str, Any]:
    scope = await case_scope(db, user)
    now = _now()
    case_id = await lifecycle.open_case(db, body.household_id, user.user_id, now, category=body.category,
                                        reason=body.reason, aware_at=body.aware_at, aware_how=body.aware_how,
                                        text=body.text, **scope.kwargs())
    return await lifecycle.case_view(db, case_id, now, due_soon=settings.cases.due_soon, **scope.kwargs())


@router.get("/cases/stats", summary="Clocks met on time per category and month")
async def case_stats(db: DB, user: CaseWorker, settings: AppSettings,
                     months: Annotated[int, Query(ge=1, le=36)] = 12) -> dict[str, Any]:
    """Each month's decided clocks (met on time, met late, missed) per category, in the scope of
    GET /cases: a landlord officer's organisation, or every landlord for council officers."""
    return await cases_query.case_stats(db, await case_scope(db, user), _now(), months, settings.cases.due_soon)


@router.get("/cases/{case_id}", summary="A case: its clocks, timeline and photos")
async def show_case(case_id: int, db: DB, user: CaseWorker, settings: AppSettings) -> dict[str, Any]:
    scope = await case_scope(db, user)
    return await lifecycle.case_view(db, case_id, _now(), due_soon=settings.cases.due_soon, **scope.kwargs())


@router.post("/cases/{case_id}/triage", summary="Accept or dismiss a suggestion; re-categorise an open case")
async def triage_case(case_id: int, body: Triage, db: DB, user: CaseWorker, settings: AppSettings
                      ) -> dict[str, Any]:
    scope = await case_scope(db, user)
    now = _now()
    await lifecycle.triage(db, case_id, user.user_id, now, decision=body.decision, reason=body.reason,
                           category=body.category, sensor_is_awareness=settings.cases.sensor_alert_is_awareness,
                           **scope.kwargs())
    return await lifecycle.case_view(db, case_id, now, due_soon=settings.cases.due_soon, **scope.kwargs())


@router.post("/cases/{case_id}/events", status_code=201, summary="Record a step on a case")
async def record_step(case_id: int, db: DB, user: CaseWorker, settings: AppSettings,
                      step: Annotated[Step, Body()]) -> dict[str, Any]:
    scope = await case_scope(db, user)
    now = _now()
    body = step.model_dump(exclude={"kind"})
    event_id = await lifecycle.record_step(db, case_id, user.user_id, now, step.kind, body, **scope.kwargs())
    return {"event_id": event_id,
            "case": await lifecycle.case_view(db, case_id, now, due_soon=settings.cases.due_soon, **scope.kwargs())}


@router.post("/cases/{case_id}/close", summary="Close an open case with a reason")
async def close_case(case_id: int, body: Closing, db: DB, user: CaseWorker, settings: AppSettings
                     ) -> dict[str, Any]:
    scope = await case_scope(db, user)
    now = _now()
    await lifecycle.close_case(db, case_id, user.user_id, now, body.reason, **scope.kwargs())
    return await lifecycle.case_view(db, case_id, now, due_soon=settings.cases.due_soon, **scope.kwargs())


@router.get("/cases/{case_id}/evidence.pdf", response_class=Response, responses=PDF_RESPONSES,
            summary="A case's full evidence pack as a PDF (readings, clocks, the whole timeline)")
async def case_evidence_pdf(case_id: int, db: DB, user: CaseWorker, settings: AppSettings) -> Response:
    scope = await case_scope(db, user)
    pack = await case_evidence.landlord_pack(db, case_id, _now(), due_soon=settings.cases.due_soon, **scope.kwargs())
    return await pdf_response(pack, sandbox=settings.api.pdf_sandbox)


@router.get("/cases/{case_id}/evidence.csv", response_class=Response, responses=CSV_RESPONSES,
            summary="A case's timeline and clocks as CSV (the full record)")
async def case_evidence_csv(case_id: int, db: DB, user: CaseWorker, settings: AppSettings) -> Response:
    scope = await case_scope(db, user)
    pack = await case_evidence.landlord_pack(db, case_id, _now(), due_soon=settings.cases.due_soon, **scope.kwargs())
    return csv_response(pack)


@router.get("/landlords", summary="The landlord organisations (admins)")
async def list_landlords(db: DB, user: Admin) -> dict[str, Any]:
    return {"landlords": await lifecycle.landlords(db)}


@router.post("/landlords", status_code=201, summary="Add a landlord organisation (admins)")
async def add_landlord(body: NewLandlord, db: DB, user: Admin) -> dict[str, Any]:
    return await lifecycle.add_landlord(db, body.landlord_id, body.name, body.kind, body.social)


@router.put("/homes/{household_id}", summary="Set a home's landlord, label and social housing flag (admins)")
async def put_home(household_id: Annotated[str, Path(min_length=1, max_length=64)], body: Home, db: DB, user: Admin
                   ) -> dict[str, Any]:
    return await lifecycle.put_home(db, household_id, body.landlord_id, body.label, body.social_housing, _now())
