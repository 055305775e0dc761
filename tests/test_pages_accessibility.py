"""Every page a user can reach, checked for accessibility in a real browser (headless Chromium
against `cityops api`): axe-core finds no serious or critical WCAG 2.2 A/AA violation, the page
fits 320 CSS px without scrolling sideways (WCAG 1.4.10 Reflow), and it works with the
keyboard alone: Tab reaches every control, each with a visible focus indicator (WCAG 2.1.1,
2.4.7), and the login, diary and damp report forms are filled and sent with keys only.

Pages: login (and its error), invitation, the householder's home (with and without readings,
with a refused photo's error and with a damp and mould case) and evidence report, the crew's
jobs list, a job page and its printable sheet, the operator's page, the landlord officer's
case list, case page and dashboard. Helpers in
tests/browser_helpers.py; axe-core from tests/browser/package.json.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from cases import lifecycle
from cityops.storage import Database
from ops_api.accounts.invitations import create_invitation
from ops_api.accounts.store import create_user
from tests.browser_helpers import (
    NARROWEST,
    assert_accessible,
    chromium,
    console,
    controls,
    describe,
    fits_the_phone,
    from_the_top,
    ready,
    screenshot,
    sign_in,
    site,
    tab_through,
    wait_for,
)
from tests.pages_helpers import gritting_job_for_a_crew_member, householder_with_a_week_of_readings

__all__ = ["site"]   # the fixture, imported for pytest


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Every page here at 320 CSS px, the width WCAG 1.4.10 asks content to reflow to."""
    yield from chromium(tmp_path_factory, NARROWEST)


def check_page(browser: WebDriver, name: str) -> None:
    """axe-core, 320 px and the keyboard on the page as it is now: every problem found, together."""
    problems = []
    width = browser.execute_script("return Math.max(window.innerWidth, document.documentElement.scrollWidth)")
    if width != NARROWEST or not fits_the_phone(browser):
        problems.append(f"it is {width} px wide on a {NARROWEST} px screen: it does not reflow (WCAG 1.4.10)")
    try:
        assert_accessible(browser, name)
    except AssertionError as exc:
        problems.append(str(exc))
    stops = tab_through(browser)
    reached = {stop["key"] for stop in stops}
    missing = [c for c in controls(browser) if c not in reached]
    if missing:
        problems.append(f"Tab never reaches {missing}; it goes {describe(stops)} (WCAG 2.1.1)")
    unseen = [stop["key"] for stop in stops if not (stop["visible_indicator"] and stop["on_screen"])]
    if unseen:
        problems.append(f"no visible focus on {unseen} (WCAG 2.4.7)")
    screenshot(browser, f"a11y-{name}")
    assert not problems, f"{name}:\n" + "\n".join(problems)


def tab_to(browser: WebDriver, element_id: str, presses: int = 40) -> None:
    """Press Tab until the element with this id has the focus."""
    for _ in range(presses):
        if browser.execute_script("return document.activeElement && document.activeElement.id") == element_id:
            return
        ActionChains(browser).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached #{element_id}")


def keys(browser: WebDriver, *typed: str) -> None:
    ActionChains(browser).send_keys(*typed).perform()


async def test_login_with_the_keyboard_alone_and_its_error(site: str, browser: WebDriver, db: Database,
                                                           unique: str) -> None:
    await create_user(db, username=f"kb-{unique}", password="right-password-1", role="operator")
    browser.delete_all_cookies()
    browser.get(site + "/login")
    wait_for(browser, "the login form", lambda b: b.find_elements(By.ID, "username"))
    check_page(browser, "login")

    tab_to(browser, "username")
    keys(browser, f"kb-{unique}", Keys.TAB, "wrong-password", Keys.ENTER)
    error = wait_for(browser, "the error", lambda b: b.find_element(By.ID, "error").text)
    assert "wrong username or password" in error
    check_page(browser, "login-error")

    from_the_top(browser)
    tab_to(browser, "password")
    keys(browser, *[Keys.BACKSPACE] * len("wrong-password"), "right-password-1")
    tab_to(browser, "submit")
    keys(browser, Keys.ENTER)
    wait_for(browser, "the operator's first page", lambda b: b.current_url.endswith("/crew") and ready(b))


async def test_the_invitation_page(site: str, browser: WebDriver, db: Database, unique: str) -> None:
    invitation = await create_invitation(db, f"hh-{unique}", created_by=None)
    browser.delete_all_cookies()
    browser.get(f"{site}/invite/{invitation.token}")
    wait_for(browser, "the invitation form", lambda b: b.find_elements(By.ID, "display_name"))
    check_page(browser, "invite")
    tab_to(browser, "submit")
    keys(browser, Keys.ENTER)                                  # nothing filled in: the error says what to do
    assert "Enter your name" in wait_for(browser, "the error", lambda b: b.find_element(By.ID, "error").text)
    check_page(browser, "invite-error")


async def test_the_home_page_with_readings_and_the_diary_by_keyboard(site: str, browser: WebDriver, db: Database,
                                                                     unique: str) -> None:
    household, username, password = await householder_with_a_week_of_readings(db, unique)
    sign_in(browser, site, "/home", username, password)
    check_page(browser, "home")

    from_the_top(browser)
    tab_to(browser, "activity")
    keys(browser, Keys.ARROW_DOWN, Keys.ARROW_DOWN)            # shower, cooking, drying clothes indoors
    tab_to(browser, "minutes")
    keys(browser, "45")
    tab_to(browser, "note")
    keys(browser, f"by keys {unique}")
    tab_to(browser, "diary-submit")
    keys(browser, Keys.ENTER)
    wait_for(browser, "the diary entry to be saved", lambda b: b.find_element(By.ID, "diary-saved").text)
    row = await db.fetchrow("SELECT activity, minutes, note, ts FROM damp_diary WHERE household_id = $1", household)
    assert row is not None and (row["activity"], row["minutes"], row["note"]) == (
        "drying_clothes", 45, f"by keys {unique}")
    assert abs(row["ts"] - datetime.now(UTC)) < timedelta(minutes=2)   # the form's default: the platform's now
    check_page(browser, "home-diary-saved")
    assert console(browser) == []


async def test_the_home_page_reporting_damp_by_keyboard_and_the_case(site: str, browser: WebDriver, db: Database,
                                                                    unique: str, tmp_path: Path) -> None:
    household, username, password = await householder_with_a_week_of_readings(db, unique)
    sign_in(browser, site, "/home", username, password)
    not_a_photo = tmp_path / "letter.jpg"
    not_a_photo.write_bytes(b"%PDF-1.4\n%%EOF\n")
    photo = tmp_path / "ceiling.png"
    Image.new("RGB", (200, 150), (90, 90, 80)).save(photo, "PNG")

    from_the_top(browser)
    tab_to(browser, "damp-text")
    keys(browser, f"Mould on the ceiling {unique}")
    browser.find_element(By.ID, "damp-photos").send_keys(str(not_a_photo))  # a file chooser is the system's own
    tab_to(browser, "damp-submit")
    keys(browser, Keys.ENTER)
    error = wait_for(browser, "the refused photo", lambda b: b.find_element(By.ID, "damp-error").text)
    assert "Photo 1 (letter.jpg)" in error
    check_page(browser, "home-report-refused")

    browser.find_element(By.ID, "damp-photos").clear()
    browser.find_element(By.ID, "damp-photos").send_keys(str(photo))
    tab_to(browser, "damp-submit")
    keys(browser, Keys.ENTER)
    wait_for(browser, "the case", lambda b: not b.find_element(By.ID, "case").get_attribute("hidden")
             and b.find_elements(By.CSS_SELECTOR, "#case-photos img"))
    assert await db.fetchval("SELECT count(*) FROM damp_cases WHERE household_id = $1", household) == 1
    check_page(browser, "home-case")


async def test_the_evidence_report(site: str, browser: WebDriver, db: Database, unique: str) -> None:
    _, username, password = await householder_with_a_week_of_readings(db, unique)
    sign_in(browser, site, "/home", username, password)
    browser.get(site + "/households/me/report")
    wait_for(browser, "the evidence report", lambda b: "evidence" in b.title.lower())
    check_page(browser, "evidence-report")


async def test_the_home_page_without_readings(site: str, browser: WebDriver, db: Database, unique: str) -> None:
    await create_user(db, username=f"new-{unique}", password="right-password-1", role="householder",
                      household_id=f"hh-{unique}", display_name="Nia New")
    sign_in(browser, site, "/home", f"new-{unique}", "right-password-1")
    assert "No readings" in browser.find_element(By.ID, "reading-at").text
    check_page(browser, "home-empty")


async def test_the_crew_jobs_list_and_a_job_page(site: str, browser: WebDriver, db: Database,
                                                      unique: str) -> None:
    job_id, run_id, username, password = await gritting_job_for_a_crew_member(db, unique)
    try:
        sign_in(browser, site, "/crew", username, password)
        check_page(browser, "crew-jobs")
        browser.get(f"{site}/crew/jobs/{job_id}")
        wait_for(browser, "the job page", lambda b: ready(b))
        check_page(browser, "crew-job")
    finally:
        await db.execute("DELETE FROM gritting_runs WHERE run_id = $1", run_id)  # keep "the latest run" as it was


async def test_the_printable_job_sheet(site: str, browser: WebDriver, db: Database, unique: str) -> None:
    job_id, run_id, username, password = await gritting_job_for_a_crew_member(db, unique)
    try:
        sign_in(browser, site, "/crew", username, password)
        browser.get(f"{site}/jobs/{job_id}/sheet")
        wait_for(browser, "the job sheet", lambda b: b.find_elements(By.TAG_NAME, "h1"))
        check_page(browser, "job-sheet")
    finally:
        await db.execute("DELETE FROM gritting_runs WHERE run_id = $1", run_id)


async def test_the_operator_page(site: str, browser: WebDriver, db: Database, unique: str) -> None:
    await create_user(db, username=f"op-{unique}", password="right-password-1", role="operator",
                      display_name="Olu Operator")
    sign_in(browser, site, "/operator", f"op-{unique}", "right-password-1")
    check_page(browser, "operator")


async def test_the_landlord_pages(site: str, browser: WebDriver, db: Database, unique: str) -> None:
    now = datetime.now(UTC)
    await lifecycle.add_landlord(db, f"{unique}-ll", "Harbour Homes", "housing_association", True)
    await lifecycle.put_home(db, f"hh-{unique}-ll", f"{unique}-ll", "Flat 3, 9 Quay Street", True, now)
    # aware 20 days ago: the 10 working days to investigate (rules/cases/clocks.py) have run out
    case_id = await lifecycle.open_case(db, f"hh-{unique}-ll", "council", now, category="significant",
                                        reason="mould in the bathroom", aware_at=now - timedelta(days=20))
    user = await create_user(db, username=f"ll-{unique}", password="right-password-1", role="landlord",
                             display_name="Lee Landlord")
    await db.execute("UPDATE users SET landlord_id = $1 WHERE user_id = $2", f"{unique}-ll", user.user_id)
    sign_in(browser, site, "/landlord", f"ll-{unique}", "right-password-1")
    listed = browser.find_element(By.CSS_SELECTOR, f'#cases li[data-case="{case_id}"]')
    assert listed.get_attribute("class") == "overdue"
    check_page(browser, "landlord")
    browser.get(f"{site}/landlord/cases/{case_id}")
    wait_for(browser, "the case page", ready)
    check_page(browser, "landlord-case")
    browser.get(f"{site}/landlord/dashboard")
    wait_for(browser, "the dashboard", ready)
    check_page(browser, "landlord-dashboard")
