"""The landlord officer's pages in a real browser (headless Chromium against `cityops api`), at
320 CSS px: signing in lands on /landlord; a sensor's suggestion is triaged with the keyboard
alone, then investigated, its written summary sent, its safety works done and the case closed
through the case page's forms, the database checked after each step and the clocks shown
checked against the rules (rules/cases/clocks.py); another landlord's case shows "not found";
the dashboard counts the clocks met on time. axe-core on every page (WCAG 2.2 A/AA)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from cases import lifecycle
from cityops.storage import Database
from devices import registry
from devices.spec import DeviceSpec
from ops_api.accounts.store import create_user
from rules.cases.clocks import LONDON, case_clocks, due_in_words
from tests.browser_helpers import (
    NARROWEST,
    assert_accessible,
    chromium,
    console,
    fits_the_phone,
    ready,
    screenshot,
    sign_in,
    site,
    wait_for,
)

__all__ = ["site"]   # the fixture, imported for pytest


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Every page here at 320 CSS px (WCAG 1.4.10 Reflow)."""
    yield from chromium(tmp_path_factory, NARROWEST)


async def _landlord_with_a_suggestion(db: Database, unique: str) -> tuple[str, int]:
    """Landlord A's home whose sensor read damp "high" on each of the last 3 days, suggested by
    the sensor suggester (cases.lifecycle.suggest_from_sensors, docs/cases.md)."""
    now = datetime.now(UTC).replace(microsecond=0)
    landlord, household, device = f"{unique}a", f"hh-{unique}a", f"{unique}a-frog"
    await lifecycle.add_landlord(db, landlord, "Landlord A", "housing_association", True)
    await lifecycle.put_home(db, household, landlord, "Flat 2, 14 Mill Lane", True, now)
    await registry.add_device(db, DeviceSpec(device, "frog", -2.59, 51.45, household_id=household))
    for days_ago in range(3):
        await db.execute(
            "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d, "
            "condensation_hours_7d, reasons, changes, faults, metrics) VALUES ($1, $2, $3, 'high', 2, 40, 30, '[]', "
            "'[]', '[]', '{}')", device, now - timedelta(days=days_ago, minutes=5), household)
    await lifecycle.suggest_from_sensors(db, now, days=3)
    case_id = await db.fetchval("SELECT case_id FROM damp_cases WHERE household_id = $1 AND state = 'suggested'",
                                household)
    assert case_id is not None
    return landlord, case_id


async def _officer(db: Database, unique: str, landlord: str) -> tuple[str, str]:
    password = secrets.token_urlsafe(12)
    user = await create_user(db, username=f"ll-{unique}", password=password, role="landlord",
                             display_name="Robin Housing")
    await db.execute("UPDATE users SET landlord_id = $1 WHERE user_id = $2", landlord, user.user_id)
    return user.username, password


def _tab_to(browser: WebDriver, element_id: str, presses: int = 60) -> None:
    """Press Tab until the element with this id has the focus (the keyboard alone)."""
    for _ in range(presses):
        if browser.execute_script("return document.activeElement && document.activeElement.id") == element_id:
            return
        ActionChains(browser).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached #{element_id}")


def _keys(browser: WebDriver, *typed: str) -> None:
    ActionChains(browser).send_keys(*typed).perform()


def _clock_text(browser: WebDriver, key: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, f'#clocks li[data-clock="{key}"]').text)


def _clock_state(browser: WebDriver, key: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, f'#clocks li[data-clock="{key}"]').get_attribute("data-state"))


def _check(browser: WebDriver, name: str) -> None:
    assert fits_the_phone(browser), f"{name} scrolls sideways at {NARROWEST} px (WCAG 1.4.10)"
    assert_accessible(browser, name)
    screenshot(browser, f"landlord-{name}")


def _record(browser: WebDriver, kind: str, fields: dict[str, str], status: str) -> None:
    """Open a step's form, fill it and send it; wait for the page's confirmation."""
    browser.find_element(By.ID, f"{kind}-open").click()
    for name, value in fields.items():
        browser.find_element(By.ID, f"{kind}-{name}").send_keys(value)
    browser.find_element(By.ID, f"{kind}-submit").click()
    wait_for(browser, status, lambda b: b.find_element(By.ID, "status").text == status)


async def _milestones(db: Database, case_id: int) -> dict[str, datetime]:
    rows = await db.fetch("SELECT milestone, min(at) AS at FROM case_events WHERE case_id = $1 "
                          "AND milestone IS NOT NULL GROUP BY milestone", case_id)
    return {r["milestone"]: r["at"] for r in rows}


async def test_a_suggestion_to_closure_as_a_landlord_officer(site: str, browser: WebDriver, db: Database,
                                                             unique: str) -> None:
    landlord, case_id = await _landlord_with_a_suggestion(db, unique)
    await lifecycle.add_landlord(db, f"{unique}b", "Landlord B", "council", True)
    await lifecycle.put_home(db, f"hh-{unique}b", f"{unique}b", "B Street 1", True, datetime.now(UTC))
    theirs = await lifecycle.open_case(db, f"hh-{unique}b", "council", datetime.now(UTC), category="significant",
                                       reason="mould in the bathroom")
    username, password = await _officer(db, unique, landlord)

    # signing in from the login page lands a landlord officer on /landlord (common.js homeFor)
    browser.delete_all_cookies()
    browser.get(site + "/login")
    wait_for(browser, "the login form", lambda b: b.find_elements(By.ID, "username"))
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, "the case list", lambda b: b.current_url.endswith("/landlord") and ready(b))
    items = browser.find_elements(By.CSS_SELECTOR, "#cases li[data-case]")
    assert [i.get_attribute("data-case") for i in items] == [str(case_id)]   # their own only: B's is not listed
    assert items[0].get_attribute("data-state") == "suggested" and "triage it" in items[0].text
    _check(browser, "list")

    items[0].find_element(By.TAG_NAME, "a").click()
    wait_for(browser, "the case page", lambda b: b.current_url.endswith(f"/landlord/cases/{case_id}") and ready(b))
    assert browser.find_elements(By.CSS_SELECTOR, "#clocks li") == []   # no clock runs on a suggestion
    _check(browser, "suggestion")

    # triage with the keyboard alone: accept (checked), category significant, reasoning, Enter
    browser.execute_script("document.body.setAttribute('tabindex','-1'); document.body.focus();")
    _tab_to(browser, "triage-accept")
    _tab_to(browser, "triage-category")
    _keys(browser, "s")                                            # "significant: …"
    _tab_to(browser, "triage-reason")
    _keys(browser, "Black mould in the bedroom; a child under 5 lives there")
    _tab_to(browser, "triage-submit")
    _keys(browser, Keys.ENTER)
    wait_for(browser, "the triage recorded", lambda b: b.find_element(By.ID, "status").text.startswith("Triaged"))
    case = await db.fetchrow("SELECT state, category, aware_at FROM damp_cases WHERE case_id = $1", case_id)
    assert case is not None
    assert (case["state"], case["category"]) == ("open", "significant")
    # awareness is the triage time (docs/cases.md: no clock runs on a suggestion); the page shows
    # the investigation due as the rules compute it: 10 working days from there
    clocks = {c.key: c for c in case_clocks("significant", {"aware": case["aware_at"]}, datetime.now(UTC))}
    due = clocks["investigation"].due
    assert due is not None and due_in_words(due) in _clock_text(browser, "investigation")
    assert _clock_state(browser, "investigation") == "on_time"
    assert browser.find_element(By.ID, "next-step").text.startswith("Next: Investigate the damp and mould")

    _record(browser, "investigation", {"investigator": "J. Surveyor", "findings": "mould behind the wardrobe"},
            "Recorded: investigation.")
    done = await _milestones(db, case_id)
    assert "investigated" in done
    clocks = {c.key: c for c in case_clocks("significant", {"aware": case["aware_at"], **done}, datetime.now(UTC))}
    summary_due = clocks["written_summary"].due
    assert summary_due is not None and due_in_words(summary_due) in _clock_text(browser, "written_summary")
    assert _clock_state(browser, "investigation") == "met"

    _record(browser, "summary_sent", {"text": "We found mould behind the wardrobe and will treat it this week."},
            "Recorded: written summary sent.")
    assert "summary_sent" in await _milestones(db, case_id)
    assert await db.fetchval("SELECT details->>'text' FROM case_events WHERE case_id = $1 AND kind = 'summary_sent'",
                             case_id) == "We found mould behind the wardrobe and will treat it this week."
    assert _clock_state(browser, "written_summary") == "met"

    _record(browser, "safety_works", {"contractor": "DampCo"}, "Recorded: safety works.")   # stage: done
    assert "safety_works_done" in await _milestones(db, case_id)
    assert _clock_state(browser, "safety_work") == "met"
    _check(browser, "open-case")

    browser.find_element(By.ID, "close-reason").send_keys("Mould treated and the wall insulated")
    browser.find_element(By.ID, "close-submit").click()
    wait_for(browser, "the case closed", lambda b: b.find_element(By.ID, "status").text == "The case is closed.")
    closed = await db.fetchrow("SELECT state, closed_reason FROM damp_cases WHERE case_id = $1", case_id)
    assert closed is not None
    assert (closed["state"], closed["closed_reason"]) == ("closed", "Mould treated and the wall insulated")
    assert browser.find_element(By.ID, "close-card").get_attribute("hidden") is not None
    kinds = [e.get_attribute("data-kind") for e in browser.find_elements(By.CSS_SELECTOR, "#timeline li")]
    assert kinds == ["suggested", "triage", "investigation", "summary_sent", "safety_works", "closed"]
    # the evidence pack's links (helper A's routes, docs/cases.md "The evidence pack")
    assert browser.find_element(By.ID, "evidence-csv").get_attribute("href") == f"{site}/cases/{case_id}/evidence.csv"

    # the dashboard: this month's significant clocks, investigation, written summary and safety
    # work all met on time (the further works clocks still running when the case closed: not counted)
    browser.get(site + "/landlord/dashboard")
    wait_for(browser, "the dashboard", ready)
    month = f"{datetime.now(UTC).astimezone(LONDON):%Y-%m}"   # the London month (ops_api.queries.cases)
    row = browser.find_element(By.CSS_SELECTOR, f'#rows li[data-category="significant"][data-month="{month}"]')
    assert row.find_element(By.CSS_SELECTOR, ".on-time").text == "3"
    _check(browser, "dashboard")

    # another landlord's case: "not found", as a missing one (docs/api.md "Cases")
    browser.get(site + f"/landlord/cases/{theirs}")
    wait_for(browser, "the refusal", lambda b: ready(b))
    assert browser.find_element(By.ID, "title").text == "Case not found"
    assert f"no case {theirs}" in browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "case").get_attribute("hidden") is not None
    assert [m for m in console(browser) if "404" not in m] == []


async def test_every_other_step_form_and_a_dismissal(site: str, browser: WebDriver, db: Database,
                                                     unique: str) -> None:
    """The forms the first test does not use, each sent once: what reaches the database is what
    was typed (the API's step bodies, docs/api.md "Cases")."""
    landlord, suggestion = await _landlord_with_a_suggestion(db, f"{unique}x")
    await lifecycle.put_home(db, f"hh-{unique}o", landlord, "3 Mill Lane", True, datetime.now(UTC))
    case_id = await lifecycle.open_case(db, f"hh-{unique}o", "council", datetime.now(UTC), category="emergency",
                                        reason="mould over a baby's cot")
    username, password = await _officer(db, unique, landlord)
    sign_in(browser, site, f"/landlord/cases/{case_id}", username, password)
    _record(browser, "made_safe", {"text": "mould washed off"}, "Recorded: made safe.")
    _record(browser, "further_works", {"contractor": "DampCo"}, "Recorded: further works.")   # stage: begun
    _record(browser, "alternative_accommodation", {"note": "the family stays"},
            "Recorded: alternative accommodation.")                                          # not needed
    _record(browser, "contact", {"text": "Phoned to arrange a visit"}, "Recorded: contact with the household.")
    browser.find_element(By.ID, "vulnerability-open").click()
    browser.find_element(By.ID, "vulnerability-flags-child_under_5").click()
    browser.find_element(By.ID, "vulnerability-submit").click()
    wait_for(browser, "the flags", lambda b: b.find_element(By.ID, "status").text == "Recorded: vulnerability flags.")
    _record(browser, "note", {"text": "Keys with the neighbour"}, "Recorded: internal note.")
    events = {r["kind"]: r for r in await db.fetch(
        "SELECT kind, milestone, visible_to_tenant, details FROM case_events WHERE case_id = $1", case_id)}
    assert events["made_safe"]["milestone"] == "made_safe"
    assert events["further_works"]["milestone"] == "further_works_begun"
    assert events["contact"]["visible_to_tenant"] is True and events["note"]["visible_to_tenant"] is False
    case = await db.fetchrow("SELECT vulnerabilities, alt_accommodation FROM damp_cases WHERE case_id = $1", case_id)
    assert case is not None and (list(case["vulnerabilities"]), case["alt_accommodation"]) == (
        ["child_under_5"], "not_needed")

    browser.get(f"{site}/landlord/cases/{suggestion}")
    wait_for(browser, "the suggestion", ready)
    browser.find_element(By.ID, "triage-dismiss").click()
    browser.find_element(By.ID, "triage-reason").send_keys("The tenant dries washing indoors; advice given")
    browser.find_element(By.ID, "triage-submit").click()
    wait_for(browser, "the dismissal",
             lambda b: b.find_element(By.ID, "status").text == "The suggestion was dismissed.")
    assert await db.fetchval("SELECT state FROM damp_cases WHERE case_id = $1", suggestion) == "dismissed"
    assert browser.find_element(By.ID, "triage-card").get_attribute("hidden") is not None
