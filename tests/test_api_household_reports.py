"""A householder reports damp or mould with photos, and sees their case, through the API on
the real PostgreSQL: POST /households/me/reports, GET /households/me/case and its photos.

Where the expectations come from: the contract of issue 21 (at most 5 photos, JPEG, PNG or
WebP, 5 MB each; a refused file stores nothing; a previous tenant's reports and photos are
not the new tenant's; another household's photo is a 404 worded as a missing one), the
settings given to each app here (limits made small so the bodies stay small), and the
sha256 of the bytes as served (FIPS 180-4, hashlib).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from cityops.settings import ApiSettings, CasesSettings, Settings
from cityops.storage import Database
from ops_api.accounts import tenancies
from ops_api.accounts.roles import Role, User
from ops_api.accounts.sessions import open_session
from ops_api.app import create_app
from ops_api.routes.households import report_body_limit
from tests.api_helpers import api_client, login_as, make_user

KIB = 1024
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def jpeg(colour: tuple[int, int, int] = (120, 140, 90), size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def noise_png(side: int) -> bytes:
    """Random pixels compress badly: a PNG of about 3 * side^2 bytes."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def photo_dir(tmp_path: Path) -> Path:
    return tmp_path / "case-photos"


def stored_files(tmp_path: Path) -> list[Path]:
    folder = photo_dir(tmp_path)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def app_with(database_url: str, db: Database, tmp_path: Path, **cases: object) -> FastAPI:
    settings = Settings(database_url=database_url,  # type: ignore[arg-type]
                        cases=CasesSettings(photo_dir=photo_dir(tmp_path), **cases),  # type: ignore[arg-type]
                        api=ApiSettings(max_body_bytes=64 * KIB))
    return create_app(settings, db=db)


@pytest.fixture
async def client(database_url: str, db: Database, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(app_with(database_url, db, tmp_path)) as http:
        yield http


def report(text: str, *photos: tuple[str, bytes, str]) -> dict[str, object]:
    return {"data": {"text": text}, "files": [("photos", p) for p in photos]}


async def test_a_report_with_photos_opens_a_case_the_householder_sees(client: httpx.AsyncClient, db: Database,
                                                                    tmp_path: Path) -> None:
    user = await login_as(client, db, Role.HOUSEHOLDER)
    assert (await client.get("/households/me/case")).json() is None   # no case yet: 200 with null

    wall = jpeg()
    sent = await client.post("/households/me/reports", **report(  # type: ignore[arg-type]
        "Black mould on the bedroom wall behind the wardrobe, since October.",
        ("wall.jpg", wall, "image/jpeg"), ("wall-again.jpg", wall, "image/jpeg"),
        ("window.png", noise_png(20), "image/png")))
    assert sent.status_code == 201, sent.text
    case = sent.json()
    assert case["state"] == "open" and case["category"] == "significant"
    assert [(e["kind"], e["summary"]) for e in case["timeline"]] == [("report", "You reported damp or mould"),
                                                                      ("photo", "3 photos added")]
    assert case["timeline"][0]["text"] == "Black mould on the bedroom wall behind the wardrobe, since October."
    # awareness is the report (issue 21): a significant hazard's first clock, investigation, runs from it
    assert case["aware_at"] == case["opened_at"] and case["next_step"]["due"]
    assert len(case["photos"]) == 3
    assert (await client.get("/households/me/case")).json() == case

    # the same photo twice is one file; each row's checksum is the sha256 of the bytes served
    files = stored_files(tmp_path)
    assert len(files) == 2
    rows = await db.fetch("SELECT photo_id, sha256, path, media_type, bytes, uploaded_by FROM case_photos "
                          "WHERE case_id = $1 ORDER BY photo_id", case["case_id"])
    assert [r["photo_id"] for r in rows] == [p["photo_id"] for p in case["photos"]]
    assert rows[0]["sha256"] == rows[1]["sha256"] != rows[2]["sha256"]
    assert {r["uploaded_by"] for r in rows} == {user.user_id}
    for row in rows:
        on_disk = (photo_dir(tmp_path) / row["path"]).read_bytes()
        assert hashlib.sha256(on_disk).hexdigest() == row["sha256"] and len(on_disk) == row["bytes"]
        served = await client.get(f"/households/me/case/photos/{row['photo_id']}")
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == row["sha256"]
        assert served.headers["content-type"] == row["media_type"]
        assert served.headers["content-disposition"].startswith("inline")
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-security-policy"].startswith("default-src 'none'")
        assert "no-store" in served.headers["cache-control"]
    assert [r["media_type"] for r in rows] == ["image/jpeg", "image/jpeg", "image/png"]

    # a second report joins the open case
    again = await client.post("/households/me/reports", data={"text": "It has spread to the ceiling."})
    assert again.status_code == 201, again.text
    assert again.json()["case_id"] == case["case_id"]
    assert [e["text"] for e in again.json()["timeline"] if e["kind"] == "report"] == [
        "Black mould on the bedroom wall behind the wardrobe, since October.", "It has spread to the ceiling."]


@pytest.mark.parametrize(("name", "data", "declared"), [
    ("notes.jpg", PDF, "image/jpeg"),
    ("page.jpg", b"<!doctype html><script>alert(1)</script>", "image/jpeg"),
    ("cut.jpg", jpeg(size=(200, 200))[:400], "image/jpeg"),
])
async def test_a_bad_file_is_refused_naming_it_and_nothing_is_stored(client: httpx.AsyncClient, db: Database,
                                                                    tmp_path: Path, name: str, data: bytes,
                                                                    declared: str) -> None:
    user = await login_as(client, db, Role.HOUSEHOLDER)
    sent = await client.post("/households/me/reports", **report(  # type: ignore[arg-type]
        "Mould in the bathroom.", ("good.jpg", jpeg(), "image/jpeg"), (name, data, declared)))

    assert sent.status_code == 422
    assert sent.json()["error"] == f"photos: photo 2 ({name}) (sent as {declared}) is not a JPEG, PNG or WebP photo"
    assert stored_files(tmp_path) == []                       # not even the good first photo
    assert (await client.get("/households/me/case")).json() is None
    assert await db.fetchval("SELECT count(*) FROM damp_cases WHERE household_id = $1", user.household_id) == 0


async def test_six_photos_are_refused(client: httpx.AsyncClient, db: Database, tmp_path: Path) -> None:
    await login_as(client, db, Role.HOUSEHOLDER)
    six = [(f"p{i}.jpg", jpeg((i * 40, 90, 90)), "image/jpeg") for i in range(6)]
    sent = await client.post("/households/me/reports", **report("Damp everywhere.", *six))  # type: ignore[arg-type]

    assert sent.status_code == 422
    assert sent.json()["error"] == "photos: 6 photos sent; a report may carry at most 5"
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize(("text", "why"), [("", "empty"), ("   ", "blank"), ("x" * 2001, "too long")])
async def test_the_text_is_required_and_bounded(client: httpx.AsyncClient, db: Database, text: str,
                                                why: str) -> None:
    await login_as(client, db, Role.HOUSEHOLDER)
    sent = await client.post("/households/me/reports", data={"text": text})
    assert sent.status_code == 422, why
    assert sent.json()["error"].startswith("text: ")


async def test_another_households_photo_is_404_worded_as_a_missing_one(client: httpx.AsyncClient,
                                                                      db: Database) -> None:
    await login_as(client, db, Role.HOUSEHOLDER)
    sent = await client.post("/households/me/reports", **report(  # type: ignore[arg-type]
        "Mould on the window frame.", ("frame.jpg", jpeg(), "image/jpeg")))
    photo_id = sent.json()["photos"][0]["photo_id"]

    await login_as(client, db, Role.HOUSEHOLDER)   # a neighbour
    theirs = await client.get(f"/households/me/case/photos/{photo_id}")
    missing = await client.get("/households/me/case/photos/987654321")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"] == f"no photo {photo_id} in your home's case"
    assert missing.json()["error"] == "no photo 987654321 in your home's case"


async def test_a_previous_tenants_report_and_photos_are_not_the_new_tenants(client: httpx.AsyncClient,
                                                                           db: Database, tmp_path: Path) -> None:
    old = await login_as(client, db, Role.HOUSEHOLDER)
    household = old.household_id
    assert household is not None
    sent = await client.post("/households/me/reports", **report(  # type: ignore[arg-type]
        "Old tenant: mould in the kitchen corner.", ("kitchen.jpg", jpeg(), "image/jpeg")))
    assert sent.status_code == 201, sent.text
    old_photo = sent.json()["photos"][0]["photo_id"]

    async with db.transaction() as conn:   # the home changes hands (as a new-tenancy invitation does)
        await tenancies.end_for_household(conn, household, by=None, reason="moved out")
    assert (await client.get("/households/me/case")).status_code == 404   # the old tenant sees nothing now
    new = await make_user(db, Role.HOUSEHOLDER, household_id=household, member_since=None)  # from now
    client.headers["Authorization"] = f"Bearer {await open_session(db, new.user_id)}"

    seen = (await client.get("/households/me/case")).json()
    assert seen is None or (seen["timeline"] == [] and seen["photos"] == [])
    assert (await client.get(f"/households/me/case/photos/{old_photo}")).status_code == 404

    mine = await client.post("/households/me/reports", data={"text": "New tenant: the bathroom ceiling."})
    assert mine.status_code == 201, mine.text
    assert [e["text"] for e in mine.json()["timeline"]] == ["New tenant: the bathroom ceiling."]
    assert mine.json()["photos"] == []
    assert "Old tenant" not in mine.text and "Old tenant" not in (await client.get("/households/me/case")).text


async def test_the_body_limit_lets_five_photos_through_on_this_route_only(database_url: str, db: Database,
                                                                         tmp_path: Path) -> None:
    # the defaults: five photos of 5 MB each fit, and the other routes keep their 1 MB
    assert report_body_limit(CasesSettings()) > 5 * 5 * 1024 * 1024 > ApiSettings().max_body_bytes
    app = app_with(database_url, db, tmp_path, photo_max_bytes=64 * KIB)   # the API's other routes: 64 KiB
    five = [(f"p{i}.png", noise_png(120), "image/png") for i in range(5)]   # about 43 KiB each
    assert all(40 * KIB < len(p[1]) <= 64 * KIB for p in five)
    async with api_client(app) as client:
        await login_as(client, db, Role.HOUSEHOLDER)
        sent = await client.post("/households/me/reports", **report("Five photos.", *five))  # type: ignore[arg-type]
        assert sent.status_code == 201, sent.text                   # about 215 KiB: over the 64 KiB elsewhere
        assert len(sent.json()["photos"]) == 5

        limit = report_body_limit(app.state.settings.cases)      # 5 * 64 KiB + 64 KiB of room
        too_big = await client.post("/households/me/reports", content=b"x" * (limit + 1),
                                    headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert too_big.status_code == 413
        elsewhere = await client.post("/households/me/diary", content=b"x" * (65 * KIB),
                                      headers={"Content-Type": "application/json"})
        assert elsewhere.status_code == 413

        one_too_large = noise_png(160)                                # about 77 KiB: over photo_max_bytes
        refused = await client.post("/households/me/reports", **report(  # type: ignore[arg-type]
            "Too big.", ("big.png", one_too_large, "image/png")))
        assert refused.status_code == 422
        assert refused.json()["error"].startswith("photos: photo 1 (big.png) is ")


async def test_a_household_may_send_only_so_many_reports_a_day(database_url: str, db: Database,
                                                              tmp_path: Path) -> None:
    app = app_with(database_url, db, tmp_path, reports_per_day=2)
    async with api_client(app) as client:
        user: User = await login_as(client, db, Role.HOUSEHOLDER)
        for n in (1, 2):
            assert (await client.post("/households/me/reports", data={"text": f"report {n}"})).status_code == 201
        third = await client.post("/households/me/reports", **report(  # type: ignore[arg-type]
            "report 3", ("p.jpg", jpeg(), "image/jpeg")))
        assert third.status_code == 429
        assert third.json()["error"] == "your home has sent 2 reports in the last 24 hours; the most is 2"
        assert int(third.headers["retry-after"]) > 0
        assert stored_files(tmp_path) == []
        # the limit is the household's: a second member of the same home is refused too
        await login_as(client, db, Role.HOUSEHOLDER, household_id=user.household_id)
        assert (await client.post("/households/me/reports", data={"text": "report 4"})).status_code == 429


async def test_a_changed_photo_file_is_never_served(client: httpx.AsyncClient, db: Database, tmp_path: Path) -> None:
    await login_as(client, db, Role.HOUSEHOLDER)
    sent = await client.post("/households/me/reports", **report(  # type: ignore[arg-type]
        "Mould by the window.", ("w.jpg", jpeg(), "image/jpeg")))
    photo_id = sent.json()["photos"][0]["photo_id"]
    path = await db.fetchval("SELECT path FROM case_photos WHERE photo_id = $1", photo_id)
    (photo_dir(tmp_path) / path).write_bytes(b"<script>alert(1)</script>")   # someone changed it on disk

    served = await client.get(f"/households/me/case/photos/{photo_id}")
    assert served.status_code == 500
    assert "<script>" not in served.text and served.json()["error"].startswith("this photo cannot be shown")
