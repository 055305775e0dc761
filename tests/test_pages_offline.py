"""The crew's pages with no signal, in a real browser (headless Debian Chromium, selenium).

The API (`cityops api` in a child process) sits behind tests/tcp_proxy.py's proxy, which the
browser talks to. "No signal" is two things at once: DevTools' network emulation says offline
(`Network.emulateNetworkConditions`) AND the proxy is cut, so nothing the page or its service
worker tries can reach the server. A crew member loads their bin round, loses the signal,
reloads the page (from the service worker's cache), marks bins emptied and skipped; the
database holds none of it; the signal returns and each mark arrives exactly once; a loader's
earlier, different mark shows as the contract's conflict; the operator's page shows the
progress. A cancelled job refuses the queued marks, and the page says who cancelled it and why.
The operator reassigns and cancels a job from their page.
Screenshots go to tests/artifacts/. Last, without a browser: the job page's one response (its
scripts, styles and job inline, allowed by their CSP hashes), for its crew only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from benchmarks.api import api_server
from cityops.storage import Database
from ops_api.accounts.sessions import open_session
from ops_api.accounts.store import create_user
from tests.api_helpers import api_client
from tests.browser_helpers import (
    assert_accessible,
    browser,
    console,
    fits_the_phone,
    ready,
    screenshot,
    sign_in,
    wait_for,
)
from tests.tcp_proxy import CuttableProxy

__all__ = ["browser"]   # the fixture, imported for pytest

# Somewhere no other test puts streets (Plymouth Sound's shore), so the basemap is ours alone.
BINS = [("bin-a", -4.1420, 50.3650, "Hoe Road"), ("bin-b", -4.1400, 50.3660, "Madeira Road"),
        ("bin-c", -4.1380, 50.3655, "Hoe Road")]
DEPOT = (-4.1450, 50.3640)
STREETS = [("Hoe Road", 1, [[-4.1460, 50.3648], [-4.1370, 50.3652]]),
           ("Madeira Road", 2, [[-4.1420, 50.3662], [-4.1380, 50.3664]]),
           ("Lockyer Street", 3, [[-4.1410, 50.3640], [-4.1410, 50.3670]])]


class ThreadedProxy:
    """A CuttableProxy on its own event loop in a thread: selenium's calls block the test's loop,
    and the proxy must go on forwarding the browser's bytes meanwhile."""

    def __init__(self, host: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = self._run(self._make(host, port))

    async def _make(self, host: str, port: int) -> CuttableProxy:
        proxy = CuttableProxy(host, port)
        await proxy.restore()
        return proxy

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def cut(self) -> None:
        self._run(self.proxy.cut())

    def restore(self) -> None:
        self._run(self.proxy.restore())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture(scope="module")
async def api(db: Database, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    log = tmp_path_factory.mktemp("api") / "api.log"
    async with api_server(database_url, log, env={"CITYOPS_ACCOUNTS__INSECURE_LOCALHOST": "true"}) as running:
        yield running.url


@pytest.fixture(scope="module")
def proxy(api: str) -> Iterator[ThreadedProxy]:
    host, port = api.removeprefix("http://").split(":")
    threaded = ThreadedProxy(host, int(port))
    try:
        yield threaded
    finally:
        threaded.close()


@pytest.fixture(scope="module")
def site(proxy: ThreadedProxy) -> str:
    """The site as the browser reaches it: through the proxy."""
    return f"http://127.0.0.1:{proxy.proxy.port}"


def no_signal(browser: WebDriver, proxy: ThreadedProxy) -> None:
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    proxy.cut()


def signal_back(browser: WebDriver, proxy: ThreadedProxy) -> None:
    proxy.restore()
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


async def streets_and_depot(db: Database) -> None:
    await db.execute("INSERT INTO bin_depots (depot_id, lon, lat, trucks, capacity_l) VALUES ('plym-depot', $1, $2, 1, "
                     "10000) ON CONFLICT (depot_id) DO NOTHING", *DEPOT)
    for name, priority, line in STREETS:
        await db.execute(
            "INSERT INTO road_segments (segment_id, name, priority, length_m, width_m, geometry, mid_lon, mid_lat, "
            "start_node, end_node) VALUES ($1, $2, $3, 500, 7, $4, $5, $6, $7, $8) ON CONFLICT (segment_id) DO NOTHING",
            f"plym-{name}", name, priority, json.dumps({"type": "LineString", "coordinates": line}),
            (line[0][0] + line[-1][0]) / 2, (line[0][1] + line[-1][1]) / 2, f"{line[0]}", f"{line[-1]}")


async def bin_round(db: Database, unique: str) -> tuple[int, Any, str, Any]:
    """A one-truck plan over BINS, assigned to a new waste crew member (and a loader as crew)."""
    await streets_and_depot(db)
    now = datetime.now(UTC).replace(microsecond=0)
    line = [list(DEPOT)] + [[lon, lat] for _, lon, lat, _ in BINS] + [list(DEPOT)]
    shape = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": line}, "properties": {"truck": 1}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(DEPOT)},
         "properties": {"role": "depot", "name": "plym-depot"}},
        *({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
           "properties": {"device_id": f"{unique}-{bin_id}", "order": i, "truck": 1}}
          for i, (bin_id, lon, lat, _) in enumerate(BINS, start=1))]}
    plan_id = await db.fetchval(
        "INSERT INTO bin_plans (depot_id, shift_start, feasible, distance_m, solve_s, skipped, missed, notes, geojson) "
        "VALUES ('plym-depot', $1, true, 1800, 0.1, '[]', '[]', '[]', $2) RETURNING plan_id", now, json.dumps([shape]))
    for seq, (bin_id, _, _, street) in enumerate(BINS, start=1):
        await db.execute(
            "INSERT INTO bin_plan_stops (plan_id, truck, seq, device_id, arrive, depart, trip, load_after_l, street) "
            "VALUES ($1, 1, $2, $3, $4, $4, 1, $5, $6)", plan_id, seq, f"{unique}-{bin_id}",
            now + timedelta(minutes=5 * seq), 200 * seq, street)
    password = secrets.token_urlsafe(12)
    driver = await create_user(db, username=f"driver-{unique}", password=password, role="waste_crew",
                               display_name="Sam Driver")
    loader = await create_user(db, username=f"loader-{unique}", password=secrets.token_urlsafe(12),
                               role="waste_crew", display_name="Jo Loader")
    job_id = await db.fetchval(
        "INSERT INTO jobs (kind, title, plan_id, truck, assigned_to, assigned_by, crew) "
        "VALUES ('bins', $1, $2, 1, $3, 'test', $4) RETURNING job_id",
        f"Empty 3 bins {unique}", plan_id, driver.user_id, [loader.user_id])
    return job_id, driver, password, loader


def stop(browser: WebDriver, key: str) -> Any:
    return browser.find_element(By.CSS_SELECTOR, f"#steps li[data-stop='{key}']")


def status_of(browser: WebDriver, key: str) -> str:
    """The stop's status as the page shows it (read in one step: the list is redrawn as marks change)."""
    return str(browser.execute_script(
        "const li = document.querySelector(`#steps li[data-stop='${arguments[0]}']`); return li && li.dataset.status",
        key))


def press(browser: WebDriver, key: str, action: str) -> None:
    """Tap a stop's button, again if the list was redrawn between finding and tapping it."""
    def tapped(b: WebDriver) -> bool:
        try:
            stop(b, key).find_element(By.CSS_SELECTOR, f"button[data-do={action}]").click()
        except StaleElementReferenceException:
            return False
        return True
    wait_for(browser, f"{key}'s {action} button", tapped)


def controlled(browser: WebDriver) -> bool:
    return bool(browser.execute_script("return !!(navigator.serviceWorker && navigator.serviceWorker.controller)"))


async def marks_of(db: Database, job_id: int) -> list[Any]:
    return await db.fetch("SELECT mark_id, stop, status, reason, marked_by FROM job_marks WHERE job_id = $1 "
                          "ORDER BY received", job_id)


async def test_marks_made_with_no_signal_arrive_once_when_it_returns(
        site: str, api: str, proxy: ThreadedProxy, browser: WebDriver, db: Database, unique: str) -> None:
    job_id, driver, password, loader = await bin_round(db, unique)
    bins = [f"{unique}-{b[0]}" for b in BINS]
    sign_in(browser, site, "/crew", driver.username, password)
    wait_for(browser, "the open jobs kept for offline", lambda b: b.find_element(By.TAG_NAME, "body")
             .get_attribute("data-kept") == "yes" and controlled(b))
    assert_accessible(browser, "crew")
    browser.find_element(By.CSS_SELECTOR, f"#open-jobs li[data-job='{job_id}'] a").click()
    wait_for(browser, "the job page", lambda b: b.current_url.endswith(f"/crew/jobs/{job_id}") and ready(b))
    wait_for(browser, "the streets under the route", lambda b: b.find_element(By.ID, "map")
             .get_attribute("data-streets") == str(len(STREETS) + 1))   # the streets and the depot (docstring)
    assert "collection round" in browser.find_element(By.ID, "legend").text   # a bins job's legend, not gritting's
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map text.street-name")) == 2   # priority 1 and 2 are named

    no_signal(browser, proxy)
    try:
        with pytest.raises(httpx.ConnectError):   # the proxy really is cut
            async with httpx.AsyncClient() as anyone:
                await anyone.get(site + "/health", timeout=2)
        browser.refresh()
        wait_for(browser, "the job page from the phone's copy", ready)
        shown = browser.find_elements(By.CSS_SELECTOR, "#steps li.stop")
        assert [li.get_attribute("data-stop") for li in shown] == bins
        assert browser.find_element(By.ID, "map").get_attribute("data-lines") == "1"

        # the loader (on another phone, with a signal) marks the second bin skipped first
        earlier = datetime.now(UTC) - timedelta(minutes=1)
        async with httpx.AsyncClient(base_url=api, headers={
                "Authorization": f"Bearer {await open_session(db, loader.user_id)}"}) as other:
            answer = await other.post(f"/jobs/{job_id}/marks", json={"marks": [{
                "mark_id": "7b0c5a4e-0000-4000-8000-000000000001", "stop": bins[1], "status": "skipped",
                "reason": "contaminated", "note": "", "marked_at": earlier.isoformat()}]})
            assert answer.status_code == 200, answer.text

        press(browser, bins[0], "done")
        wait_for(browser, "bin 1 marked", lambda b: status_of(b, bins[0]) == "done")
        press(browser, bins[2], "skip")
        Select(stop(browser, bins[2]).find_element(By.TAG_NAME, "select")).select_by_value("blocked")
        press(browser, bins[2], "skip-confirm")
        wait_for(browser, "bin 3 skipped", lambda b: status_of(b, bins[2]) == "skipped")
        press(browser, bins[1], "done")   # later than the loader's mark
        wait_for(browser, "three marks waiting", lambda b: b.find_element(By.ID, "outbox").text
                 == "Waiting to send (3)")
        assert "blocked" in stop(browser, bins[2]).text and "waiting to send" in stop(browser, bins[2]).text
        assert fits_the_phone(browser), "the job page scrolls sideways at 360 px"
        screenshot(browser, "offline-job-waiting")
        assert [m["marked_by"] for m in await marks_of(db, job_id)] == [loader.user_id]   # ours have not arrived
    finally:
        signal_back(browser, proxy)

    wait_for(browser, "the marks to be sent", lambda b: b.find_element(By.TAG_NAME, "body")
             .get_attribute("data-waiting") == "0", timeout_s=30)
    rows = await marks_of(db, job_id)
    ours = [(m["stop"], m["status"], m["reason"]) for m in rows if m["marked_by"] == driver.user_id]
    assert sorted(ours) == sorted([(bins[0], "done", None), (bins[2], "skipped", "blocked"), (bins[1], "done", None)])
    assert len({m["mark_id"] for m in rows}) == len(rows) == 4   # each mark once (mark_id is the primary key)
    # the contract: the latest marked_at wins; the loser, another status by another person, is the conflict
    conflict = wait_for(browser, "the conflict", lambda b: stop(b, bins[1]).find_elements(By.CSS_SELECTOR, ".conflict"))
    assert f"{loader.user_id} marked this skipped (contaminated) at" in conflict[0].text
    assert status_of(browser, bins[1]) == "done"
    screenshot(browser, "offline-job-sent")
    assert_accessible(browser, "job-offline")

    # a retry of the same batch (a phone that never heard the answer) stores nothing new
    async with httpx.AsyncClient(base_url=api, headers={
            "Authorization": f"Bearer {await open_session(db, driver.user_id)}"}) as again:
        first = rows[1]
        resent = await again.post(f"/jobs/{job_id}/marks", json={"marks": [{
            "mark_id": str(first["mark_id"]), "stop": first["stop"], "status": first["status"],
            "reason": first["reason"], "note": "", "marked_at": datetime.now(UTC).isoformat()}]})
        assert resent.json()["results"][0]["outcome"] == "duplicate"
    assert len(await marks_of(db, job_id)) == 4

    operator_password = secrets.token_urlsafe(12)
    operator = await create_user(db, username=f"op-{unique}", password=operator_password, role="operator")
    sign_in(browser, site, "/operator", operator.username, operator_password)
    row = browser.find_element(By.CSS_SELECTOR, f"#jobs li[data-job='{job_id}']")
    # bins a and b done (b: ours is later), c skipped; the loader's skip of b lost: one conflict
    assert (row.get_attribute("data-done"), row.get_attribute("data-skipped"), row.get_attribute("data-pending"),
            row.get_attribute("data-conflicts")) == ("2", "1", "0", "1")
    assert "2 done, 1 skipped, 0 to do, 1 conflict (of 3)" in row.text
    row.find_element(By.CSS_SELECTOR, "button[data-open]").click()
    wait_for(browser, "the job's stops", lambda b: len(b.find_elements(By.CSS_SELECTOR,
                                                                       "#detail-stops tr[data-stop]")) == 3)
    assert "conflict" in browser.find_element(By.CSS_SELECTOR, f"#detail-stops tr[data-stop='{bins[1]}']").text
    assert fits_the_phone(browser), "the operator's page scrolls sideways at 360 px"
    screenshot(browser, "operator-live")
    assert_accessible(browser, "operator")
    assert console(browser) == []


async def test_a_cancelled_job_refuses_the_queued_marks_and_the_page_says_who_and_why(
        site: str, api: str, proxy: ThreadedProxy, browser: WebDriver, db: Database, unique: str) -> None:
    job_id, driver, password, _ = await bin_round(db, unique)
    bins = [f"{unique}-{b[0]}" for b in BINS]
    sign_in(browser, site, f"/crew/jobs/{job_id}", driver.username, password)
    wait_for(browser, "the service worker", controlled)
    no_signal(browser, proxy)
    try:
        browser.refresh()
        wait_for(browser, "the job page from the phone's copy", ready)
        press(browser, bins[0], "done")
        wait_for(browser, "one mark waiting", lambda b: b.find_element(By.ID, "outbox").text == "Waiting to send (1)")
        operator = await create_user(db, username=f"boss-{unique}", password=secrets.token_urlsafe(12),
                                     role="operator", display_name="Pat Office")
        async with httpx.AsyncClient(base_url=api, headers={
                "Authorization": f"Bearer {await open_session(db, operator.user_id)}"}) as office:
            cancelled = await office.post(f"/jobs/{job_id}/cancel", json={"reason": "lorry broke down"})
            assert cancelled.status_code == 200, cancelled.text
    finally:
        signal_back(browser, proxy)
    refused = wait_for(browser, "the refusal", lambda b: b.find_elements(By.CSS_SELECTOR, "#refused-list li"),
                       timeout_s=30)
    assert len(refused) == 1 and "lorry broke down" in refused[0].text   # who and why: the API's 409 message
    assert await marks_of(db, job_id) == []
    assert browser.find_element(By.ID, "refused").is_displayed()
    wait_for(browser, "the page to say the job was cancelled", lambda b: "cancelled by" in b.find_element(
        By.ID, "error").text and "lorry broke down" in b.find_element(By.ID, "error").text)
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "cancelled"
    screenshot(browser, "offline-job-refused")
    refused[0].find_element(By.TAG_NAME, "button").click()   # dismissed by the crew, never silently
    wait_for(browser, "the refusal dismissed", lambda b: not b.find_elements(By.CSS_SELECTOR, "#refused-list li"))


async def test_the_operator_reassigns_a_job_then_cancels_it_each_with_a_reason(
        site: str, browser: WebDriver, db: Database, unique: str) -> None:
    job_id, _, _, loader = await bin_round(db, unique)
    password = secrets.token_urlsafe(12)
    operator = await create_user(db, username=f"op2-{unique}", password=password, role="operator")
    sign_in(browser, site, "/operator", operator.username, password)

    def details() -> None:
        browser.find_element(By.CSS_SELECTOR, f"#jobs li[data-job='{job_id}'] button[data-open]").click()
        wait_for(browser, "the job's details", lambda b: b.find_element(By.ID, "detail").get_attribute("data-job")
                 == str(job_id) and b.find_element(By.ID, "detail").is_displayed())

    details()
    browser.find_element(By.ID, "reassign-to").send_keys(loader.user_id)
    browser.find_element(By.ID, "reassign-reason").send_keys("Sam is off sick")
    browser.find_element(By.ID, "reassign-submit").click()
    wait_for(browser, "the reassignment", lambda b: b.find_element(By.ID, "detail-status").text == "Job reassigned.")
    assert await db.fetchval("SELECT assigned_to FROM jobs WHERE job_id = $1", job_id) == loader.user_id
    wait_for(browser, "the history", lambda b: "Sam is off sick" in b.find_element(By.ID, "detail-events").text)

    browser.find_element(By.ID, "cancel-reason").send_keys("road closed for the market")
    browser.find_element(By.ID, "cancel-submit").click()
    wait_for(browser, "the cancellation", lambda b: "cancelled" in b.find_element(By.ID, "detail-status").text)
    row = await db.fetchrow("SELECT state, cancelled_by, cancel_reason FROM jobs WHERE job_id = $1", job_id)
    assert tuple(row) == ("cancelled", operator.user_id, "road closed for the market")
    wait_for(browser, "the job gone from the open ones",
             lambda b: not b.find_elements(By.CSS_SELECTOR, f"#jobs li[data-job='{job_id}']"))
    assert browser.find_element(By.ID, "cancel").is_displayed() is False   # a cancelled job: nothing more to do
    screenshot(browser, "operator-cancelled")
    assert console(browser) == []


# --- the job page in one response (ops_api/pages/inline.py), without a browser ---------------------

INLINE_SCRIPT = re.compile(r'<script type="module">(.*?)</script>', re.S)
INLINE_STYLE = re.compile(r"<style>(.*?)</style>", re.S)


async def test_the_job_page_carries_its_scripts_styles_and_the_job_allowed_by_their_hashes(
        app: FastAPI, db: Database, unique: str) -> None:
    job_id, driver, _, _ = await bin_round(db, unique)
    await db.execute("UPDATE jobs SET title = $2 WHERE job_id = $1", job_id, "</script><script>alert(1)</script>")
    stranger = await create_user(db, username=f"other-{unique}", password=None, role="waste_crew")
    async with api_client(app) as client:
        client.headers["Authorization"] = f"Bearer {await open_session(db, driver.user_id)}"
        page = await client.get(f"/crew/jobs/{job_id}", headers={"Accept-Encoding": "gzip"})
        client.headers["Authorization"] = f"Bearer {await open_session(db, stranger.user_id)}"
        theirs = await client.get(f"/crew/jobs/{job_id}")
        del client.headers["Authorization"]
        nobody = await client.get(f"/crew/jobs/{job_id}")
    assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"   # httpx decoded it
    assert page.headers["cache-control"] == "private, no-cache"   # the crew's data: no shared cache keeps it
    html = page.text
    script, style = INLINE_SCRIPT.search(html), INLINE_STYLE.search(html)
    assert script is not None and style is not None and '<script type="module" src=' not in html
    csp = page.headers["content-security-policy"]
    # CSP Level 3: an inline script or style runs when its text's SHA-256 (base64) is in the policy
    for text, directive in ((script.group(1), "script-src"), (style.group(1), "style-src")):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{directive} 'self' 'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp
    data = re.search(r'<script type="application/json" id="job-data">(.*?)</script>', html, re.S)
    assert data is not None and json.loads(data.group(1))["job_id"] == job_id   # the owner's job, in the page
    assert json.loads(data.group(1))["title"] == "</script><script>alert(1)</script>"   # escaped, not markup
    assert html.count("</script>") == 2 and f'href="/jobs/{job_id}"' not in html   # no preload: it is here
    for other in (theirs, nobody):   # someone else's job, or no session: the page without it, asking for it
        assert other.status_code == 200 and 'id="job-data"' not in other.text
        assert f'<link rel="preload" href="/jobs/{job_id}" as="fetch" crossorigin>' in other.text
