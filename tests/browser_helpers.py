"""Headless Debian Chromium driven by selenium, against `cityops api` in a child process on the
session's database: the fixtures and small waits every browser test uses.

Without chromium and chromedriver the `browser` fixture skips with the reason
(`scripts/system-deps.sh` installs them as root); under CITYOPS_TEST_STRICT=1 it fails.
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.api import api_server
from cityops.storage import Database
from tests.conftest import skip_or_fail

ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE_WIDTH = 360


def _binary(name: str) -> str | None:
    return shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium at a phone's width, with its console log kept."""
    chromium, chromedriver = _binary("chromium"), _binary("chromedriver")
    if chromium is None or chromedriver is None:
        skip_or_fail("no chromium/chromedriver (apt-get install chromium chromium-driver, "
                     "or run scripts/system-deps.sh as root): browser tests skipped")
    assert chromium is not None and chromedriver is not None
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=420,900"):
        options.add_argument(arg)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": PHONE_WIDTH, "height": 780,
                                                                          "pixelRatio": 2.0}})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(tmp_path_factory.mktemp("chromedriver") / "log"))
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except WebDriverException as exc:
        skip_or_fail(f"chromium cannot start on this machine: {exc.msg}")
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
async def site(db: Database, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The API and pages as `cityops api` serves them, on the session's (migrated) database,
    over plain http on this machine as the demo does (so the cookie is not Secure)."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    async with api_server(database_url, log, env={"CITYOPS_ACCOUNTS__INSECURE_LOCALHOST": "true"}) as api:
        yield api.url


def wait_for(browser: WebDriver, what: str, condition: Any, timeout_s: float = 15.0) -> Any:
    try:
        return WebDriverWait(browser, timeout_s, poll_frequency=0.05).until(condition)
    except TimeoutException:
        screenshot(browser, "timeout")
        error = browser.find_elements(By.CSS_SELECTOR, ".error")
        shown = " | ".join(e.text for e in error if e.text)
        raise AssertionError(f"waited {timeout_s:.0f} s for {what} at {browser.current_url}; "
                             f"page errors: {shown or 'none'}; console: {console(browser)}") from None


def ready(browser: WebDriver) -> bool:
    return bool(browser.execute_script("return document.body && document.body.dataset.ready === 'yes'"))


def console(browser: WebDriver) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(browser: WebDriver, name: str) -> Path:
    """The whole page (not only the viewport) as tests/artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    metrics = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def fits_the_phone(browser: WebDriver) -> bool:
    return bool(browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"))


def sign_in(browser: WebDriver, site: str, start: str, username: str, password: str) -> None:
    """Open a page while signed out: it sends us to the login form; sign in there."""
    browser.delete_all_cookies()
    browser.get(site + start)
    wait_for(browser, "the login page", lambda b: "/login" in b.current_url
             and b.find_elements(By.ID, "username"))
    browser.get_log("browser")  # the 401 that sent us here is expected; start the console log afresh
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, f"{start} after signing in", lambda b: b.current_url.endswith(start) and ready(b))
