"""The evidence pack of a damp and mould case (issue 21, point 4), over HTTP from the real
database: the PDF (printed by headless Chromium, read back with pypdf) and the CSV, in the
landlord's full version and the householder's copy; who may fetch which; a case with no
readings; the 503 without a browser; and the pure page and CSV (rules.cases.evidence).

Clock expectations are hand calculations with England's calendar (no bank holiday in
November 2026, GMT all month), as rules/cases/clocks.py counts them (docs/cases.md): aware
Monday 2 November 2026 09:00, the day itself not counted:
    investigation     10 working days: Tue 3 .. Mon 16 Nov; investigated Thu 12 Nov: met
    written_summary   3 working days from Thu 12: Fri 13, Mon 16, Tue 17 Nov (end of day);
                      sent Thu 19 Nov 10:00: met late by 34 hours = 1 day 10 hours
    safety_work       5 working days from Thu 12: due the end of Thu 19 Nov; never done: overdue
    further_works_begin  the same due time; begun Wed 18 Nov: met
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pypdf import PdfReader

from cases import lifecycle
from cityops.storage import Database
from ops_api.accounts.roles import Role
from ops_api.accounts.sessions import open_session
from rules.cases.clocks import Clock
from rules.cases.evidence import CasePack, TimelineEntry, csv_rows, late_by, pack_csv, pack_html
from tests.api_helpers import api_client, make_user
from tests.pages_helpers import householder_with_a_week_of_readings

AWARE = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)          # a Monday
INVESTIGATED = datetime(2026, 11, 12, 14, 0, tzinfo=UTC)
FURTHER_BEGUN = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)
SUMMARY_SENT = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
INTERNAL_NOTE = "Neighbour says the flat above leaks into the bedroom"
REPORT_TEXT = "Black mould behind the wardrobe in the back bedroom"
CONTACT_TEXT = "Phoned to book the survey"
MISSING_CASE = 987_654_321


def _text(pdf: bytes) -> str:
    """The PDF's text, whitespace folded (table cells wrap across lines) and the font's ligatures
    (ﬁ, ﬂ, ﬃ) spelt out (NFKC)."""
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(unicodedata.normalize("NFKC", text).split())


async def _bearer(db: Database, user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await open_session(db, user_id)}"}


async def _landlord(db: Database, landlord_id: str) -> str:
    """A landlord organisation with an officer of theirs; the officer's user id."""
    await lifecycle.add_landlord(db, landlord_id, f"Homes {landlord_id}", "housing_association", True)
    officer = await make_user(db, Role.LANDLORD)
    await db.execute("UPDATE users SET landlord_id = $1 WHERE user_id = $2", landlord_id, officer.user_id)
    return officer.user_id


async def _case_with_history(db: Database, unique: str) -> tuple[int, str, str, str]:
    """A home with a week of readings, its landlord, and a significant case worked from the
    householder's report to a late summary (the module docstring's dates): (case id, landlord
    officer's user id, householder's user id, household id)."""
    household, username, _ = await householder_with_a_week_of_readings(db, unique)
    householder = await db.fetchval("SELECT user_id FROM users WHERE username = $1", username)
    officer = await _landlord(db, f"{unique}a")
    await lifecycle.put_home(db, household, f"{unique}a", "12 Mill Lane", True, datetime.now(UTC))
    case_id = await lifecycle.open_case(db, household, "officer-1", datetime.now(UTC), category="significant",
                                        reason="REASONING the child sleeps in the damp room", aware_at=AWARE,
                                        aware_how="householder")
    await lifecycle.householder_report(db, household, householder, REPORT_TEXT, [], datetime(2026, 11, 3, 8,
                                                                                              tzinfo=UTC))
    steps: list[tuple[str, dict[str, Any]]] = [
        ("contact", {"at": datetime(2026, 11, 3, 12, tzinfo=UTC), "how": "phone", "text": CONTACT_TEXT}),
        ("vulnerability", {"flags": ["child_under_5"], "note": "a baby in the back bedroom"}),
        ("note", {"at": datetime(2026, 11, 5, 9, tzinfo=UTC), "text": INTERNAL_NOTE}),
        ("investigation", {"at": INVESTIGATED, "investigator": "A. Surveyor", "findings": "mould on the north wall",
                           "cause": "condensation; broken extractor fan"}),
        ("further_works", {"at": FURTHER_BEGUN, "stage": "begun", "contractor": "DampCo"}),
        ("summary_sent", {"at": SUMMARY_SENT, "how": "letter", "text": "We found condensation mould."}),
    ]
    for kind, body in steps:
        await lifecycle.record_step(db, case_id, "officer-1", datetime.now(UTC), kind, body)
    return case_id, officer, householder, household


async def test_the_landlords_pack_and_the_householders_copy(app: FastAPI, db: Database, unique: str) -> None:
    case_id, officer, householder, _ = await _case_with_history(db, unique)
    async with api_client(app) as client:
        as_officer, as_tenant = await _bearer(db, officer), await _bearer(db, householder)
        full = await client.get(f"/cases/{case_id}/evidence.pdf", headers=as_officer)
        assert full.status_code == 200, full.text
        assert full.headers["content-type"] == "application/pdf" and full.content.startswith(b"%PDF")
        assert "no-store" in full.headers["cache-control"]
        theirs = await client.get("/households/me/case/evidence.pdf", headers=as_tenant)
        assert theirs.status_code == 200, theirs.text
        case = (await client.get(f"/cases/{case_id}", headers=as_officer)).json()

    landlord_text, tenant_text = _text(full.content), _text(theirs.content)
    for text in (landlord_text, tenant_text):
        assert "12 Mill Lane" in text and f"case {case_id}" in text
        # each clock and its verdict (the module docstring's hand calculation)
        assert "Investigate the damp and mould" in text and "met late by 1 day 10 hours" in text
        assert "overdue" in text and "Finish the work that makes the home safe" in text
        assert "by the end of Tuesday 17 November 2026" in text     # the written summary's due time
        # the timeline entries both may see, and the readings' charts
        for line in ("Case opened", "You reported damp or mould", REPORT_TEXT, "Contact with the household",
                     "A written summary of the findings was sent"):
            assert line in text, line
        assert "Humidity at the coldest wall" in text and "No sensor readings" not in text
    # only the landlord's copy has the internal note, the vulnerability flags and the reasoning
    for internal in (INTERNAL_NOTE, "child under 5", "REASONING", "A. Surveyor", "no (internal)"):
        assert internal in landlord_text, internal
        assert internal not in tenant_text, internal
    assert "The householder's copy" in tenant_text and "The landlord's full record" in landlord_text
    # the PDF's timeline is the case's (GET /cases/{id}): the 8 entries made above, internal ones included
    assert len(case["timeline"]) == 8 and all(e["summary"] in landlord_text for e in case["timeline"])


async def test_the_csv_matches_the_timeline_and_the_clocks(app: FastAPI, db: Database, unique: str) -> None:
    case_id, officer, householder, _ = await _case_with_history(db, unique)
    async with api_client(app) as client:
        as_officer = await _bearer(db, officer)
        full = await client.get(f"/cases/{case_id}/evidence.csv", headers=as_officer)
        theirs = await client.get("/households/me/case/evidence.csv", headers=await _bearer(db, householder))
        case = (await client.get(f"/cases/{case_id}", headers=as_officer)).json()
    assert full.status_code == 200 and full.headers["content-type"].startswith("text/csv"), full.text
    rows = list(csv.DictReader(io.StringIO(full.text)))
    timeline = [r for r in rows if r["row"] == "timeline"]
    # one row per entry of the case's timeline (the contract: GET /cases/{id}), in its order
    assert [(r["at"], r["kind"], r["summary"]) for r in timeline] == \
        [(e["at"], e["kind"], e["summary"]) for e in case["timeline"]]
    note = next(r for r in timeline if r["kind"] == "note")
    assert note["text"] == INTERNAL_NOTE and note["visible_to_tenant"] == "no"
    clocks = {r["clock"]: r for r in rows if r["row"] == "clock"}
    assert [c["key"] for c in case["clocks"]] == list(clocks)
    assert clocks["investigation"]["verdict"] == "met"
    assert clocks["written_summary"]["verdict"] == "met late"
    assert clocks["written_summary"]["late_by"] == "1 day 10 hours"
    assert clocks["written_summary"]["due"] == "2026-11-17T23:59:59.999999+00:00"
    assert clocks["safety_work"]["verdict"] == "overdue" and clocks["safety_work"]["met_at"] == ""
    assert clocks["further_works_begin"]["verdict"] == "met"

    mine = list(csv.DictReader(io.StringIO(theirs.text)))
    assert theirs.status_code == 200 and "by" not in mine[0] and "visible_to_tenant" not in mine[0]
    kinds = [r["kind"] for r in mine if r["row"] == "timeline"]
    assert "note" not in kinds and "vulnerability" not in kinds and "report" in kinds
    assert INTERNAL_NOTE not in theirs.text and "REASONING" not in theirs.text
    assert [r["clock"] for r in mine if r["row"] == "clock"] == list(clocks)


async def test_who_may_fetch_a_pack(app: FastAPI, db: Database, unique: str) -> None:
    case_id, _, _, _ = await _case_with_history(db, unique)
    other = await _landlord(db, f"{unique}b")
    async with api_client(app) as client:
        for ext in ("pdf", "csv"):
            # landlord B: 404, worded exactly as a missing case (ids aside)
            theirs = await client.get(f"/cases/{case_id}/evidence.{ext}", headers=await _bearer(db, other))
            missing = await client.get(f"/cases/{MISSING_CASE}/evidence.{ext}", headers=await _bearer(db, other))
            assert theirs.status_code == missing.status_code == 404
            assert theirs.text.replace(str(case_id), "<id>") == missing.text.replace(str(MISSING_CASE), "<id>")
            # the council's officers see every landlord's (csv: no print needed to show it)
            if ext == "csv":
                operator = await make_user(db, Role.OPERATOR)
                seen = await client.get(f"/cases/{case_id}/evidence.csv", headers=await _bearer(db, operator.user_id))
                assert seen.status_code == 200
            # crews and householders never reach /cases (ops_api/access.py: CASEWORK)
            for role in (Role.GRITTING_CREW, Role.WASTE_CREW, Role.HOUSEHOLDER):
                user = await make_user(db, role)
                refused = await client.get(f"/cases/{case_id}/evidence.{ext}", headers=await _bearer(db, user.user_id))
                assert refused.status_code == 403, (role, refused.text)
            # a householder of another home gets no pack: their home has no case (404)
            elsewhere = await make_user(db, Role.HOUSEHOLDER)
            none = await client.get(f"/households/me/case/evidence.{ext}", headers=await _bearer(db, elsewhere.user_id))
            assert none.status_code == 404 and "no damp and mould case" in none.json()["error"]
            crew = await make_user(db, Role.WASTE_CREW)
            assert (await client.get(f"/households/me/case/evidence.{ext}",
                                     headers=await _bearer(db, crew.user_id))).status_code == 403


async def test_a_new_tenant_sees_nothing_from_before_their_tenancy(app: FastAPI, db: Database, unique: str
                                                                   ) -> None:
    _, _, _, household = await _case_with_history(db, unique)
    # moved in after the report and the contact, before the summary was sent
    newcomer = await make_user(db, Role.HOUSEHOLDER, household_id=household,
                               member_since=datetime(2026, 11, 10, tzinfo=UTC))
    async with api_client(app) as client:
        response = await client.get("/households/me/case/evidence.csv", headers=await _bearer(db, newcomer.user_id))
    assert response.status_code == 200, response.text
    kinds = [r["kind"] for r in csv.DictReader(io.StringIO(response.text)) if r["row"] == "timeline"]
    assert "report" not in kinds and "contact" not in kinds and "opened" not in kinds
    assert "summary_sent" in kinds and REPORT_TEXT not in response.text


async def test_a_case_with_no_readings_still_renders(app: FastAPI, db: Database, unique: str) -> None:
    officer = await _landlord(db, f"{unique}a")
    household = f"hh-{unique}"
    await lifecycle.put_home(db, household, f"{unique}a", "3 Quiet Row", True, datetime.now(UTC))
    case_id = await lifecycle.open_case(db, household, "officer-1", datetime.now(UTC), category="emergency",
                                        reason="water through the ceiling light")
    async with api_client(app) as client:
        response = await client.get(f"/cases/{case_id}/evidence.pdf", headers=await _bearer(db, officer))
    assert response.status_code == 200, response.text
    text = _text(response.content)
    assert "3 Quiet Row" in text and "No sensor readings" in text
    assert "Investigate the emergency hazard" in text and "No diary entries" in text


async def test_no_browser_is_a_503_that_names_it(app: FastAPI, db: Database, unique: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    officer = await _landlord(db, f"{unique}a")
    household = f"hh-{unique}"
    await lifecycle.put_home(db, household, f"{unique}a", "", True, datetime.now(UTC))
    case_id = await lifecycle.open_case(db, household, "officer-1", datetime.now(UTC), category="significant",
                                        reason="mould reported by phone")
    async with api_client(app) as client:
        headers = await _bearer(db, officer)
        monkeypatch.setenv("PATH", "/nonexistent")     # no chromium to be found
        response = await client.get(f"/cases/{case_id}/evidence.pdf", headers=headers)
        still = await client.get(f"/cases/{case_id}/evidence.csv", headers=headers)
    assert response.status_code == 503 and "Chromium" in response.json()["error"]
    assert "chromium" in response.json()["hint"] and still.status_code == 200


# --- the pure page and CSV ------------------------------------------------------------------

def _clock(state: str, due: datetime | None, met_at: datetime | None) -> Clock:
    return Clock("written_summary", "Send the tenant a written summary", "investigated", due, met_at, state,  # type: ignore[arg-type]
                 "SI 2025/1042 reg. 6")


def test_late_by_counts_whole_hours_past_the_due_time() -> None:
    due = datetime(2026, 11, 17, 23, 59, 59, 999999, tzinfo=UTC)
    # 19 Nov 10:00 is 34 hours and a microsecond after: 1 day 10 hours (by hand)
    assert late_by(_clock("met_late", due, datetime(2026, 11, 19, 10, tzinfo=UTC))) == "1 day 10 hours"
    assert late_by(_clock("met_late", due, datetime(2026, 11, 18, 0, 30, tzinfo=UTC))) == "under an hour"
    assert late_by(_clock("met", due, datetime(2026, 11, 17, 9, tzinfo=UTC))) == ""
    assert late_by(_clock("overdue", due, None)) == ""


def test_the_csv_neutralises_formulas_and_the_page_escapes_html() -> None:
    at = datetime(2026, 11, 3, 8, tzinfo=UTC)
    pack = CasePack(audience="householder", case_id=7, home_label="<b>Flat</b>", landlord=None, state="open",
                    category="significant", aware_at=at, closed_at=None, period=(at, at), generated_at=at,
                    timeline=(TimelineEntry(at, "report", "You reported damp or mould", '=HYPERLINK("x")'),))
    rows = csv_rows(pack)
    assert rows[0]["text"] == "'=HYPERLINK(\"x\")"            # cityops/csv_safe.py: a leading '
    assert next(csv.DictReader(io.StringIO(pack_csv(pack))))["text"] == "'=HYPERLINK(\"x\")"
    page = pack_html(pack)
    assert "<b>Flat</b>" not in page and "&lt;b&gt;Flat&lt;/b&gt;" in page
    assert "<script" not in page and "No sensor readings" in page and "No clock runs" in page


def test_chromium_runs_without_its_sandbox_only_when_told_or_as_root(tmp_path: Path) -> None:
    """The shipped image turns the sandbox off (deploy/Dockerfile: CITYOPS_API__PDF_SANDBOX=false);
    elsewhere it stays on unless the API runs as root, where Chromium refuses to start with it."""
    from ops_api.pdf import _command

    page, out, profile = tmp_path / "p.html", tmp_path / "p.pdf", tmp_path / "profile"
    as_root = os.geteuid() == 0
    assert ("--no-sandbox" in _command("chromium", page, out, profile)) is as_root
    assert "--no-sandbox" in _command("chromium", page, out, profile, sandbox=False)
    dockerfile = (Path(__file__).parent.parent / "deploy" / "Dockerfile").read_text()
    assert "chromium" in dockerfile and "ENV CITYOPS_API__PDF_SANDBOX=false" in dockerfile
