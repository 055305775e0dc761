"""The web pages in a real browser: headless Debian Chromium driven by selenium, against
`cityops api` in a child process on the session's database.

A householder signs in, sees the readings we stored and the risk as one message, and adds a
diary entry (which lands in the database); reports damp with a photo (a file that is not a
photo refused by name first) and sees their case, its next step and the photo; on a platform
clock days behind the browser's, the page still counts a reading's age by the platform's
clock; a crew member signs in, sees the route drawn and marks the job done (which completes
it in the database). All at a phone's width (360 CSS px; tests/test_pages_accessibility.py
checks every page at 320). Screenshots go to tests/artifacts/. Without chromium and
chromedriver the tests skip with the reason (`scripts/system-deps.sh` installs them as
root); under CITYOPS_TEST_STRICT=1 they fail.
The fixtures are tests/browser_helpers.py's.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from benchmarks.api import api_server
from cityops.clock import ClockAnchor, write_anchor
from cityops.storage import Database
from ops_api.accounts.invitations import create_invitation
from ops_api.accounts.store import create_user
from ops_api.queries.households import ADVICE
from rules.cases.clocks import WorkingDays, due_in_words
from rules.psychro import dew_point
from tests.browser_helpers import (
    PHONE_WIDTH,
    browser,
    console,
    fits_the_phone,
    ready,
    screenshot,
    sign_in,
    site,
    wait_for,
)
from tests.pages_helpers import BRISTOL_ROUTE, gritting_job_for_a_crew_member, householder_with_a_week_of_readings

__all__ = ["browser", "site"]   # the fixtures, imported for pytest


async def test_a_householder_signs_in_sees_their_numbers_and_adds_a_diary_entry(
        site: str, browser: WebDriver, db: Database, unique: str) -> None:
    household, username, password = await householder_with_a_week_of_readings(db, unique)
    sign_in(browser, site, "/home", username, password)

    text = {key: browser.find_element(By.ID, key).text for key in ("air-temp", "rh", "dew-point")}
    assert text == {"air-temp": "19.3", "rh": "71",
                    "dew-point": f"{float(dew_point(19.3, 71.0)):.1f}"}
    band = browser.find_element(By.ID, "risk")
    assert band.get_attribute("data-level") == "medium"
    # one message: the level, why (mould index 0.7 >= 0.5, the first medium rule of docs/damp.md), what to do
    assert browser.find_element(By.ID, "risk-headline").text == "Medium risk of mould"
    assert browser.find_element(By.ID, "risk-why").text == ("The coldest wall has been damp for long enough for "
                                                            "mould to start growing.")
    assert [li.text for li in band.find_elements(By.CSS_SELECTOR, "#risk-advice li")] == ADVICE["medium"]
    assert not re.search(r"score|of 10|0\.7", band.text)              # no number that could disagree
    assert "has not sent" not in browser.find_element(By.ID, "reading-at").text
    # the week drawn as SVG lines with a point per bucket (336 half-hours in 7 days)
    for chart, series in (("chart-temp", "air_temp_c"), ("chart-temp", "dew_point_c"), ("chart-rh", "rh_pct")):
        path = browser.find_element(By.CSS_SELECTOR, f"#{chart} path[data-series={series}]")
        assert len(re.findall(r"[ML]", path.get_attribute("d") or "")) > 300, (chart, series)
    assert fits_the_phone(browser), "the page scrolls sideways at 360 px"
    screenshot(browser, "householder-home")

    note = f"wet washing {unique}"
    Select(browser.find_element(By.ID, "activity")).select_by_value("drying_clothes")
    browser.find_element(By.ID, "minutes").send_keys("90")
    browser.find_element(By.ID, "note").send_keys(note)
    browser.find_element(By.ID, "diary-submit").click()
    wait_for(browser, "the diary entry to be saved", lambda b: b.find_element(By.ID, "diary-saved").text)
    row = await db.fetchrow("SELECT activity, minutes, note, ts FROM damp_diary WHERE household_id = $1", household)
    assert row is not None and (row["activity"], row["minutes"], row["note"]) == ("drying_clothes", 90, note)
    assert abs(row["ts"] - datetime.now(UTC)) < timedelta(minutes=2)
    assert note in browser.find_element(By.ID, "diary-entries").text
    screenshot(browser, "householder-diary")
    assert console(browser) == []


async def test_a_householder_reports_damp_with_a_photo_and_sees_their_case(
        site: str, browser: WebDriver, db: Database, unique: str, tmp_path: Path) -> None:
    household, username, password = await householder_with_a_week_of_readings(db, unique)
    sign_in(browser, site, "/home", username, password)
    assert browser.find_element(By.ID, "case").get_attribute("hidden") is not None   # no case yet

    fake = tmp_path / "mould.jpg"
    fake.write_bytes(b"<!doctype html><p>not a photo</p>")
    photo = tmp_path / "wall.jpg"
    Image.new("RGB", (320, 240), (60, 70, 50)).save(photo, "JPEG")
    text = f"Black mould behind the wardrobe {unique}"
    browser.find_element(By.ID, "damp-text").send_keys(text)
    browser.find_element(By.ID, "damp-photos").send_keys(str(fake))
    browser.find_element(By.ID, "damp-submit").click()
    error = wait_for(browser, "the refused photo", lambda b: b.find_element(By.ID, "damp-error").text)
    assert "Photo 1 (mould.jpg)" in error and "is not a JPEG, PNG or WebP photo" in error
    assert await db.fetchval("SELECT count(*) FROM damp_cases WHERE household_id = $1", household) == 0

    browser.find_element(By.ID, "damp-photos").clear()
    browser.find_element(By.ID, "damp-photos").send_keys(str(photo))
    browser.find_element(By.ID, "damp-submit").click()
    wait_for(browser, "the case", lambda b: b.find_element(By.ID, "damp-saved").text
             and not b.find_element(By.ID, "case").get_attribute("hidden"))
    assert browser.find_element(By.ID, "damp-error").text == ""
    aware = await db.fetchval("SELECT aware_at FROM damp_cases WHERE household_id = $1 AND state = 'open'", household)
    assert aware is not None
    # the significant hazard's first clock: investigate within 10 working days of awareness
    # (SI 2025/1042 reg. 4), counted by the clocks' own calendar, shown as a tenant reads it
    due = WorkingDays.england().add(aware, 10)
    assert browser.find_element(By.ID, "case-next").text == (
        f"Next step: your landlord must investigate the damp and mould {due_in_words(due)}.")
    assert text in browser.find_element(By.ID, "case-timeline").text
    image = browser.find_element(By.CSS_SELECTOR, "#case-photos img")
    wait_for(browser, "the photo to load", lambda b: b.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", image) == 320)
    assert fits_the_phone(browser)
    screenshot(browser, "householder-case")
    assert [m for m in console(browser) if "/households/me/reports" not in m or "422" not in m] == []  # the refusal

    browser.refresh()                                              # the case is there on the next visit too
    wait_for(browser, "the page again", ready)
    assert text in browser.find_element(By.ID, "case-timeline").text


@pytest.fixture(scope="module")
async def town_site(db: Database, database_url: str, tmp_path_factory: pytest.TempPathFactory
                    ) -> AsyncIterator[tuple[str, Path]]:
    """`cityops api` on a clock file (cityops.clock) as the demo runs it: the URL and the file."""
    folder = tmp_path_factory.mktemp("town-api")
    clock = folder / "clock.json"
    write_anchor(clock, ClockAnchor(at=datetime.now(UTC), real=datetime.now(UTC), rate=1.0))
    async with api_server(database_url, folder / "api.log", env={
            "CITYOPS_ACCOUNTS__INSECURE_LOCALHOST": "true", "CITYOPS_API__CLOCK_FILE": str(clock)}) as api:
        yield api.url, clock


async def test_the_home_page_counts_a_readings_age_by_the_platforms_clock_not_the_browsers(
        town_site: tuple[str, Path], browser: WebDriver, db: Database, unique: str) -> None:
    """The town's clock three days behind the browser's; the last reading 10 minutes before it."""
    site, clock = town_site
    town_now = (datetime.now(UTC) - timedelta(days=3)).replace(second=0, microsecond=0)
    write_anchor(clock, ClockAnchor(at=town_now, real=datetime.now(UTC), rate=0.0))
    _, username, password = await householder_with_a_week_of_readings(db, unique, now=town_now - timedelta(minutes=9))
    sign_in(browser, site, "/home", username, password)
    reading_at = browser.find_element(By.ID, "reading-at")
    assert reading_at.get_attribute("data-stale") == "no" and "has not sent" not in reading_at.text
    # the week drawn is the town's week (7 days up to town_now), not empty days up to the browser's now
    path = browser.find_element(By.CSS_SELECTOR, "#chart-rh path[data-series=rh_pct]")
    assert len(re.findall(r"[ML]", path.get_attribute("d") or "")) > 300
    shown_at = browser.execute_script("return new Date(document.getElementById('at').value).getTime()")
    assert datetime.fromtimestamp(shown_at / 1000, UTC) == town_now    # the diary's default time: the town's now

    write_anchor(clock, ClockAnchor(at=town_now + timedelta(hours=2), real=datetime.now(UTC), rate=0.0))
    browser.refresh()
    wait_for(browser, "the page on the later clock", ready)
    reading_at = browser.find_element(By.ID, "reading-at")               # two hours on: the monitor is quiet
    assert reading_at.get_attribute("data-stale") == "yes" and "has not sent a reading since" in reading_at.text
    screenshot(browser, "householder-town-clock")


async def test_the_login_page_shows_the_api_error_for_a_wrong_password(
        site: str, browser: WebDriver, db: Database, unique: str) -> None:
    await create_user(db, username=f"who-{unique}", password="right-password-1", role="operator")
    browser.delete_all_cookies()
    browser.get(site + "/login")
    browser.find_element(By.ID, "username").send_keys(f"who-{unique}")
    browser.find_element(By.ID, "password").send_keys("wrong-password")
    browser.find_element(By.ID, "submit").click()
    error = wait_for(browser, "the error", lambda b: b.find_element(By.ID, "error").text)
    assert "wrong username or password" in error
    assert browser.current_url.endswith("/login")
    screenshot(browser, "login-error")


# Where `next=` may send the browser after signing in: issue 18's open redirect and its cousins.
HOSTILE_NEXT = ["/\t/evil.example/x", "//evil.example", "/\\evil.example", "https://evil.example",
                "/\n/evil.example", "\\\\evil.example", " //evil.example", "/ /evil.example", "http:evil.example",
                "javascript:alert(1)", "//evil.example@127.0.0.1", ""]
FRIENDLY_NEXT = {"/home": "/home", "/crew/jobs/7?tab=map#steps": "/crew/jobs/7?tab=map#steps",
                 "/%2F%2Fevil.example": "/%2F%2Fevil.example",  # still encoded (decoded once already):
                 "/%09/evil.example": "/%09/evil.example"}        # a path on this site


def test_safe_next_keeps_the_redirect_on_this_site(site: str, browser: WebDriver) -> None:
    browser.get(site + "/login")
    answers = browser.execute_async_script(
        "const [cases, done] = arguments;"
        "import('/static/common.js').then((m) => done(cases.map((c) => m.safeNext(c))));",
        [*HOSTILE_NEXT, *FRIENDLY_NEXT])
    assert dict(zip([*HOSTILE_NEXT, *FRIENDLY_NEXT], answers, strict=True)) == {
        **dict.fromkeys(HOSTILE_NEXT), **FRIENDLY_NEXT}


async def test_signing_in_with_a_hostile_next_stays_on_this_site(
        site: str, browser: WebDriver, db: Database, unique: str) -> None:
    await create_user(db, username=f"op-{unique}", password="right-password-1", role="operator")
    browser.delete_all_cookies()
    browser.get(site + "/login?next=/%09/evil.example/x")
    browser.find_element(By.ID, "username").send_keys(f"op-{unique}")
    browser.find_element(By.ID, "password").send_keys("right-password-1")
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, "the operator's page", lambda b: b.current_url == site + "/crew")


async def test_a_crew_member_sees_the_route_drawn_and_marks_the_job_done(
        site: str, browser: WebDriver, db: Database, unique: str) -> None:
    job_id, run_id, username, password = await gritting_job_for_a_crew_member(db, unique)
    try:
        sign_in(browser, site, "/crew", username, password)
        link = browser.find_element(By.CSS_SELECTOR, f"#open-jobs li[data-job='{job_id}'] a")
        assert link.text == f"Grit route {unique}"
        screenshot(browser, "crew-jobs")
        link.click()
        wait_for(browser, "the job page", lambda b: b.current_url.endswith(f"/crew/jobs/{job_id}") and ready(b))
        wait_for(browser, "the map, streets and all",
                 lambda b: b.find_element(By.ID, "map").get_attribute("data-drawn"))

        paths = browser.find_elements(By.CSS_SELECTOR, "#map path.route")
        assert len(paths) == len(BRISTOL_ROUTE)
        for path, (line, _) in zip(paths, BRISTOL_ROUTE, strict=True):
            points = re.findall(r"[ML]\s*([\d.]+) ([\d.]+)", path.get_attribute("d") or "")
            assert len(points) == len(line)
            assert all(0 <= float(x) <= 400 and float(y) >= 0 for x, y in points)  # inside the map's box
        assert len(browser.find_elements(By.CSS_SELECTOR, "#map path.route.deadhead")) == 1
        assert len(browser.find_elements(By.CSS_SELECTOR, "#steps li")) == 5
        assert "Solid line: spread salt; dashed: drive without spreading" in browser.find_element(By.ID, "legend").text
        assert browser.find_element(By.ID, "sheet").get_attribute("href").endswith(f"/jobs/{job_id}/sheet")
        assert fits_the_phone(browser), "the job page scrolls sideways at 360 px"
        screenshot(browser, "crew-job")

        # a section marked done with the keyboard alone: Enter on its button; the focus stays on the section
        key = browser.execute_script("return document.querySelector('#steps li[data-stop]').dataset.stop")

        def enter(b: WebDriver) -> bool:   # again if the list was redrawn between finding the button and typing
            try:
                button = b.find_element(By.CSS_SELECTOR, f"#steps li[data-stop='{key}'] button[data-do=done]")
                button.send_keys(Keys.ENTER)
            except StaleElementReferenceException:
                return False
            return True
        wait_for(browser, "Enter on the section's button", enter)
        wait_for(browser, "the section marked and sent", lambda b: b.execute_script(
            "const li = document.querySelector(`#steps li[data-stop='${arguments[0]}']`);"
            "return li && li.dataset.status === 'done' && document.body.dataset.waiting === '0'"
            " && li.contains(document.activeElement)", key))
        assert [tuple(r) for r in await db.fetch("SELECT stop, status FROM job_marks WHERE job_id = $1", job_id)] == [
            (key, "done")]
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",   # the narrowest phones still in use
                                {"width": 320, "height": 700, "deviceScaleFactor": 2, "mobile": True})
        try:
            assert fits_the_phone(browser), "the job page scrolls sideways at 320 px"
            screenshot(browser, "crew-job-320")
        finally:
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": PHONE_WIDTH, "height": 780, "deviceScaleFactor": 2, "mobile": True})

        browser.find_element(By.ID, "start").click()
        wait_for(browser, "the job to start", lambda b: b.find_element(By.TAG_NAME, "body")
                 .get_attribute("data-state") == "started")
        assert await db.fetchval("SELECT state FROM jobs WHERE job_id = $1", job_id) == "started"
        note = f"all done, Queens Road icy at the top ({unique})"
        browser.find_element(By.ID, "note").send_keys(note)
        browser.find_element(By.ID, "done").click()
        wait_for(browser, "the job to be done", lambda b: b.find_element(By.TAG_NAME, "body")
                 .get_attribute("data-state") == "completed")
        row = await db.fetchrow("SELECT state, note, completed_at FROM jobs WHERE job_id = $1", job_id)
        assert row["state"] == "completed" and row["note"] == note and row["completed_at"] is not None
        assert await db.fetchval("SELECT count(*) FROM gritting_treatments WHERE job_id = $1", job_id) == 1
        assert browser.find_element(By.ID, "complete").is_displayed() is False
        screenshot(browser, "crew-job-done")
        assert console(browser) == []
    finally:
        await db.execute("DELETE FROM gritting_runs WHERE run_id = $1", run_id)  # keep "the latest run" as it was


async def test_an_invited_householder_creates_their_account_and_lands_on_their_page(
        site: str, browser: WebDriver, db: Database, unique: str) -> None:
    invitation = await create_invitation(db, f"hh-{unique}", created_by=None)
    browser.delete_all_cookies()
    browser.get(f"{site}/invite/{invitation.token}")
    browser.find_element(By.ID, "display_name").send_keys("Robin Tenant")
    browser.find_element(By.ID, "username").send_keys(f"Robin-{unique}")
    browser.find_element(By.ID, "password").send_keys("a long enough password")
    browser.find_element(By.ID, "password2").send_keys("a different password")
    browser.find_element(By.ID, "submit").click()
    assert "different" in wait_for(browser, "the mismatch", lambda b: b.find_element(By.ID, "error").text)
    browser.find_element(By.ID, "password2").clear()
    browser.find_element(By.ID, "password2").send_keys("a long enough password")
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, "the home page", lambda b: b.current_url.endswith("/home") and ready(b))
    assert browser.find_element(By.ID, "who").text == "Robin Tenant"
    assert "No readings" in browser.find_element(By.ID, "reading-at").text  # a household without a box yet
    row = await db.fetchrow("SELECT role, household_id FROM users WHERE username = $1", f"robin-{unique}")
    assert row is not None and (row["role"], row["household_id"]) == ("householder", f"hh-{unique}")
    screenshot(browser, "invited-householder")
